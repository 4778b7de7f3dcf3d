/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* epoll: fdinfo lists the watched fds (by the number they were added
 * with), their events and data. Restore creates a new instance inside the
 * task and adds the targets again, after every other fd of the process
 * is back (late in files.h). */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/proc.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_EPOLL_TARGETS 65536

struct epoll_target {
	int tfd;
	uint32_t events;
	uint64_t data;
	uint64_t desc; /* the target's open file description (files_link), 0 if not known */
};

extern const struct fd_ops fd_epoll_ops;

struct epoll_state {
	struct epoll_target *tgts;
	size_t ntgts;
};

static bool epoll_match(const struct fd_probe *p)
{
	return streq(p->link, "anon_inode:[eventpoll]");
}

static int parse(const char *buf, size_t len, struct epoll_state *s)
{
	size_t pos = 0, cap = 0;
	char line[256];

	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		int tfd;
		unsigned int ev;
		unsigned long long data;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &ev, &data) != 3)
			continue;
		if (s->ntgts == cap) {
			cap = cap ? cap * 2 : 8;
			if (cap > MAX_EPOLL_TARGETS)
				return -E2BIG;
			struct epoll_target *n = realloc(s->tgts, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			s->tgts = n;
		}
		s->tgts[s->ntgts++] = (struct epoll_target){ tfd, ev, data };
	}
	return 0;
}

static int epoll_collect(const struct fd_probe *p, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct epoll_state));
	if (r < 0)
		return r;
	if ((r = parse(p->fdinfo, p->fdinfo_len, o->state)) < 0)
		return log_error_errno(r, "pid %d: cannot parse the state of fd %d (%s): %m", p->pid, p->fd, p->link);
	return 0;
}

/* Whether fd of pid is the file epoll `ep` (of pid `epid`) watches as tfd. */
static bool is_target(pid_t pid, int fd, pid_t epid, int ep, int tfd)
{
	struct kcmp_epoll_slot slot = { (uint32_t)ep, (uint32_t)tfd, 0 };
	return syscall(SYS_kcmp, pid, epid, KCMP_EPOLL_TFD, fd, &slot) == 0;
}

/* A watched file is found again by the fd number it was added with: that
 * fd must still be open (and be what was added) for the restore to work. */
static int epoll_check(pid_t pid, const struct files_rec *f, const struct fd_rec *o)
{
	const struct epoll_state *s = o->state;
	for (size_t i = 0; i < s->ntgts; i++) {
		if (!files_find(f, s->tgts[i].tfd) || !is_target(pid, s->tgts[i].tfd, pid, o->fd, s->tgts[i].tfd)) {
			log_error("pid %d: epoll fd %d watches fd %d, which is no longer open (or now another "
				  "file); this cannot be checkpointed yet", pid, o->fd, s->tgts[i].tfd);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static void epoll_free(void *state)
{
	free(((struct epoll_state *)state)->tgts);
}

static void epoll_to_json(const struct fd_rec *o, struct json_builder *b)
{
	const struct epoll_state *s = o->state;
	json_t *a = jb_array(b, "targets");
	for (size_t i = 0; a && i < s->ntgts; i++) {
		struct json_builder t;
		jb_begin(&t);
		jb_int(&t, "tfd", s->tgts[i].tfd);
		jb_i64(&t, "events", s->tgts[i].events);
		jb_x64(&t, "data", s->tgts[i].data);
		if (s->tgts[i].desc)
			jb_u64(&t, "desc", s->tgts[i].desc);
		fd_json_append(b, a, &t);
	}
}

static int epoll_from_json(const json_t *j, struct fd_rec *o)
{
	json_t *a;
	int r = json_get_array(j, "targets", MAX_EPOLL_TARGETS, &a);
	if (r < 0 || (r = fd_state_alloc(o, sizeof(struct epoll_state))) < 0)
		return r;
	struct epoll_state *s = o->state;
	size_t n = json_array_size(a);
	s->tgts = calloc(n ? n : 1, sizeof(*s->tgts));
	if (!s->tgts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *t = json_array_get(a, i);
		int64_t ev;
		if ((r = json_get_int(t, "tfd", &s->tgts[i].tfd)) < 0 || (r = json_get_i64(t, "events", &ev)) < 0 ||
		    (r = json_get_x64(t, "data", &s->tgts[i].data)) < 0)
			return r;
		if (s->tgts[i].tfd < 0 || s->tgts[i].tfd >= MAX_FDS || ev < 0 || ev > UINT32_MAX ||
		    (json_object_get(t, "desc") && (json_get_u64(t, "desc", &s->tgts[i].desc) < 0 || !s->tgts[i].desc)))
			return -EBADMSG;
		s->tgts[i].events = (uint32_t)ev;
		s->ntgts = i + 1;
	}
	return 0;
}

static long epoll_open(const struct fd_restore *x, const struct fd_rec *o)
{
	long fd = remote_syscall(x->r, x->tid, SYS_epoll_create1, 0);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", x->r->pid, o->fd, o->path);
	return fd;
}

/* The targets, now at their numbers. */
static int epoll_setup(const struct fd_restore *x, const struct fd_rec *o)
{
	const struct epoll_state *s = o->state;
	uint64_t buf = x->r->scratch + 8192;
	for (size_t i = 0; i < s->ntgts; i++) {
		struct epoll_event ev = { .events = s->tgts[i].events, .data.u64 = s->tgts[i].data };
		int e = remote_write(x->r, buf, &ev, sizeof(ev));
		if (e < 0)
			return e;
		long ret = remote_syscall(x->r, x->tid, SYS_epoll_ctl, o->fd, EPOLL_CTL_ADD, s->tgts[i].tfd, buf);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: epoll fd %d: cannot watch fd %d again: %m", x->r->pid,
					       o->fd, s->tgts[i].tfd);
	}
	return 0;
}

/* --- in flight: the targets by their descriptions --- */

/* The record of the file that epoll o (in table `in`) watches as t: in
 * its own table at that number (where it was added), else anywhere in
 * the tree (an epoll in flight: its adder's table is not its own). */
static struct fd_rec *find_target(struct files_proc *v, size_t n, size_t in, const struct fd_rec *o,
				  const struct epoll_target *t, bool *ret_own)
{
	struct fd_rec *x = (struct fd_rec *)files_find(v[in].f, t->tfd);
	*ret_own = x && is_target(v[in].pid, x->fd, v[in].pid, o->fd, t->tfd);
	if (*ret_own)
		return x;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++)
			if (is_target(v[i].pid, v[i].f->fds[k].fd, v[in].pid, o->fd, t->tfd))
				return &v[i].f->fds[k];
	return NULL;
}

static int refuse_target(const struct files_proc *p, const struct fd_rec *o, int tfd)
{
	if (p->pid == getpid()) /* a table of fds in flight (files.h) */
		return log_error_errno(-EOPNOTSUPP, "an epoll fd in flight in a unix queue watches fd %d of the "
				       "process that added it, a file no process of the tree holds; this cannot be "
				       "checkpointed", tfd);
	return log_error_errno(-EOPNOTSUPP, "pid %d: epoll fd %d watches fd %d, a file no process of the tree "
			       "holds; this cannot be checkpointed", p->pid, o->fd, tfd);
}

/* Notes every target's description; one found outside the epoll's table
 * is made for it, so it is kept by the restorer for every holder. */
static int epoll_link_numbered(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			struct epoll_state *s = o->ops == &fd_epoll_ops ? o->state : NULL;
			for (size_t m = 0; s && m < s->ntgts; m++) {
				bool own;
				struct fd_rec *x = find_target(v, n, i, o, &s->tgts[m], &own);
				if (!x)
					return refuse_target(&v[i], o, s->tgts[m].tfd);
				s->tgts[m].desc = x->desc;
				x->shared |= !own;
			}
		}
	return 0;
}

/* The record of an epoll in flight knows every target's description. */
static const char *epoll_not_in_flight(const struct fd_rec *o)
{
	const struct epoll_state *s = o->state;
	for (size_t i = 0; i < s->ntgts; i++)
		if (!s->tgts[i].desc)
			return "watches fds it does not name";
	return NULL;
}

/* Adds the targets at their old numbers, in a child of ours whose table
 * is its own to rearrange: the epoll and the targets are the same files
 * as ours (tf[i]: our fd of target i), and stay watched after it exits
 * since we hold them. */
static void add_in_child(int ep, const struct epoll_state *s, const int *tf)
{
	int hi = ep + 1;
	for (size_t i = 0; i < s->ntgts; i++)
		hi = s->tgts[i].tfd >= hi ? s->tgts[i].tfd + 1 : hi;
	ep = fcntl(ep, F_DUPFD_CLOEXEC, hi);
	for (size_t i = 0; ep >= 0 && i < s->ntgts; i++) {
		struct epoll_event ev = { .events = s->tgts[i].events, .data.u64 = s->tgts[i].data };
		int fd = fcntl(tf[i], F_DUPFD_CLOEXEC, hi);
		if (fd < 0 || dup3(fd, s->tgts[i].tfd, O_CLOEXEC) < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, s->tgts[i].tfd, &ev) < 0)
			_exit(1);
		close(fd);
	}
	_exit(ep < 0);
}

static int add_targets(int ep, const struct epoll_state *s, const int *tf)
{
	int status = 0;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		add_in_child(ep, s, tf);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBADF;
}

static int epoll_setup_in_flight(const struct fd_restore *x, const struct fd_rec *o, int ours)
{
	const struct epoll_state *s = o->state;
	int *tf = calloc(s->ntgts + 1, sizeof(int)), e = tf ? 0 : -ENOMEM;
	size_t got = 0;
	for (; e >= 0 && got < s->ntgts; got++)
		if ((tf[got] = files_inflight_get(x, s->tgts[got].desc)) < 0)
			e = tf[got];
	if (e >= 0)
		e = add_targets(ours, s, tf);
	for (size_t i = 0; tf && i < got; i++)
		if (tf[i] >= 0)
			close(tf[i]);
	free(tf);
	if (e < 0)
		return log_error_errno(e, "an epoll fd in flight: cannot watch its fds again: %m");
	return 0;
}

const struct fd_ops fd_epoll_ops = {
	.name = "epoll",
	.late = true,
	.match = epoll_match,
	.collect = epoll_collect,
	.check = epoll_check,
	.to_json = epoll_to_json,
	.from_json = epoll_from_json,
	.free = epoll_free,
	.open = epoll_open,
	.setup = epoll_setup,
	.not_in_flight = epoll_not_in_flight,
	.link_numbered = epoll_link_numbered,
	.setup_in_flight = epoll_setup_in_flight,
};

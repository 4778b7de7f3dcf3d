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
};

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

/* A watched file is found again by the fd number it was added with: that
 * fd must still be open (and be what was added) for the restore to work. */
static int epoll_check(pid_t pid, const struct files_rec *f, const struct fd_rec *o)
{
	const struct epoll_state *s = o->state;
	for (size_t i = 0; i < s->ntgts; i++) {
		struct kcmp_epoll_slot slot = { (uint32_t)o->fd, (uint32_t)s->tgts[i].tfd, 0 };
		if (!files_find(f, s->tgts[i].tfd) ||
		    syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, s->tgts[i].tfd, &slot) != 0) {
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
		if (s->tgts[i].tfd < 0 || s->tgts[i].tfd >= MAX_FDS || ev < 0 || ev > UINT32_MAX)
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

/* Its targets are named by numbers of its holder's table. */
static const char *epoll_not_in_flight(const struct fd_rec *o)
{
	return ((const struct epoll_state *)o->state)->ntgts ? "watches fds (named by numbers of the table of the "
							       "process that added them)" : NULL;
}

const struct fd_ops fd_epoll_ops = {
	.not_in_flight = epoll_not_in_flight,
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
};

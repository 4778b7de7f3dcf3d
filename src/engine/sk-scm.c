/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Control messages in a unix socket's queue: fds in flight (SCM_RIGHTS)
 * and the sender's credentials (SCM_CREDENTIALS).
 *
 * Dump: the peek of the queue (sk-queue.c) installs a copy of every fd in
 * flight in our own table; each is described by the fd kinds' table as an
 * fd of ours (files_collect_fd on /proc/self), so every kind the table
 * path dumps is dumped the same way in flight, and a socket in flight
 * keeps its own queue (and the fds in flight in it, SK_SCM_MAX_DEPTH
 * deep). The tree's link (files_link) then sees the fds in flight as
 * tables of their own (sk-scm-tables.c): their open file descriptions
 * are numbered with the tree's, so a file in flight that is also in a
 * process's table is that same description. A kind whose setup names
 * fds of its holder's table (an epoll's targets) notes their
 * descriptions then (link_numbered) and sets them up from those in
 * flight (setup_in_flight).
 *
 * Restore: the restorer makes every fd in flight before the queue is
 * refilled (sk_scm_make), and sends them again with their messages, in
 * order. A socket is the tree's socket of that inode, or one made for
 * the queue alone (sockets.c); any other fd is its description as the
 * table path makes it: by the kind's make() in the restorer, or by its
 * open() and setup() in the task that restores the queue, taken out of
 * it; once for every holder, tables and queues alike (files_ctx). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/syscalls.h"
#include "engine/sockets.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct fd_ops fd_socket_ops;

static int depth; /* nesting of sockets in flight, dump and restore */
static pid_t holder_pid; /* dump: the process and fd whose queue is read, for messages */
static int holder_fd;

void sk_scm_holder(pid_t pid, int fd)
{
	if (depth)
		return; /* a socket in flight: its holder is the outer one's */
	holder_pid = pid;
	holder_fd = fd;
}

/* A record that could not be restored in flight (read from an image). */
static const char *not_in_flight(const struct fd_rec *o)
{
	return o->ops->not_in_flight ? o->ops->not_in_flight(o) : NULL;
}

/* A refusal of an fd in flight names the socket whose queue holds it
 * first: the kind's own words name our copy of it. */
static int describe_one(int procfd, int fd, struct fd_rec *o, size_t i)
{
	char ctx[128];
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	bool top = depth == 1; /* sk_scm_describe counted this level already */
	if (top)
		log_set_prefix(snprintf(ctx, sizeof(ctx), "pid %d: fd %d holds in its queue an fd in flight that cannot "
					"be checkpointed: ", holder_pid, holder_fd) > 0 ? ctx : NULL);
	int r = files_collect_fd(procfd, getpid(), fd, 0, o);
	if (top)
		log_set_prefix(NULL);
	if (r < 0)
		return r == -EOPNOTSUPP ? -EXDEV : r;
	o->fd = (int)i;
	o->desc = SK_SCM_DESC | (st.st_ino & (SK_SCM_DESC - 1));
	return 0;
}

int sk_scm_describe(struct sk_scm *e, int *fds, size_t n)
{
	int r = 0;
	if (n && depth >= SK_SCM_MAX_DEPTH) {
		log_error("sockets in flight are nested more than %d deep (a socket sent over itself?), which cannot "
			  "be checkpointed", SK_SCM_MAX_DEPTH);
		r = -EXDEV;
	}
	_cleanup_close_ int procfd = r < 0 || !n ? -1 : open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (n && r == 0 && procfd < 0)
		r = -errno;
	if (r == 0 && n && (!(e->fds.fds = calloc(n, sizeof(*e->fds.fds))) || !(e->ours = malloc(n * sizeof(int)))))
		r = -ENOMEM;
	depth++;
	for (size_t i = 0; i < n; i++) {
		if (r == 0) {
			r = describe_one(procfd, fds[i], &e->fds.fds[i], i);
			e->fds.n = i + 1;
			e->ours[i] = fds[i]; /* kept for the data pass */
		} else {
			close(fds[i]);
		}
	}
	depth--;
	return r;
}

static int dump_data_one(struct image *img, int procfd, const struct fd_rec *o, int ours)
{
	struct fd_rec tmp = *o; /* the same state, seen at our copy's number */
	struct fd_dump d = { .img = img, .procfd = procfd, .pid = getpid(), .pidfd = -1 };
	struct files_rec f = { &tmp, 1 };
	tmp.fd = ours;
	d.f = &f;
	int r = o->ops->dump_data(&d, &tmp);
	if (d.pidfd >= 0)
		close(d.pidfd);
	return r;
}

int sk_scm_dump_data(struct image *img, struct sk_rec *s)
{
	_cleanup_close_ int procfd = -1;
	for (size_t i = 0; i < s->nscm; i++)
		for (size_t k = 0; s->scm[i].ours && k < s->scm[i].fds.n; k++) {
			const struct fd_rec *o = &s->scm[i].fds.fds[k];
			if (!o->ops->dump_data)
				continue;
			if (procfd < 0 && (procfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
				return -errno;
			int r = dump_data_one(img, procfd, o, s->scm[i].ours[k]);
			if (r < 0)
				return r;
		}
	return 0;
}

void sk_scm_free(struct sk_rec *s)
{
	for (size_t i = 0; i < s->nscm; i++) {
		for (size_t k = 0; s->scm[i].ours && k < s->scm[i].fds.n; k++)
			close(s->scm[i].ours[k]);
		free(s->scm[i].ours);
		files_rec_free(&s->scm[i].fds);
		free(s->scm[i].made);
	}
	free(s->scm);
	s->scm = NULL;
	s->nscm = 0;
}

const struct sk_scm *sk_scm_at(const struct sk_rec *s, uint64_t i)
{
	for (size_t k = 0; k < s->nscm; k++)
		if (s->scm[k].at == i)
			return &s->scm[k];
	return NULL;
}

int sk_scm_walk(const struct sk_rec *s, int (*fn)(const struct fd_rec *o, void *arg), void *arg)
{
	for (size_t i = 0; i < s->nscm; i++)
		for (size_t k = 0; k < s->scm[i].fds.n; k++) {
			const struct fd_rec *o = &s->scm[i].fds.fds[k];
			int r;
			if (o->ops != &fd_socket_ops || !o->state)
				continue;
			if ((r = fn(o, arg)) != 0 || (r = sk_scm_walk(o->state, fn, arg)) != 0)
				return r;
		}
	return 0;
}

bool sk_scm_holds(const struct sk_rec *s, const char *path, int accmode)
{
	for (size_t i = 0; i < s->nscm; i++)
		for (size_t k = 0; k < s->scm[i].fds.n; k++) {
			const struct fd_rec *o = &s->scm[i].fds.fds[k];
			if (streq(o->path, path) && (int)(o->flags & O_ACCMODE) == accmode)
				return true;
			if (o->ops == &fd_socket_ops && o->state && sk_scm_holds(o->state, path, accmode))
				return true;
		}
	return false;
}

/* --- the record --- */

static void entry_to_json(const struct sk_rec *s, const struct sk_scm *e, struct json_builder *b, json_t *a)
{
	struct json_builder j;
	json_t *fds = NULL;
	jb_begin(&j);
	jb_u64(&j, "at", e->at);
	if (s->type == SOCK_STREAM)
		jb_u64(&j, "len", e->len);
	if (e->has_creds) {
		jb_int(&j, "pid", e->pid);
		jb_u64(&j, "uid", e->uid);
		jb_u64(&j, "gid", e->gid);
	}
	int r = files_to_json(&e->fds, &fds);
	if (r < 0)
		jb_fail(&j, "fds", r);
	else
		jb_put(&j, "fds", fds);
	jb_append_obj(b, a, &j);
}

void sk_scm_to_json(const struct sk_rec *s, struct json_builder *b)
{
	if (!s->nscm)
		return;
	json_t *a = jb_array(b, "scm");
	for (size_t i = 0; a && i < s->nscm; i++)
		entry_to_json(s, &s->scm[i], b, a);
}

static int creds_from_json(const json_t *j, struct sk_scm *e)
{
	uint64_t uid, gid;
	int r;
	if (!json_object_get(j, "pid"))
		return 0;
	if ((r = json_get_int(j, "pid", &e->pid)) < 0 || (r = json_get_u64(j, "uid", &uid)) < 0 ||
	    (r = json_get_u64(j, "gid", &gid)) < 0)
		return r;
	if (e->pid < 0 || uid > UINT32_MAX || gid > UINT32_MAX)
		return -EBADMSG;
	e->uid = (uint32_t)uid;
	e->gid = (uint32_t)gid;
	e->has_creds = true;
	return 0;
}

/* Where the entry is must be inside the queue, after the one before. */
static bool entry_fits(const struct sk_rec *s, const struct sk_scm *e, const struct sk_scm *prev)
{
	if (s->type != SOCK_STREAM)
		return e->at < s->nmsgs && (!prev || e->at > prev->at);
	return e->len && e->at <= s->queue_len && e->len <= s->queue_len - e->at &&
	       (!prev || e->at >= prev->at + prev->len);
}

static int entry_from_json(const json_t *j, const struct sk_rec *s, struct sk_scm *e, const struct sk_scm *prev)
{
	uint64_t len = 0;
	int r;
	if (!json_is_object(j) || (r = json_get_u64(j, "at", &e->at)) < 0)
		return -EBADMSG;
	if (s->type == SOCK_STREAM && ((r = json_get_u64(j, "len", &len)) < 0 || len > SK_MAX_QUEUE))
		return -EBADMSG;
	e->len = (uint32_t)len;
	if ((r = creds_from_json(j, e)) < 0)
		return r;
	const json_t *fds = json_object_get(j, "fds");
	if (!json_is_array(fds) || json_array_size(fds) > SK_SCM_MAX_FDS)
		return -EBADMSG;
	if ((r = files_from_json(fds, &e->fds)) < 0)
		return r;
	for (size_t i = 0; i < e->fds.n; i++)
		if (e->fds.fds[i].fd != (int)i || e->fds.fds[i].dup_of >= 0 || not_in_flight(&e->fds.fds[i]))
			return -EBADMSG;
	return entry_fits(s, e, prev) ? 0 : -EBADMSG;
}

int sk_scm_from_json(const json_t *j, struct sk_rec *s)
{
	json_t *a;
	int r;
	if (!json_object_get(j, "scm"))
		return 0;
	if (s->family != AF_UNIX || depth >= SK_SCM_MAX_DEPTH)
		return -EBADMSG;
	if ((r = json_get_array(j, "scm", SK_MAX_MSGS, &a)) < 0)
		return r;
	size_t n = json_array_size(a);
	if (!(s->scm = calloc(n ? n : 1, sizeof(*s->scm))))
		return -ENOMEM;
	depth++;
	for (size_t i = 0; i < n && r >= 0; i++) {
		s->nscm = i + 1;
		r = entry_from_json(json_array_get(a, i), s, &s->scm[i], i ? &s->scm[i - 1] : NULL);
	}
	depth--;
	return r < 0 ? r : 0;
}

/* --- restore --- */

/* A kind restored by open(): opened in the task that restores the
 * queue (its mounts, its root, its pid namespace), set up there at the
 * number it got, and taken out for us. */
static int open_in_task(const struct fd_restore *x, const struct fd_rec *o)
{
	struct fd_rec at = *o;
	long fd = o->ops->open(x, o);
	if (fd < 0)
		return (int)fd;
	at.fd = (int)fd;
	int e = o->ops->setup && !o->ops->setup_in_flight ? o->ops->setup(x, &at) : 0;
	int pidfd = e < 0 ? -1 : sys_pidfd_open(x->r->pid, 0);
	if (e >= 0)
		e = pidfd < 0 ? -errno : fdpass_take(pidfd, (int)fd);
	if (pidfd >= 0)
		close(pidfd);
	remote_syscall(x->r, x->tid, SYS_close, fd);
	if (e >= 0 && o->ops->setup_in_flight) {
		int r = o->ops->setup_in_flight(x, o, e);
		if (r < 0) {
			close(e);
			return r;
		}
	}
	return e;
}

/* Any other fd in flight: its description, made as the table path makes
 * it (once for all its holders, tables and queues alike: files_ctx). */
static int make_desc(const struct fd_restore *x, const struct fd_rec *o)
{
	int ours = files_ctx_find(x->c, o->desc), e;
	if (ours < 0 && o->ops->make) {
		if ((e = o->ops->make(x, o)) < 0)
			return e;
		if ((ours = files_ctx_find(x->c, o->desc)) < 0)
			return -ENOENT;
	} else if (ours < 0) {
		if ((e = files_ctx_add(x->c, o->desc, open_in_task(x, o))) < 0)
			return e;
		ours = files_ctx_find(x->c, o->desc);
	}
	int fd = fcntl(ours, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

int files_inflight_get(const struct fd_restore *x, uint64_t desc)
{
	const struct files_ctx *c = x->c;
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++)
			if (c->all[i].f->fds[k].desc == desc && c->all[i].f->fds[k].dup_of < 0)
				return make_desc(x, &c->all[i].f->fds[k]);
	return -ENOENT;
}

static int make_one(const struct fd_restore *x, const struct fd_rec *o,
		    int (*get_sk)(const struct fd_restore *x, const struct fd_rec *o))
{
	return o->ops == &fd_socket_ops ? get_sk(x, o) : make_desc(x, o);
}

int sk_scm_make(const struct fd_restore *x, const struct sk_rec *s,
		int (*get_sk)(const struct fd_restore *x, const struct fd_rec *o))
{
	int r = 0;
	if (s->nscm && depth >= 2 * SK_SCM_MAX_DEPTH)
		return log_error_errno(-ELOOP, "unix socket %" PRIu64 ": sockets in flight nested too deep", s->ino);
	depth++;
	for (size_t i = 0; i < s->nscm && r >= 0; i++) {
		struct sk_scm *e = &s->scm[i];
		if (!e->fds.n)
			continue;
		if (!e->made && !(e->made = calloc(e->fds.n, sizeof(int)))) {
			r = -ENOMEM;
			break;
		}
		for (size_t k = 0; k < e->fds.n; k++)
			e->made[k] = -1;
		for (size_t k = 0; k < e->fds.n && r >= 0; k++) {
			const struct fd_rec *o = &e->fds.fds[k];
			e->made[k] = r = make_one(x, o, get_sk);
			if (r < 0)
				log_error_errno(r, "unix socket %" PRIu64 ": cannot make the fd in flight %s again: %m",
						s->ino, o->path);
		}
	}
	depth--;
	if (r < 0)
		sk_scm_close(s);
	return r < 0 ? r : 0;
}

void sk_scm_close(const struct sk_rec *s)
{
	for (size_t i = 0; i < s->nscm; i++) {
		struct sk_scm *e = &s->scm[i];
		for (size_t k = 0; e->made && k < e->fds.n; k++)
			if (e->made[k] >= 0)
				close(e->made[k]);
		free(e->made);
		e->made = NULL;
	}
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Control messages in a unix socket's queue: fds in flight (SCM_RIGHTS)
 * and the sender's credentials (SCM_CREDENTIALS).
 *
 * Dump: the peek of the queue (sk-queue.c) installs a copy of every fd in
 * flight in our own table; each is described by the fd kinds' table as an
 * fd of ours (files_collect_fd on /proc/self), so a socket in flight keeps
 * its own queue (and the fds in flight in it, SK_SCM_MAX_DEPTH deep).
 * Kinds the restorer can make by itself are kept: regular files,
 * directories, the harmless character devices, pipes and sockets.
 *
 * Restore: the restorer makes every fd in flight before the queue is
 * refilled (sk_scm_make), and sends them again with their messages, in
 * order. A socket or pipe also held by a process of the tree is that
 * same socket or pipe (found by inode); otherwise one is made for the
 * queue alone. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fsroot.h"
#include "image/layout.h"
#include "engine/sockets.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct fd_ops fd_socket_ops;

static int depth; /* nesting of sockets in flight, dump and restore */

static bool kind_ok(const struct fd_rec *o)
{
	const char *k = o->ops->name;
	if (streq(k, "reg"))
		return !o->state; /* not a deleted file or memfd */
	return streq(k, "dir") || streq(k, "chr") || streq(k, "socket") ||
	       (streq(k, "pipe") && startswith(o->path, "pipe:["));
}

static int describe_one(int procfd, int fd, struct fd_rec *o, size_t i)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	int r = files_collect_fd(procfd, getpid(), fd, 0, o);
	if (r < 0)
		return r;
	o->fd = (int)i;
	o->desc = SK_SCM_DESC | (st.st_ino & (SK_SCM_DESC - 1));
	if (!kind_ok(o)) {
		log_error("an fd in flight is a %s (%s), which cannot be passed again yet; only files, directories, "
			  "pipes and sockets in flight can be checkpointed", fd_kind_name(o), o->path);
		return -EXDEV;
	}
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
		if (e->fds.fds[i].fd != (int)i || e->fds.fds[i].dup_of >= 0 || !(e->fds.fds[i].desc & SK_SCM_DESC) ||
		    !kind_ok(&e->fds.fds[i]))
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

/* A file, directory or device in flight: opened by the restorer. */
static int open_file(struct files_ctx *c, const struct fd_rec *o)
{
	char p[PATH_MAX + 64];
	int flags = (int)(o->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_CLOEXEC;
	if (!fsroot_path(c->fsroot, o->path, p, sizeof(p)))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(p, flags);
	if (fd < 0)
		return -errno;
	if (o->pos && !streq(o->ops->name, "chr") && lseek(fd, (off_t)o->pos, SEEK_SET) < 0)
		return -errno;
	return TAKE_FD(fd);
}

/* A pipe held by a process of the tree: that pipe, made as the tree's. */
static int tree_pipe(const struct fd_restore *x, const struct fd_rec *o)
{
	struct files_ctx *c = x->c;
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *t = &c->all[i].f->fds[k];
			int e;
			if (t->ops != o->ops || t->dup_of >= 0 || !streq(t->path, o->path))
				continue;
			if (files_ctx_find(c, t->desc) < 0 && (e = t->ops->make(x, t)) < 0)
				return e;
			return files_ctx_find(c, t->desc);
		}
	return -ENOENT;
}

/* A pipe nobody in the tree holds, made for the queues: its bytes were
 * saved from its end in flight (pipe-INO.data, at most 1 MiB back here;
 * the pipe is grown to hold them). Returns its read end. */
static int new_pipe(struct image *img, const struct fd_rec *o)
{
	char name[IMAGE_NAME_MAX];
	unsigned long long ino = 0;
	int pp[2], e = 0;
	if (sscanf(o->path, "pipe:[%llu]", &ino) != 1)
		return -EBADMSG;
	if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (image_has(img, image_name_pipe(name, ino))) {
		_cleanup_free_ void *buf = NULL;
		size_t len = 0;
		if ((e = image_get(img, name, 1u << 20, &buf, &len)) >= 0) {
			errno = EIO; /* a short write sets none */
			if (fcntl(pp[1], F_SETPIPE_SZ, (int)len) < 0 || write(pp[1], buf, len) != (ssize_t)len)
				e = -errno;
		}
	}
	close(pp[1]);
	if (e < 0) {
		close(pp[0]);
		return e;
	}
	fcntl(pp[0], F_SETFL, 0);
	return pp[0];
}

/* A pipe in flight: a new open file description of its pipe (the tree's,
 * or one made for the queues), through /proc/self/fd, with the end's
 * direction and flags. */
static int open_pipe(const struct fd_restore *x, const struct fd_rec *o)
{
	char p[64];
	int any = tree_pipe(x, o);
	if (any == -ENOENT && (any = files_ctx_find(x->c, o->desc)) < 0) {
		int rd = new_pipe(x->c->img, o);
		if (rd < 0)
			return rd;
		int e = files_ctx_add(x->c, o->desc, rd);
		if (e < 0)
			return e;
		any = rd;
	}
	if (any < 0)
		return any;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", any);
	_cleanup_close_ int fd = open(p, (int)(o->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fcntl(fd, F_SETFL, o->flags & O_NONBLOCK) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static int make_one(const struct fd_restore *x, const struct fd_rec *o,
		    int (*get_sk)(const struct fd_restore *x, const struct fd_rec *o))
{
	if (o->ops == &fd_socket_ops)
		return get_sk(x, o);
	if (streq(o->ops->name, "pipe"))
		return open_pipe(x, o);
	return open_file(x->c, o);
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

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pipes and FIFOs, dump and restore.
 *
 * A pipe whose both ends belong to the tree (a self-pipe, a shell
 * pipeline): the bytes sitting in it are saved once, without consuming
 * them (tee into a pipe of ours), and on restore the restorer makes the
 * pipe, fills it and hands its ends to the processes (fdpass.h). A pipe
 * with an end outside the tree is external on fds 0-2 (files-ext.c) and
 * refused elsewhere; an end whose other end nobody holds is kept.
 *
 * A FIFO is opened again by its path (in the container's root, fsroot.h),
 * once per open file description, whoever holds its other end; its bytes
 * are saved like a pipe's. One whose path was unlinked is made again
 * without a name (deleted.h) and opened the same way. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/deleted.h"
#include "engine/files.h"
#include "engine/fsroot.h"
#include "engine/sockets.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct fd_ops fd_pipe_ops;

#define MAX_PIPE_DATA (1u << 30)

/* Both ends (and a FIFO's every opener) keep the pipe's identity. */
struct pipe_state {
	uint64_t id;   /* inode, shared by both ends */
	uint32_t size; /* capacity (F_GETPIPE_SZ) */
};

static struct pipe_state *pipe_of(const struct fd_rec *o)
{
	return o->ops == &fd_pipe_ops ? o->state : NULL;
}

static bool is_read_end(const struct fd_rec *o)
{
	return (o->flags & O_ACCMODE) == O_RDONLY;
}

static bool is_fifo(const struct fd_rec *o)
{
	return o->path[0] == '/';
}

static bool pipe_match(const struct fd_probe *p)
{
	if (!p->st || !S_ISFIFO(p->st->st_mode))
		return false;
	/* A FIFO is reopened by its path, whoever holds the other end; a
	 * pipe's ends are decided once every fd is known (pipes_link). */
	return p->link[0] == '/' || startswith(p->link, "pipe:[");
}

static int pipe_collect(const struct fd_probe *p, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct pipe_state));
	if (r >= 0)
		pipe_of(o)->id = (uint64_t)p->st->st_ino;
	return r;
}

/* --- the whole tree --- */

/* A pipe is inside the tree when both a read and a write end are (an end
 * in flight in a unix socket's queue of the tree counts, sockets.h). */
static bool pipe_inside(const struct files_proc *v, size_t n, uint64_t id)
{
	char path[64];
	snprintf(path, sizeof(path), "pipe:[%llu]", (unsigned long long)id);
	bool rd = sk_tree_inflight(v, n, path, O_RDONLY), wr = sk_tree_inflight(v, n, path, O_WRONLY);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			if (pipe_of(o) && pipe_of(o)->id == id) {
				rd |= is_read_end(o);
				wr |= !is_read_end(o);
			}
		}
	return rd && wr;
}

/* An end whose other end nobody holds any more (a reader that closed its
 * write end, a writer whose reader went away) is restored as such: poll
 * on a copy says so without touching the pipe. */
static bool pipe_widowed(pid_t pid, const struct fd_rec *o)
{
	int pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0)
		return false;
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, o->fd, 0);
	close(pidfd);
	if (fd < 0)
		return false;
	struct pollfd p = { .fd = fd, .events = is_read_end(o) ? POLLIN : POLLOUT };
	int n = poll(&p, 1, 0);
	close(fd);
	return n > 0 && (p.revents & (is_read_end(o) ? POLLHUP : POLLERR));
}

/* A pipe with an end outside the tree is kept as external on fds 0-2
 * (given back by the restorer) and refused elsewhere. */
static int pipes_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			struct fd_rec *o = &v[i].f->fds[k];
			if (!pipe_of(o) || is_fifo(o) || pipe_inside(v, n, pipe_of(o)->id) || pipe_widowed(v[i].pid, o))
				continue; /* a FIFO (by path) is reopened whoever holds its other end */
			if (o->fd > 2)
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d (%s) is a pipe whose other end is "
						       "outside the tree, which cannot be checkpointed yet",
						       v[i].pid, o->fd, o->path);
			fd_set_external(o);
		}
	return 0;
}

/* Copies the queued bytes of the read end `fd` (ours, via pidfd_getfd). */
static int peek_pipe(int fd, uint32_t size, void **ret_buf, size_t *ret_len)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	_cleanup_close_ int pr = p[0], pw = p[1];
	if (fcntl(pw, F_SETPIPE_SZ, size) < 0)
		return -errno;
	ssize_t n = tee(fd, pw, size, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN)
		return -errno;
	if (n <= 0) {
		*ret_buf = NULL;
		*ret_len = 0;
		return 0;
	}
	_cleanup_free_ char *buf = malloc((size_t)n);
	if (!buf)
		return -ENOMEM;
	int r = read_exact(pr, buf, (size_t)n);
	if (r < 0)
		return r;
	*ret_buf = TAKE_PTR(buf);
	*ret_len = (size_t)n;
	return 0;
}

/* A read-write open of the pipe our copy `fd` is an end of, to peek at
 * its bytes from a write or read-write end (a FIFO opened O_RDWR, a pipe
 * or FIFO whose reader closed): never blocks, consumes nothing. */
static int reader_of(int fd)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	int r = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* The size of every end, and the queued bytes once per pipe, from the
 * first end met, whichever way it was opened (they are saved before any
 * process runs again). */
static int pipe_dump_data(struct fd_dump *d, struct fd_rec *o)
{
	struct pipe_state *s = pipe_of(o);
	if (o->dup_of >= 0) {
		/* dup'ed ends share the original's open file description and size. */
		const struct fd_rec *orig = files_find(d->f, o->dup_of);
		if (orig && pipe_of(orig))
			s->size = pipe_of(orig)->size;
		return 0;
	}
	_cleanup_close_ int fd = fd_dump_take(d, o->fd);
	if (fd < 0)
		return fd;
	int sz = fcntl(fd, F_GETPIPE_SZ);
	if (sz <= 0)
		return log_error_errno(-errno, "pid %d: cannot read the size of pipe fd %d: %m", d->pid, o->fd);
	s->size = (uint32_t)sz;
	char name[IMAGE_NAME_MAX];
	if (image_has(d->img, image_name_pipe(name, s->id)))
		return 0; /* saved already from another end */
	_cleanup_free_ void *buf = NULL;
	size_t len = 0;
	_cleanup_close_ int rfd = is_read_end(o) ? -1 : reader_of(fd);
	int r = is_read_end(o) || rfd >= 0 ? peek_pipe(is_read_end(o) ? fd : rfd, s->size, &buf, &len) : rfd;
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot read the bytes queued in pipe fd %d: %m", d->pid, o->fd);
	return len ? image_put(d->img, name, buf, len) : 0;
}

static void pipe_to_json(const struct fd_rec *o, struct json_builder *b)
{
	fd_anon_to_json(b, NULL);
	jb_u64(b, "pipe_id", pipe_of(o)->id);
	jb_int(b, "pipe_size", (int)pipe_of(o)->size);
}

static int pipe_from_json(const json_t *j, struct fd_rec *o)
{
	int r, sz;
	if ((r = fd_anon_from_json(j, NULL)) < 0 || (r = fd_state_alloc(o, sizeof(struct pipe_state))) < 0 ||
	    (r = json_get_u64(j, "pipe_id", &pipe_of(o)->id)) < 0 || (r = json_get_int(j, "pipe_size", &sz)) < 0)
		return r;
	if (sz < 4096 || sz > (1 << 30))
		return -EBADMSG;
	/* A pipe shows as pipe:[ID], its own; a FIFO by a normal path. A pipe
	 * end has an access mode like any file. */
	char own[32];
	snprintf(own, sizeof(own), "pipe:[%" PRIu64 "]", pipe_of(o)->id);
	int acc = (int)(o->flags & O_ACCMODE);
	if (acc == O_ACCMODE || !(is_fifo(o) ? path_is_normal(o->path) : streq(o->path, own)))
		return -EBADMSG;
	pipe_of(o)->size = (uint32_t)sz;
	return 0;
}

/* --- restore --- */

/* Writes the bytes saved for o's pipe (or FIFO) into wfd. */
static int pipe_fill(struct image *img, const struct fd_rec *o, int wfd)
{
	char name[IMAGE_NAME_MAX];
	if (!image_has(img, image_name_pipe(name, pipe_of(o)->id)))
		return 0;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int e = image_get(img, name, MAX_PIPE_DATA, (void **)&buf, &len);
	if (e < 0)
		return e;
	if (len > pipe_of(o)->size)
		return -EBADMSG;
	return write_all(wfd, buf, len);
}

/* Makes o's pipe in the restorer, sized and filled; ends[0] reads. */
static int pipe_new(struct image *img, const struct fd_rec *o, int ends[2])
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	_cleanup_close_ int pr = p[0], pw = p[1];
	if (fcntl(pw, F_SETPIPE_SZ, pipe_of(o)->size) < 0)
		return -errno;
	int e = pipe_fill(img, o, pw);
	if (e < 0)
		return e;
	ends[0] = TAKE_FD(pr);
	ends[1] = TAKE_FD(pw);
	return 0;
}

/* A FIFO is opened again by path, once for each open file description;
 * our own read-write open keeps it alive meanwhile, takes the bytes, and is
 * closed with the other made things once every process has its ends. */
/* The FIFO at o's path, read-write: checked to be a FIFO (through an
 * O_PATH open that follows no final link) before it is opened for real,
 * so a record never writes its bytes into some other file. */
static int open_fifo(struct files_ctx *c, const struct fd_rec *o)
{
	char p[PATH_MAX + 64];
	struct stat st;
	if (!fsroot_path(c->fsroot, o->path, p, sizeof(p)))
		return log_error_errno(-ENAMETOOLONG, "cannot open FIFO %s: %m", o->path);
	_cleanup_close_ int pfd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0 || fstat(pfd, &st) < 0)
		return log_error_errno(-errno, "cannot open FIFO %s: %m", o->path);
	if (!S_ISFIFO(st.st_mode))
		return log_error_errno(-EBADMSG, "%s is not a FIFO here, the image says it is; refusing it", o->path);
	snprintf(p, sizeof(p), "/proc/self/fd/%d", pfd);
	int fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	return fd < 0 ? log_error_errno(-errno, "cannot open FIFO %s: %m", o->path) : fd;
}

static int make_fifo(struct files_ctx *c, const struct fd_rec *o)
{
	char p[64];
	uint64_t id = pipe_of(o)->id;
	/* One whose path was unlinked is made again without a name. */
	int keep = path_deleted(o->path) ? deleted_make(c->fsroot, o->path, S_IFIFO) : open_fifo(c, o), e;
	if (keep < 0 && path_deleted(o->path))
		return log_error_errno(keep, "cannot make the unlinked FIFO %s again: %m", o->path);
	if (keep < 0)
		return keep;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", keep);
	if ((e = files_ctx_add(c, (1ULL << 62) | id, keep)) < 0 ||
	    (fcntl(keep, F_SETPIPE_SZ, pipe_of(o)->size) < 0 && (e = -errno)) || (e = pipe_fill(c->img, o, keep)) < 0)
		return e;
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (!pipe_of(x) || pipe_of(x)->id != id || x->dup_of >= 0 || files_ctx_find(c, x->desc) >= 0)
				continue;
			int fd = open(p, (int)(x->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0 || fcntl(fd, F_SETFL, x->flags & O_NONBLOCK) < 0)
				e = -errno;
			if (e < 0 || (e = files_ctx_add(c, x->desc, fd)) < 0) {
				if (fd >= 0)
					close(fd);
				return log_error_errno(e, "cannot open FIFO %s again: %m", x->path);
			}
		}
	return 0;
}

/* An end the process opened a second time (through /proc/PID/fd: a new
 * open file description of the same pipe, read-write too) is opened
 * again the same way from the end we made, so it reaches the same pipe. */
static int reopen_ends(struct files_ctx *c, const struct fd_rec *o, int rfd, const struct fd_rec *end[2])
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", rfd);
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (!pipe_of(x) || pipe_of(x)->id != pipe_of(o)->id || x->dup_of >= 0 ||
			    files_ctx_find(c, x->desc) >= 0 || (end[0] && x->desc == end[0]->desc) ||
			    (end[1] && x->desc == end[1]->desc))
				continue;
			int fd = open(p, (int)(x->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC), e = 0;
			if (fd < 0 || fcntl(fd, F_SETFL, x->flags & O_NONBLOCK) < 0)
				e = -errno;
			if (e < 0 || (e = files_ctx_add(c, x->desc, fd)) < 0) {
				if (fd >= 0)
					close(fd);
				return e;
			}
		}
	return 0;
}

/* Makes a pipe in the restorer and records both of its ends, with the
 * flags each end had (O_NONBLOCK belongs to the open file description). */
static int make_pipe(struct files_ctx *c, const struct fd_rec *o)
{
	const struct fd_rec *end[2] = { NULL, NULL };
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			int acc = (int)(x->flags & O_ACCMODE); /* a reopened end may be O_RDWR */
			if (pipe_of(x) && pipe_of(x)->id == pipe_of(o)->id && x->dup_of < 0 && acc != O_RDWR)
				end[acc == O_RDONLY ? 0 : 1] = end[acc == O_RDONLY ? 0 : 1] ?: x;
		}
	int fds[2] = { -1, -1 }, e = pipe_new(c->img, o, fds);
	if (e < 0)
		return e;
	e = reopen_ends(c, o, fds[0], end);
	for (int k = 0; k < 2; k++) {
		if (end[k] && fcntl(fds[k], F_SETFL, end[k]->flags & O_NONBLOCK) < 0)
			e = -errno;
		if (e < 0 || !end[k] || files_ctx_find(c, end[k]->desc) >= 0)
			close(fds[k]);
		else
			e = files_ctx_add(c, end[k]->desc, fds[k]);
	}
	return e;
}

static int pipe_make(const struct fd_restore *x, const struct fd_rec *o)
{
	int e = is_fifo(o) ? make_fifo(x->c, o) : make_pipe(x->c, o);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot recreate the pipe of fd %d: %m", x->r->pid, o->fd);
	return 0;
}

const struct fd_ops fd_pipe_ops = {
	.name = "pipe",
	.match = pipe_match,
	.collect = pipe_collect,
	.link = pipes_link,
	.dump_data = pipe_dump_data,
	.to_json = pipe_to_json,
	.from_json = pipe_from_json,
	.make = pipe_make,
};

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pipes whose both ends belong to the process (a self-pipe, a pipe kept
 * for later): the bytes sitting in them are saved without consuming them
 * (tee into a pipe of ours) and written back into a new pipe on restore.
 * A pipe with an end outside the process is external (fds 0-2) or refused:
 * pipes between processes come with process trees. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_PIPE_DATA (1u << 30)

static bool is_read_end(const struct fd_rec *o)
{
	return (o->flags & O_ACCMODE) == O_RDONLY;
}

int pipes_resolve(pid_t pid, struct files_rec *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct fd_rec *o = &f->fds[i];
		if (o->kind != FD_PIPE)
			continue;
		bool rd = false, wr = false;
		for (size_t k = 0; k < f->n; k++)
			if (f->fds[k].kind == FD_PIPE && f->fds[k].pipe_id == o->pipe_id) {
				rd |= is_read_end(&f->fds[k]);
				wr |= !is_read_end(&f->fds[k]);
			}
		if (rd && wr)
			continue;
		if (o->fd <= 2) {
			o->kind = FD_EXTERNAL;
			continue;
		}
		log_error("pid %d: fd %d (%s) is a pipe whose other end is outside the process, which cannot be "
			  "checkpointed yet", pid, o->fd, o->path);
		return -EOPNOTSUPP;
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

int pipes_dump_data(struct image *img, pid_t pid, struct files_rec *f)
{
	_cleanup_close_ int pidfd = -1;
	for (size_t i = 0; i < f->n; i++) {
		struct fd_rec *o = &f->fds[i];
		if (o->kind != FD_PIPE || o->dup_of >= 0)
			continue;
		if (pidfd < 0 && (pidfd = sys_pidfd_open(pid, 0)) < 0)
			return log_error_errno(-errno, "pid %d: cannot open a pidfd: %m", pid);
		_cleanup_close_ int fd = (int)syscall(SYS_pidfd_getfd, pidfd, o->fd, 0);
		if (fd < 0)
			return log_error_errno(-errno, "pid %d: cannot take fd %d to read its pipe: %m", pid, o->fd);
		int sz = fcntl(fd, F_GETPIPE_SZ);
		if (sz <= 0)
			return log_error_errno(-errno, "pid %d: cannot read the size of pipe fd %d: %m", pid, o->fd);
		o->pipe_size = (uint32_t)sz;
		if (!is_read_end(o))
			continue;
		_cleanup_free_ void *buf = NULL;
		size_t len = 0;
		int r = peek_pipe(fd, o->pipe_size, &buf, &len);
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot read the bytes queued in pipe fd %d: %m", pid, o->fd);
		if (!len)
			continue;
		char name[64];
		snprintf(name, sizeof(name), "pipe-%llu.data", (unsigned long long)o->pipe_id);
		if ((r = image_put(img, name, buf, len)) < 0)
			return r;
		o->data = strdup(name);
		if (!o->data)
			return -ENOMEM;
	}
	/* dup'ed ends share the original's open file description and size. */
	for (size_t i = 0; i < f->n; i++)
		for (size_t k = 0; f->fds[i].kind == FD_PIPE && f->fds[i].dup_of >= 0 && k < i; k++)
			if (f->fds[k].fd == f->fds[i].dup_of)
				f->fds[i].pipe_size = f->fds[k].pipe_size;
	return 0;
}

struct pipe_table {
	size_t n;
	struct {
		uint64_t id;
		int ends[2]; /* read, write: fds above base in the process */
	} e[];
};

struct pipe_table *pipe_table_new(size_t n)
{
	return calloc(1, sizeof(struct pipe_table) + n * sizeof(((struct pipe_table *)0)->e[0]));
}

void pipe_table_close(struct pipe_table *t, struct remote *r, pid_t tid)
{
	for (size_t i = 0; i < t->n; i++)
		for (int k = 0; k < 2; k++)
			remote_syscall(r, tid, SYS_close, t->e[i].ends[k]);
	t->n = 0;
}

static int fill(struct remote *r, pid_t tid, struct image *img, const struct files_rec *f, uint64_t id, int wfd)
{
	const struct fd_rec *src = NULL;
	for (size_t i = 0; i < f->n; i++)
		if (f->fds[i].kind == FD_PIPE && f->fds[i].pipe_id == id && f->fds[i].data)
			src = &f->fds[i];
	if (!src)
		return 0;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int e = image_get(img, src->data, MAX_PIPE_DATA, (void **)&buf, &len);
	if (e < 0)
		return e;
	const size_t chunk = 64 << 10;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		if ((e = remote_write(r, r->scratch + 65536, buf + off, n)) < 0)
			return e;
		long w = remote_syscall(r, tid, SYS_write, wfd, r->scratch + 65536, n);
		if (w != (long)n)
			return w < 0 ? (int)w : -EIO;
	}
	return 0;
}

static int create(struct remote *r, pid_t tid, struct image *img, const struct files_rec *f, const struct fd_rec *o,
		  int base, int ends[2])
{
	int fds[2];
	long ret = remote_syscall(r, tid, SYS_pipe2, r->scratch + 8192, 0);
	int e = ret < 0 ? (int)ret : remote_read(r, r->scratch + 8192, fds, sizeof(fds));
	if (e < 0)
		return e;
	/* Out of the way of the fd numbers still to be restored. */
	for (int k = 0; k < 2; k++) {
		ret = remote_syscall(r, tid, SYS_fcntl, fds[k], F_DUPFD_CLOEXEC, base);
		remote_syscall(r, tid, SYS_close, fds[k]);
		if (ret < 0)
			return (int)ret;
		ends[k] = (int)ret;
	}
	ret = remote_syscall(r, tid, SYS_fcntl, ends[1], F_SETPIPE_SZ, o->pipe_size);
	if (ret < 0)
		return (int)ret;
	return fill(r, tid, img, f, o->pipe_id, ends[1]);
}

long pipe_restore_end(struct remote *r, pid_t tid, struct image *img, const struct files_rec *f,
		      const struct fd_rec *o, struct pipe_table *t, int base)
{
	size_t i = 0;
	while (i < t->n && t->e[i].id != o->pipe_id)
		i++;
	if (i == t->n) {
		int e = create(r, tid, img, f, o, base, t->e[i].ends);
		if (e < 0)
			return log_error_errno(e, "pid %d: cannot recreate the pipe of fd %d: %m", r->pid, o->fd);
		t->e[i].id = o->pipe_id;
		t->n++;
	}
	int fd = t->e[i].ends[is_read_end(o) ? 0 : 1];
	long ret = remote_syscall(r, tid, SYS_fcntl, fd, F_SETFL, o->flags & O_NONBLOCK);
	return ret < 0 ? ret : fd;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pipes whose both ends belong to the tree (a self-pipe, a shell pipeline):
 * the bytes sitting in them are saved once, without consuming them (tee
 * into a pipe of ours), and on restore the restorer makes the pipe, fills
 * it and hands its ends to the processes (fdpass.h). Which pipes lead
 * outside is decided in files-tree.c. */
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

bool pipe_is_read_end(const struct fd_rec *o)
{
	return (o->flags & O_ACCMODE) == O_RDONLY;
}

static void data_name(uint64_t id, char *buf, size_t size)
{
	snprintf(buf, size, "pipe-%llu.data", (unsigned long long)id);
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
		char name[64];
		data_name(o->pipe_id, name, sizeof(name));
		if (!pipe_is_read_end(o) || image_has(img, name))
			continue; /* saved already from another holder of the read end */
		_cleanup_free_ void *buf = NULL;
		size_t len = 0;
		int r = peek_pipe(fd, o->pipe_size, &buf, &len);
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot read the bytes queued in pipe fd %d: %m", pid, o->fd);
		if (!len)
			continue;
		if ((r = image_put(img, name, buf, len)) < 0)
			return r;
	}
	/* dup'ed ends share the original's open file description and size. */
	for (size_t i = 0; i < f->n; i++)
		for (size_t k = 0; f->fds[i].kind == FD_PIPE && f->fds[i].dup_of >= 0 && k < i; k++)
			if (f->fds[k].fd == f->fds[i].dup_of)
				f->fds[i].pipe_size = f->fds[k].pipe_size;
	return 0;
}

int pipe_fill(struct image *img, const struct fd_rec *o, int wfd)
{
	char name[64];
	data_name(o->pipe_id, name, sizeof(name));
	if (!image_has(img, name))
		return 0;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int e = image_get(img, name, MAX_PIPE_DATA, (void **)&buf, &len);
	if (e < 0)
		return e;
	if (len > o->pipe_size)
		return -EBADMSG;
	return write_all(wfd, buf, len);
}

int pipe_make(struct image *img, const struct fd_rec *o, int ends[2])
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	_cleanup_close_ int pr = p[0], pw = p[1];
	if (fcntl(pw, F_SETPIPE_SZ, o->pipe_size) < 0)
		return -errno;
	int e = pipe_fill(img, o, pw);
	if (e < 0)
		return e;
	ends[0] = TAKE_FD(pr);
	ends[1] = TAKE_FD(pw);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restoring the fds of one process: each fd is brought in by its kind
 * (open() or make(), files.h), then placed at its number with its
 * close-on-exec flag. Descriptions that several fds or processes share
 * are made once: the restorer keeps a table of what it made (the "made"
 * table of files_ctx), and every later holder gets a copy of that. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/files.h"
#include "engine/remote-batch.h"
#include "util/cleanup.h"
#include "util/log.h"

void files_ctx_done(struct files_ctx *c)
{
	for (size_t i = 0; i < c->nmade; i++)
		close(c->made[i].fd);
	free(c->made);
	c->made = NULL;
	c->nmade = 0;
}

int files_ctx_find(const struct files_ctx *c, uint64_t desc)
{
	for (size_t i = 0; i < c->nmade; i++)
		if (c->made[i].desc == desc)
			return c->made[i].fd;
	return -1;
}

int files_ctx_add(struct files_ctx *c, uint64_t desc, int fd)
{
	if (fd < 0)
		return fd;
	struct made_fd *m = realloc(c->made, (c->nmade + 1) * sizeof(*m));
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	c->made = m;
	m[c->nmade++] = (struct made_fd){ desc, fd };
	return 0;
}

long fd_push(const struct fd_restore *x, const struct fd_rec *o, int ours)
{
	long fd = fdpass_push(x->r, x->tid, x->c->ctl, x->tfd, ours);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot pass fd %d in: %m", x->r->pid, o->fd);
	return fd;
}

long fd_state_failed(const struct fd_restore *x, const struct fd_rec *o, long fd, int err)
{
	remote_syscall(x->r, x->tid, SYS_close, fd);
	return log_error_errno(err, "pid %d: cannot restore the state of fd %d (%s): %m", x->r->pid, o->fd, o->path);
}

/* Gets the description of o into the process, made by us (now, or for a
 * process before) or by the task itself. Returns its fd there (not yet
 * at o->fd); *opened: the task has it for the first time. */
static long bring_fd(const struct fd_restore *x, const struct fd_rec *o, bool *opened)
{
	int ours = files_ctx_find(x->c, o->desc);
	*opened = false;
	if (ours < 0 && !o->ops->make) {
		*opened = true;
		return o->ops->open(x, o);
	}
	if (ours < 0) {
		int e = o->ops->make(x, o);
		if (e < 0)
			return e;
		if ((ours = files_ctx_find(x->c, o->desc)) < 0)
			return log_error_errno(-ENOENT, "pid %d: fd %d (%s): its %s was made without this open file "
					       "description (a bug in stasis)", x->r->pid, o->fd, o->path, o->ops->name);
	}
	return fd_push(x, o, ours);
}

/* At o->fd, and the fd it came in on closed, in one round trip
 * (remote-batch.h); dup3 refuses equal fds: F_SETFD then. */
static int place_fd(struct remote *r, pid_t tid, const struct fd_rec *o, long fd, bool close_it)
{
	struct rbatch *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	rbatch_begin(b, r, tid);
	if (fd == o->fd)
		rbatch_call(b, 0, 0, SYS_fcntl, fd, F_SETFD, (o->flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
	else
		rbatch_call(b, 0, 0, SYS_dup3, fd, o->fd, (o->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
	if (close_it && fd != o->fd)
		rbatch_call(b, 1, RB_MAY_FAIL, SYS_close, fd);
	int e = rbatch_run(b);
	free(b);
	if (e < 0 && close_it && fd != o->fd)
		remote_syscall(r, tid, SYS_close, fd);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot place fd %d: %m", r->pid, o->fd);
	return 0;
}

/* A description opened here for the first time: set it up, and keep a
 * copy when other processes share it. */
static int first_open(const struct fd_restore *x, const struct fd_rec *o, int pidfd)
{
	int e;
	if (o->ops->setup && (e = o->ops->setup(x, o)) < 0)
		return e;
	if (o->shared && (e = files_ctx_add(x->c, o->desc, fdpass_take(pidfd, o->fd))) < 0)
		return log_error_errno(e, "pid %d: cannot take fd %d to share it: %m", x->r->pid, o->fd);
	return 0;
}

static int restore_one(const struct fd_restore *x, const struct fd_rec *o, int pidfd)
{
	bool opened = false;
	/* A dup's fd was restored before: fds are in ascending order. */
	long fd = o->dup_of >= 0 ? o->dup_of : bring_fd(x, o, &opened);
	if (fd < 0)
		return (int)fd;
	int e = place_fd(x->r, x->tid, o, fd, o->dup_of < 0);
	if (e < 0 || (opened && (e = first_open(x, o, pidfd)) < 0))
		return e;
	return 0;
}

int files_restore(struct files_ctx *c, struct remote *r, pid_t tid, const struct files_rec *f, int tfd, int pidfd,
		  bool root)
{
	int base = f->n ? f->fds[f->n - 1].fd + 1 : 3, e;
	/* The transport goes above every fd number the process will have. */
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	rbatch_begin(b, r, tid);
	size_t at = rbatch_call(b, 0, 0, SYS_fcntl, tfd, F_DUPFD_CLOEXEC, base < 64 ? 64 : base);
	rbatch_call(b, 1, RB_MAY_FAIL, SYS_close, tfd);
	if ((e = rbatch_run(b)) < 0)
		return log_error_errno(e, "pid %d: cannot move the fd transport: %m", r->pid);
	long t = b->calls[at].ret;
	struct fd_restore x = { .c = c, .r = r, .tid = tid, .tfd = (int)t, .root = root };

	/* Pass 0 restores everything but the late kinds, pass 1 those. */
	for (size_t k = 0; k < 2 * f->n; k++) {
		const struct fd_rec *o = &f->fds[k % f->n];
		if ((k < f->n) == o->ops->late)
			continue;
		if ((e = restore_one(&x, o, pidfd)) < 0)
			return e;
	}
	remote_syscall(r, tid, SYS_close, x.tfd);
	return 0;
}

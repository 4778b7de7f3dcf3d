/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who gets SIGIO (and SIGURG) for an open file description: its owner
 * (F_SETOWN, F_SETOWN_EX: a thread, a process or a process group), the
 * signal sent instead of SIGIO (F_SETSIG), and whether O_ASYNC is on.
 * Generic to every kind of fd: the owner belongs to the description.
 *
 * The owner must be of the tree (a process, a process group led by one,
 * or a thread of the fd's own process): restore sets it again by the same
 * number, which outside the tree could name anyone. open(2) keeps O_ASYNC
 * in the flags without arming it, so restore turns it off and on. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"

#define MAX_PID (1 << 22) /* PID_MAX_LIMIT */

static bool owner_valid(const struct fd_owner *w)
{
	return w->type >= F_OWNER_TID && w->type <= F_OWNER_PGRP && w->pid >= 0 && w->pid <= MAX_PID &&
	       w->sig >= 0 && w->sig <= 64;
}

int fd_owners_collect(pid_t pid, struct files_rec *f)
{
	_cleanup_close_ int pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0)
		return log_error_errno(-errno, "pid %d: cannot open a pidfd: %m", pid);
	for (size_t i = 0; i < f->n; i++) {
		struct fd_rec *o = &f->fds[i];
		struct f_owner_ex ex;
		if (o->flags & O_PATH)
			continue; /* no I/O, no owner (fcntl says EBADF) */
		_cleanup_close_ int fd = (int)syscall(SYS_pidfd_getfd, pidfd, o->fd, 0);
		int sig = fd < 0 ? -1 : fcntl(fd, F_GETSIG);
		if (sig < 0 || fcntl(fd, F_GETOWN_EX, &ex) < 0)
			return log_error_errno(-errno, "pid %d: cannot read the SIGIO owner of fd %d: %m", pid, o->fd);
		o->owner = (struct fd_owner){ .type = ex.type, .pid = ex.pid, .sig = sig };
	}
	return 0;
}

/* Is pid one the tree restores: a process, or a thread of pid self? */
static bool of_tree(const struct files_proc *v, size_t n, pid_t self, const struct fd_owner *w)
{
	char p[64];
	for (size_t i = 0; i < n; i++)
		if (v[i].pid == w->pid)
			return true;
	snprintf(p, sizeof(p), "/proc/%d/task/%d", self, w->pid);
	return w->type == F_OWNER_TID && access(p, F_OK) == 0;
}

int fd_owners_check(const struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			if (o->owner.pid && !fd_is_external(o) && !of_tree(v, n, v[i].pid, &o->owner))
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d (%s) sends SIGIO to %s %d, which is "
						       "not part of the tree; dump the tree that holds it, or clear "
						       "it with F_SETOWN 0", v[i].pid, o->fd, o->path,
						       o->owner.type == F_OWNER_PGRP ? "process group" : "pid",
						       o->owner.pid);
		}
	return 0;
}

void fd_owner_to_json(const struct fd_rec *o, struct json_builder *b)
{
	if ((!o->owner.pid && !o->owner.sig) || fd_is_external(o))
		return;
	struct json_builder x;
	jb_begin(&x);
	jb_int(&x, "type", o->owner.type);
	jb_int(&x, "pid", o->owner.pid);
	jb_int(&x, "sig", o->owner.sig);
	jb_obj(b, "owner", &x);
}

int fd_owner_from_json(const json_t *j, struct fd_rec *o)
{
	json_t *x = json_object_get(j, "owner");
	if (!x)
		return 0;
	if (!json_is_object(x) || json_get_int(x, "type", &o->owner.type) < 0 ||
	    json_get_int(x, "pid", &o->owner.pid) < 0 || json_get_int(x, "sig", &o->owner.sig) < 0 ||
	    !owner_valid(&o->owner))
		return -EBADMSG;
	return 0;
}

/* The owner by number, in the task (its pid namespace), once the
 * process's threads exist. */
static int set_owner(struct remote *r, pid_t tid, const struct fd_rec *o)
{
	struct f_owner_ex ex = { .type = o->owner.type, .pid = o->owner.pid };
	uint64_t at = r->scratch + 8192;
	long ret = remote_write(r, at, &ex, sizeof(ex));
	if (ret >= 0 && (o->owner.pid || o->owner.type != F_OWNER_PID))
		ret = remote_syscall(r, tid, SYS_fcntl, o->fd, F_SETOWN_EX, at);
	if (ret >= 0 && o->owner.sig)
		ret = remote_syscall(r, tid, SYS_fcntl, o->fd, F_SETSIG, o->owner.sig);
	return (int)(ret < 0 ? ret : 0);
}

/* O_ASYNC off and on again: that is what arms it. */
static int set_async(struct remote *r, pid_t tid, const struct fd_rec *o)
{
	long fl = remote_syscall(r, tid, SYS_fcntl, o->fd, F_GETFL);
	if (fl >= 0)
		fl = remote_syscall(r, tid, SYS_fcntl, o->fd, F_SETFL, fl & ~(long)O_ASYNC);
	if (fl >= 0)
		fl = remote_syscall(r, tid, SYS_fcntl, o->fd, F_SETFL, (fl & ~(long)O_ASYNC) | O_ASYNC);
	return (int)(fl < 0 ? fl : 0);
}

/* A pid from the image is one of the tree's, or a thread of pid's own:
 * never someone else the restorer could signal. */
static bool owner_allowed(const struct files_ctx *c, pid_t pid, const struct fd_owner *w)
{
	char p[64];
	for (size_t i = 0; i < c->nall; i++)
		if (c->all[i].pid == w->pid)
			return true;
	snprintf(p, sizeof(p), "/proc/%d/task/%d", pid, w->pid);
	return w->type == F_OWNER_TID && access(p, F_OK) == 0;
}

int files_restore_owners(struct files_ctx *c, struct remote *r, pid_t tid, const struct files_rec *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct fd_rec *o = &f->fds[i];
		int e = 0;
		if (o->dup_of >= 0 || fd_is_external(o))
			continue;
		if (o->owner.pid && !owner_allowed(c, r->pid, &o->owner))
			return log_error_errno(-EBADMSG, "pid %d: fd %d: the image names SIGIO owner %d, which is not "
					       "part of the tree; refusing it", r->pid, o->fd, o->owner.pid);
		if ((o->owner.pid || o->owner.sig) && (e = set_owner(r, tid, o)) < 0)
			return log_error_errno(e, "pid %d: cannot set the SIGIO owner of fd %d (%s) to %d: %m",
					       r->pid, o->fd, o->path, o->owner.pid);
		if ((o->flags & O_ASYNC) && (e = set_async(r, tid, o)) < 0)
			return log_error_errno(e, "pid %d: cannot turn O_ASYNC on for fd %d (%s): %m", r->pid, o->fd,
					       o->path);
	}
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pidfds: fdinfo names the process ("Pid:"), -1 once it has been reaped.
 *
 * A pidfd of a process of the tree (itself, a child, a zombie child) is
 * opened again inside the restored task with pidfd_open(): the tree has
 * its pids back, so the number names the same process. A pidfd of a
 * reaped process only says "gone" (pidfd_send_signal: ESRCH, waitid:
 * ECHILD, poll: readable and hung up); the restorer makes one that says
 * the same by opening a pidfd of a short-lived child of its own and
 * reaping it, then passes it in. That child's pid is free again before
 * anything else of the restore is created. A pidfd of a process outside
 * the tree is refused at dump: nothing guarantees the number names the
 * same process on restore. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/proc.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define PIDFD_DEAD (-1)
/* pidfd_open()'s flags as fdinfo shows them: PIDFD_NONBLOCK is
 * O_NONBLOCK, PIDFD_THREAD is O_EXCL. */
#define PIDFD_OPEN_FLAGS (O_NONBLOCK | O_EXCL)
#define PID_LIMIT 4194304 /* PID_MAX_LIMIT on 64-bit */

extern const struct fd_ops fd_pidfd_ops;

struct pidfd_state {
	pid_t pid; /* as the tree knows it, PIDFD_DEAD once reaped */
};

static bool pidfd_match(const struct fd_probe *p)
{
	return streq(p->link, "anon_inode:[pidfd]") || startswith(p->link, "pidfd:");
}

static int pidfd_collect(const struct fd_probe *p, struct fd_rec *o)
{
	pid_t pid;
	int r = proc_parse_pidfd_pid(p->fdinfo, p->fdinfo_len, &pid);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot read which process fd %d (a pidfd) names: %m", p->pid, p->fd);
	if (pid == 0 || pid < PIDFD_DEAD)
		return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is a pidfd of a process in another pid "
				       "namespace, which cannot be checkpointed", p->pid, p->fd);
	if ((r = fd_state_alloc(o, sizeof(struct pidfd_state))) < 0)
		return r;
	((struct pidfd_state *)o->state)->pid = pid;
	return 0;
}

/* A zombie child of a process of the tree is part of the tree too. */
static bool zombie_in_tree(const struct files_proc *v, size_t n, pid_t pid)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	struct proc_stat st;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (proc_read(AT_FDCWD, path, &buf, &len) < 0 || proc_parse_stat(buf, len, &st) < 0 || st.state != 'Z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i].pid == st.ppid)
			return true;
	return false;
}

static bool in_tree(const struct files_proc *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].pid == pid)
			return true;
	return zombie_in_tree(v, n, pid);
}

static int pidfd_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			const struct pidfd_state *s = o->state;
			if (o->ops != &fd_pidfd_ops || s->pid == PIDFD_DEAD || in_tree(v, n, s->pid))
				continue;
			return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is a pidfd of pid %d, which is not a "
					       "process of the tree; dump the tree that holds both", v[i].pid,
					       o->fd, s->pid);
		}
	return 0;
}

static void pidfd_to_json(const struct fd_rec *o, struct json_builder *b)
{
	jb_int(b, "pidfd_pid", ((const struct pidfd_state *)o->state)->pid);
}

static int pidfd_from_json(const json_t *j, struct fd_rec *o)
{
	int pid, r = json_get_int(j, "pidfd_pid", &pid);
	if (r < 0)
		return r;
	if (pid != PIDFD_DEAD && (pid < 1 || pid > PID_LIMIT))
		return -EBADMSG;
	if ((r = fd_state_alloc(o, sizeof(struct pidfd_state))) < 0)
		return r;
	((struct pidfd_state *)o->state)->pid = pid;
	return 0;
}

/* --- restore --- */

/* A pidfd of a process that has been reaped: a child of ours that
 * exits at once, opened before we reap it. */
static int make_dead(unsigned flags)
{
	pid_t child = fork();
	if (child < 0)
		return -errno;
	if (child == 0)
		_exit(0);
	int fd = sys_pidfd_open(child, flags), r = fd < 0 ? -errno : 0;
	while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
		;
	return r < 0 ? r : fd;
}

static long pidfd_open_remote(const struct fd_restore *x, const struct fd_rec *o)
{
	const struct pidfd_state *s = o->state;
	unsigned flags = o->flags & PIDFD_OPEN_FLAGS;
	long fd;
	if (s->pid != PIDFD_DEAD) {
		fd = remote_syscall(x->r, x->tid, SYS_pidfd_open, s->pid, flags);
		if (fd < 0)
			log_error_errno((int)fd, "pid %d: cannot open again fd %d, a pidfd of pid %d: %m", x->r->pid,
					o->fd, s->pid);
		return fd;
	}
	_cleanup_close_ int ours = make_dead(flags);
	if (ours < 0)
		return log_error_errno(ours, "pid %d: cannot make fd %d, a pidfd of a reaped process: %m", x->r->pid,
				       o->fd);
	return fd_push(x, o, ours);
}

const struct fd_ops fd_pidfd_ops = {
	.name = "pidfd",
	.match = pidfd_match,
	.collect = pidfd_collect,
	.link = pidfd_link,
	.to_json = pidfd_to_json,
	.from_json = pidfd_from_json,
	.open = pidfd_open_remote,
};

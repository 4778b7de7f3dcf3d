/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A new process or thread under a chosen pid, made by a stopped stub
 * (DESIGN.md §2.5). clone3 with set_tid needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE in the stub, which a container's stub lacks (it
 * has the container's own capabilities), and a seccomp profile may refuse
 * clone3 altogether. Then the controller, which runs in the stub's pid
 * namespace, moves that namespace's ns_last_pid to just below the pid
 * and the stub makes a plain clone: the privilege is ours, not the
 * container's. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/restore-int.h"
#include "engine/seize.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"

/* Scratch offsets, as the other remote calls use them. */
#define ARGS_AT 8192
#define TID_AT 12288

static bool same_pidns(pid_t tid)
{
	char path[64];
	struct stat ours, theirs;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", tid);
	return stat("/proc/self/ns/pid", &ours) == 0 && stat(path, &theirs) == 0 && ours.st_ino == theirs.st_ino &&
	       ours.st_dev == theirs.st_dev;
}

static int set_last_pid(pid_t pid)
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", pid);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return -errno;
	return 0;
}

/* The plain clone made another pid than asked for (someone took it in
 * between, or it was in use): it goes again, reaped by us, its tracer. A
 * thread ends itself: a kill would take its whole process, and a
 * container's init ignores one sent from inside its namespace. */
static long wrong_pid(struct remote *r, pid_t got, uint64_t flags)
{
	int status;
	if (!(flags & CLONE_THREAD))
		kill(got, SIGKILL);
	else if (wait_stop(got, &status) >= 0)
		remote_syscall(r, got, SYS_exit, 0);
	waitpid(got, NULL, __WALL);
	return -EEXIST;
}

static long by_last_pid(struct remote *r, pid_t tid, uint64_t flags, uint64_t stack_top, pid_t want)
{
	int e = set_last_pid(want - 1);
	if (e < 0)
		return log_error_errno(e, "cannot set ns_last_pid for pid %d: %m", want);
	/* x86-64: clone(flags, newsp, parent_tid, child_tid, tls). */
	uint64_t f = flags & CLONE_THREAD ? flags : flags | SIGCHLD;
	long got = remote_syscall(r, tid, SYS_clone, f, stack_top, 0, 0, 0);
	if (got > 0 && got != want)
		return wrong_pid(r, (pid_t)got, flags);
	return got;
}

long restore_clone(struct remote *r, pid_t tid, uint64_t flags, uint64_t stack, uint64_t stack_size, pid_t want)
{
	/* clone3 wants no exit signal with CLONE_PARENT: the child gets its
	 * maker's (share.h), SIGCHLD like every process of ours. */
	struct clone_args_v2 a = { .flags = flags, .exit_signal = flags & (CLONE_THREAD | CLONE_PARENT) ? 0 : SIGCHLD,
				   .stack = stack, .stack_size = stack_size, .set_tid = r->scratch + TID_AT, .set_tid_size = 1 };
	int e = remote_write(r, r->scratch + TID_AT, &want, sizeof(want));
	if (e < 0 || (e = remote_write(r, r->scratch + ARGS_AT, &a, sizeof(a))) < 0)
		return e;
	long ret = remote_syscall(r, tid, SYS_clone3, r->scratch + ARGS_AT, sizeof(a));
	if ((ret != -EPERM && ret != -ENOSYS) || !same_pidns(tid))
		return ret;
	log_debug("pid %d: clone3 refused (%s): pid %d through ns_last_pid", r->pid, strerror((int)-ret), want);
	return by_last_pid(r, tid, flags, stack ? stack + stack_size : 0, want);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A parent waiting in vfork for a child that has not called exec
 * (vfork.h): it is blocked in the kernel until the child execs or exits,
 * which no ptrace stop interrupts and no restore can enter again. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/proc.h"
#include "engine/vfork.h"
#include "util/cleanup.h"
#include "util/log.h"

/* The parent waits for its vfork child (vfork, or clone/clone3 with
 * CLONE_VFORK, the syscall it is stopped in). */
bool vfork_waiting(pid_t pid)
{
	char path[64], buf[256];
	long nr = -1;
	unsigned long flags = 0;
	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = 0;
	if (sscanf(buf, "%ld %lx", &nr, &flags) < 1)
		return false;
	return nr == SYS_vfork || (nr == SYS_clone && (flags & CLONE_VFORK)) || nr == SYS_clone3;
}

/* A vfork child before its exec: its parent is blocked in the kernel
 * until the child execs or exits, a wait no syscall enters again. */
int vfork_refuse(pid_t child, pid_t parent)
{
	return log_error_errno(-EOPNOTSUPP, "pid %d is a vfork child of pid %d before its exec: the parent waits "
			       "in the kernel until the child execs or exits, a wait no restore can enter again; "
			       "dump after the exec", child, parent);
}

/* The child pid waits for: one of its children with its memory. */
static pid_t vfork_child_of(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	if (proc_read(AT_FDCWD, path, &buf, &len) < 0)
		return 0;
	for (char *p = buf, *end; *p; p = end) {
		long c = strtol(p, &end, 10);
		if (end == p)
			break;
		if (c > 0 && syscall(SYS_kcmp, pid, (pid_t)c, KCMP_VM, 0, 0) == 0)
			return (pid_t)c;
	}
	return 0;
}

int vfork_check(pid_t pid)
{
	return vfork_waiting(pid) ? vfork_refuse(vfork_child_of(pid), pid) : 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/seize.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static long seize_options(int which)
{
	/* TRACESYSGOOD tells syscall stops from SIGTRAP; SUSPEND_SECCOMP lets
	 * remote syscalls run whatever the task's filter says; EXITKILL makes a
	 * crashed restorer take its half-built process with it. */
	long o = PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP;
	if (which == SEIZE_OPTS_RESTORE)
		o |= PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL;
	return o;
}

int wait_stop(pid_t tid, int *ret_status)
{
	int status;
	for (;;) {
		pid_t w = waitpid(tid, &status, __WALL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		break;
	}
	if (WIFEXITED(status) || WIFSIGNALED(status))
		return -ESRCH;
	*ret_status = status;
	return 0;
}

bool status_is_syscall_stop(int status)
{
	return WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80);
}

bool status_is_event(int status, int event)
{
	return WIFSTOPPED(status) && (status >> 16) == event;
}

int seize_start(pid_t tid, int which)
{
	if (ptrace(PTRACE_SEIZE, tid, 0, seize_options(which)) < 0)
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		return -errno;
	return 0;
}

int seize_wait(pid_t tid)
{
	int status, r;
	for (;;) {
		r = wait_stop(tid, &status);
		if (r < 0)
			return r;
		if (status_is_event(status, PTRACE_EVENT_STOP))
			return 0;
		/* A signal-delivery stop: let the signal take its course; the
		 * pending interrupt stops the thread right after. */
		int sig = WSTOPSIG(status);
		if (ptrace(PTRACE_CONT, tid, 0, sig) < 0)
			return -errno;
	}
}

int seize_thread(pid_t tid, int which)
{
	int r = seize_start(tid, which);
	return r < 0 ? r : seize_wait(tid);
}

int seize_set_exitkill(pid_t tid)
{
	long o = seize_options(SEIZE_OPTS_DUMP) | PTRACE_O_EXITKILL;
	return ptrace(PTRACE_SETOPTIONS, tid, 0, o) < 0 ? -errno : 0;
}

void detach_thread(pid_t tid)
{
	(void)ptrace(PTRACE_DETACH, tid, 0, 0);
}

int list_tids(pid_t pid, pid_t **ret, size_t *ret_n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return -errno;
	_cleanup_free_ pid_t *t = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t tid;
		if (parse_pid(de->d_name, &tid) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			pid_t *nt = realloc(t, cap * sizeof(*t));
			if (!nt)
				return -ENOMEM;
			t = nt;
		}
		t[n++] = tid;
	}
	*ret = TAKE_PTR(t);
	*ret_n = n;
	return 0;
}

static bool contains(const pid_t *v, size_t n, pid_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

int seize_all(pid_t pid, int which, pid_t **ret_tids, size_t *ret_n)
{
	_cleanup_free_ pid_t *done = NULL;
	size_t ndone = 0;
	int r;

	/* Threads can be created while we seize others: loop until a pass
	 * finds no new one. The main thread goes first, so done[0] == pid. */
	for (int pass = 0; pass < 100; pass++) {
		_cleanup_free_ pid_t *tids = NULL;
		size_t n = 0;
		bool fresh = false;

		r = list_tids(pid, &tids, &n);
		if (r < 0)
			goto fail;
		if (!contains(tids, n, pid)) {
			r = -ESRCH;
			goto fail;
		}
		pid_t *nd = realloc(done, (ndone + n) * sizeof(*done));
		if (!nd) {
			r = -ENOMEM;
			goto fail;
		}
		done = nd;
		for (size_t i = 0; i <= n; i++) {
			pid_t tid = i == 0 ? pid : tids[i - 1];
			if (contains(done, ndone, tid))
				continue;
			r = seize_thread(tid, which);
			if (r == -ESRCH && tid != pid)
				continue; /* exited meanwhile */
			if (r < 0)
				goto fail;
			done[ndone++] = tid;
			fresh = true;
		}
		if (!fresh) {
			*ret_tids = TAKE_PTR(done);
			*ret_n = ndone;
			return 0;
		}
	}
	r = -EAGAIN;
fail:
	for (size_t i = 0; i < ndone; i++)
		detach_thread(done[i]);
	return r;
}

/* TracerPid of pid's main thread, and the tracer's command; 0 if none. */
static pid_t tracer_of(pid_t pid, char comm[64])
{
	char path[64], line[256];
	long tracer = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %ld", &tracer) == 1)
			break;
	snprintf(comm, 64, "?");
	snprintf(path, sizeof(path), "/proc/%ld/comm", tracer);
	_cleanup_fclose_ FILE *c = tracer > 0 ? fopen(path, "re") : NULL;
	if (c && fgets(comm, 64, c))
		comm[strcspn(comm, "\n")] = 0;
	return (pid_t)tracer;
}

int seize_refused(pid_t pid, int r)
{
	char comm[64];
	pid_t tracer = r == -EPERM ? tracer_of(pid, comm) : 0;
	if (tracer > 0 && tracer != getpid())
		return log_error_errno(-EBUSY, "pid %d is already traced by pid %d (%s): detach that debugger or "
				       "tracer first, then try again", pid, tracer, comm);
	if (r == -EPERM)
		return log_error_errno(r, "cannot stop pid %d with ptrace: %m (stasis needs root, with "
				       "CAP_SYS_PTRACE, and no LSM or Yama ptrace_scope 3 in the way)", pid);
	return log_error_errno(r == -ESRCH ? -EAGAIN : r, "cannot freeze pid %d: %m", pid);
}

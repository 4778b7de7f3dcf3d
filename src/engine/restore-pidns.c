/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --pidns: when the tree's pids are taken on this host, the restore runs
 * in a new pid namespace, where they are free. Our child becomes that
 * namespace's init and does the whole restore from inside, so every pid it
 * handles is the image's own; it needs its own /proc for that, hence a
 * new mount namespace (a private copy of ours) as well, which the
 * restored tree shares. After the restore it stays as the namespace's init,
 * reaping orphans, and exits with the root's status when all are gone. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/dump.h"
#include "util/log.h"
#include "util/util.h"

static _Noreturn void be_init(pid_t root)
{
	int status = 0, root_status = 0;
	syscall(SYS_close_range, 0, ~0U, 0);
	for (;;) {
		pid_t w = waitpid(-1, &status, __WALL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		if (w == root)
			root_status = status;
	}
	if (WIFSIGNALED(root_status))
		_exit(128 + WTERMSIG(root_status));
	_exit(WEXITSTATUS(root_status));
}

static _Noreturn void child(struct image *img, const struct restore_opts *o, int report)
{
	pid_t pid = 0;
	int r = 0;
	/* Our /proc must show this namespace's pids. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		r = log_error_errno(-errno, "cannot mount /proc in the new pid namespace: %m");
	if (r == 0)
		r = restore_process(img, o, &pid);
	(void)!write(report, &r, sizeof(r));
	close(report);
	if (r < 0)
		_exit(1);
	be_init(pid);
}

/* The root's pid as we see it: the only child of the namespace's init. */
static pid_t find_root(pid_t init)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", init, init);
	FILE *f = fopen(path, "re");
	long pid = 0;
	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return (pid_t)pid;
}

int restore_pidns(struct image *img, const struct restore_opts *o, pid_t *ret_root, pid_t *ret_init)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return log_error_errno(-errno, "cannot make a pipe: %m");
	/* A plain fork into new namespaces: nothing else runs in us yet. */
	pid_t init = (pid_t)syscall(SYS_clone, SIGCHLD | CLONE_NEWPID | CLONE_NEWNS, NULL, NULL, NULL, 0);
	if (init == 0) {
		close(p[0]);
		child(img, o, p[1]);
	}
	int e = errno;
	close(p[1]);
	if (init < 0) {
		close(p[0]);
		return log_error_errno(-e, "cannot create a pid namespace: %m");
	}
	int r = -EIO;
	ssize_t n = read(p[0], &r, sizeof(r));
	close(p[0]);
	pid_t root = n == sizeof(r) && r >= 0 ? find_root(init) : 0;
	if (root <= 0) {
		kill(init, SIGKILL);
		waitpid(init, NULL, 0);
		if (n != sizeof(r))
			return log_error_errno(-EIO, "the pid namespace's init died before it reported");
		return r < 0 ? r : log_error_errno(-ESRCH, "the restored tree is gone from its pid namespace");
	}
	*ret_root = root;
	*ret_init = init;
	return 0;
}

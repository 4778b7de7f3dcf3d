/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Namespace fds: the process holds its own net, uts and pid entries and
 * its child's mnt entry open. After restore each must name the namespace
 * the (restored) process is in, and setns() must accept it.
 *
 * stasis-test: zdtm:nsfd
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmtst.h"

static int open_ns(pid_t pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		test_die("open %s: %s", path, strerror(errno));
	return fd;
}

static void same_ns(int fd, pid_t pid, const char *name)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	check(fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino,
	      "fd %d does not name the %s namespace of pid %d", fd, name, pid);
}

int main(int argc, char **argv)
{
	static const char *const mine[] = { "net", "uts", "pid" };
	int fds[3];
	test_init(argc, argv);
	pid_t child = fork();
	if (child < 0)
		test_die("fork: %s", strerror(errno));
	if (child == 0) {
		signal(SIGUSR1, SIG_IGN);
		for (;;)
			pause();
	}
	for (int i = 0; i < 3; i++)
		fds[i] = open_ns(getpid(), mine[i]);
	int mnt = open_ns(child, "mnt");

	test_ready();
	test_wait();

	for (int i = 0; i < 3; i++)
		same_ns(fds[i], getpid(), mine[i]);
	same_ns(mnt, child, "mnt");
	check(setns(fds[1], CLONE_NEWUTS) == 0, "setns on the restored uts fd: %s", strerror(errno));
	kill(child, SIGKILL);
	test_done();
}

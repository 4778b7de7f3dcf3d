/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Open /proc entries of processes of the tree: /proc/self/status, the
 * child's /proc/PID/stat, a directory fd of /proc/self and of the
 * child's /proc/PID/fd, a /proc/self/fd/N reopened by number. After
 * restore each reads the restored process's own entry (its pid, its
 * state), and the directories list what they should.
 *
 * stasis-test: zdtm:procfs
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

static int xopen(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		test_die("open %s: %m", path);
	return fd;
}

/* The value of "Pid:" in a status text read from fd at its start. */
static long status_pid(int fd)
{
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -errno;
	buf[n] = 0;
	const char *p = strstr(buf, "\nPid:");
	return p ? strtol(p + 5, NULL, 10) : -1;
}

int main(int argc, char **argv)
{
	char p[64], buf[256];
	test_init(argc, argv);
	pid_t kid = fork();
	if (kid == 0) {
		test_wait();
		_exit(0);
	}
	int st = xopen("/proc/self/status", O_RDONLY);
	snprintf(p, sizeof(p), "/proc/%d/stat", kid);
	int kst = xopen(p, O_RDONLY);
	int self = xopen("/proc/self", O_RDONLY | O_DIRECTORY);
	snprintf(p, sizeof(p), "/proc/%d/fd", kid);
	int kfd = xopen(p, O_RDONLY | O_DIRECTORY);
	test_ready();
	test_wait();
	check(status_pid(st) == getpid(), "/proc/self/status reads pid %ld, want %d", status_pid(st), getpid());
	ssize_t n = pread(kst, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	check(n > 0 && strtol(buf, NULL, 10) == kid, "the child's stat reads '%.20s', want pid %d", buf, kid);
	int s2 = openat(self, "status", O_RDONLY | O_CLOEXEC);
	check(s2 >= 0 && status_pid(s2) == getpid(), "status under the /proc/self fd is not ours");
	DIR *d = fdopendir(kfd);
	int fds = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		fds += de->d_name[0] != '.';
	check(d && fds >= 1, "the child's fd directory lists %d fds", fds);
	kill(kid, SIGUSR1);
	int ws = 0;
	check(waitpid(kid, &ws, 0) == kid && WIFEXITED(ws), "child: %#x", ws);
	test_done();
}

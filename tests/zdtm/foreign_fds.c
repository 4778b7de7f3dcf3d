/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Holds an fd that names something outside the tree, which a restore
 * could not find again: "pidfd", a pidfd of its parent (the runner);
 * "ns", a uts namespace fd of a namespace no process is in any more (a
 * child that unshared it and has been reaped). The dump must refuse,
 * naming pid, fd and what, and leave this process running.
 *
 * stasis-test: zdtm:foreign_fds:pidfd args=pidfd dump=no  # dumping it is fail:foreign-pidfd
 * stasis-test: zdtm:foreign_fds:ns args=ns dump=no  # dumping it is fail:foreign-ns
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

static int foreign_ns(void)
{
	int p[2];
	char path[64], c;
	if (pipe(p) < 0)
		test_die("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child == 0) {
		c = unshare(CLONE_NEWUTS) == 0 ? 'y' : 'n';
		(void)!write(p[1], &c, 1);
		pause();
		_exit(0);
	}
	if (child < 0 || read(p[0], &c, 1) != 1 || c != 'y')
		test_die("unshare(CLONE_NEWUTS) in a child failed");
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", child);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(p[0]);
	close(p[1]);
	return fd;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	bool ns = argc > 1 && !strcmp(argv[1], "ns");
	int fd = ns ? foreign_ns() : (int)syscall(SYS_pidfd_open, getppid(), 0);
	if (fd < 0)
		test_die("open: %s", strerror(errno));
	test_msg("the foreign fd is %d", fd);

	test_ready();
	test_wait();

	check(fcntl(fd, F_GETFD) >= 0, "fd %d is gone", fd);
	test_done();
}

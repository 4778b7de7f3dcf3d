/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pidfds: of itself (O_NONBLOCK), of a live child, of a zombie
 * child, and of a child that has been reaped (fdinfo "Pid: -1"). After
 * restore each names the same process: the live child is killed through
 * its pidfd and reaped with waitid(P_PIDFD), the zombie's status is read
 * through its pidfd, and the reaped one still says "gone".
 *
 * stasis-test: zdtm:pidfd
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int pidfd_send_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* The "Pid:" line of the fd's fdinfo, or -2. */
static int fdinfo_pid(int fd)
{
	char path[64], line[128];
	int pid = -2;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	if (f)
		fclose(f);
	return pid;
}

static pid_t spawn(int code)
{
	pid_t p = fork();
	if (p < 0)
		test_die("fork: %s", strerror(errno));
	if (p == 0) {
		signal(SIGUSR1, SIG_IGN);
		if (code >= 0)
			_exit(code);
		for (;;)
			pause();
	}
	return p;
}

static void check_live(int fd, pid_t child)
{
	siginfo_t si = { 0 };
	check(fdinfo_pid(fd) == child, "child pidfd names pid %d, expected %d", fdinfo_pid(fd), child);
	check(pidfd_send_signal(fd, SIGTERM) == 0, "pidfd_send_signal to the child: %s", strerror(errno));
	check(waitid(P_PIDFD, (id_t)fd, &si, WEXITED) == 0, "waitid(P_PIDFD) on the child: %s", strerror(errno));
	check(si.si_pid == child && si.si_code == CLD_KILLED && si.si_status == SIGTERM,
	      "child: waitid gave pid %d code %d status %d", si.si_pid, si.si_code, si.si_status);
}

static void check_zombie(int fd, pid_t z)
{
	siginfo_t si = { 0 };
	check(fdinfo_pid(fd) == z, "zombie pidfd names pid %d, expected %d", fdinfo_pid(fd), z);
	check(waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) == 0, "waitid on the zombie: %s", strerror(errno));
	check(si.si_pid == z && si.si_code == CLD_EXITED && si.si_status == 7,
	      "zombie: waitid gave pid %d code %d status %d", si.si_pid, si.si_code, si.si_status);
}

static void check_dead(int fd)
{
	siginfo_t si;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	check(fdinfo_pid(fd) == -1, "reaped pidfd names pid %d, expected -1", fdinfo_pid(fd));
	check(pidfd_send_signal(fd, 0) < 0 && errno == ESRCH, "signal through the reaped pidfd: %s", strerror(errno));
	check(waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD,
	      "waitid on the reaped pidfd did not fail with ECHILD");
	check(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "reaped pidfd is not readable (revents %#x)", p.revents);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pid_t child = spawn(-1), z = spawn(7), gone = spawn(0);
	int self = pidfd_open(getpid(), O_NONBLOCK);
	int cfd = pidfd_open(child, 0), zfd = pidfd_open(z, 0), dfd = pidfd_open(gone, 0);
	if (self < 0 || cfd < 0 || zfd < 0 || dfd < 0)
		test_die("pidfd_open: %s", strerror(errno));
	if (waitpid(gone, NULL, 0) != gone)
		test_die("waitpid: %s", strerror(errno));
	siginfo_t si = { 0 };
	while (waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		; /* a zombie, not reaped */

	test_ready();
	test_wait();

	check(fdinfo_pid(self) == getpid(), "own pidfd names pid %d, expected %d", fdinfo_pid(self), getpid());
	check(fcntl(self, F_GETFL) & O_NONBLOCK, "own pidfd lost PIDFD_NONBLOCK");
	check(pidfd_send_signal(self, 0) == 0, "signal 0 through own pidfd: %s", strerror(errno));
	check_live(cfd, child);
	check_zombie(zfd, z);
	check_dead(dfd);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SIGIO owners: a pipe with O_ASYNC owned by the process (F_SETOWN,
 * plain SIGIO), a socketpair end owned by the main thread
 * (F_SETOWN_EX F_OWNER_TID) that sends a real-time signal (F_SETSIG)
 * carrying the fd, a pipe owned by a child, and one owned by the
 * process group (F_SETOWN -pgid) with its own signal. After restore the
 * owners, signals and O_ASYNC read back the same and each signal still
 * arrives when data comes in.
 *
 * stasis-test: zdtm:fasync
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

static volatile sig_atomic_t got_io, got_rt, got_grp, rt_fd = -1;

static void on_grp(int sig)
{
	(void)sig;
	got_grp++;
}

static void on_io(int sig)
{
	(void)sig;
	got_io++;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	got_rt++;
	rt_fd = si->si_fd;
}

static void async_on(int fd)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK) < 0)
		test_die("O_ASYNC: %m");
}

static bool wait_for(volatile sig_atomic_t *v)
{
	for (int i = 0; i < 500 && !*v; i++)
		usleep(10000);
	return *v;
}

static void check_owner(int fd, int type, int pid, int sig, const char *what)
{
	struct f_owner_ex ex = { 0 };
	check(fcntl(fd, F_GETOWN_EX, &ex) == 0 && (int)ex.type == type && ex.pid == pid, "%s: owner %d/%d, want %d/%d",
	      what, ex.type, ex.pid, type, pid);
	check(fcntl(fd, F_GETSIG) == sig, "%s: signal %d, want %d", what, fcntl(fd, F_GETSIG), sig);
	check(fcntl(fd, F_GETFL) & O_ASYNC, "%s: O_ASYNC is off", what);
}

static int child(int fd)
{
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGIO);
	sigaddset(&m, SIGRTMIN + 3); /* the group's signal is the parent's business */
	sigprocmask(SIG_BLOCK, &m, NULL);
	sigdelset(&m, SIGRTMIN + 3);
	int sig = 0;
	if (sigwait(&m, &sig) != 0 || sig != SIGIO)
		return 1;
	char c;
	return read(fd, &c, 1) == 1 && c == 'k' ? 0 : 2;
}

int main(int argc, char **argv)
{
	int p[2], s[2], k[2], g[2], rtsig = SIGRTMIN + 2, grpsig = SIGRTMIN + 3;
	struct sigaction sa = { .sa_sigaction = on_rt, .sa_flags = SA_SIGINFO };
	test_init(argc, argv);
	signal(SIGIO, on_io);
	signal(grpsig, on_grp);
	if (setpgid(0, 0) < 0)
		test_die("setpgid: %m");
	sigaction(rtsig, &sa, NULL);
	if (pipe2(p, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0 ||
	    pipe2(k, O_CLOEXEC) < 0 || pipe2(g, O_CLOEXEC) < 0)
		test_die("setup: %m");
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGIO);
	sigaddset(&m, grpsig);
	sigprocmask(SIG_BLOCK, &m, NULL); /* the child inherits them blocked, before the owners are set */
	pid_t kid = fork();
	if (kid == 0)
		_exit(child(k[0]));
	sigprocmask(SIG_UNBLOCK, &m, NULL);
	struct f_owner_ex me = { F_OWNER_TID, (pid_t)syscall(SYS_gettid) };
	if (fcntl(p[0], F_SETOWN, getpid()) < 0 || fcntl(s[0], F_SETOWN_EX, &me) < 0 ||
	    fcntl(s[0], F_SETSIG, rtsig) < 0 || fcntl(k[0], F_SETOWN, kid) < 0 || fcntl(g[0], F_SETOWN, -getpid()) < 0 ||
	    fcntl(g[0], F_SETSIG, grpsig) < 0)
		test_die("owners: %m");
	async_on(p[0]);
	async_on(s[0]);
	async_on(k[0]);
	async_on(g[0]);
	got_io = got_rt = 0;
	test_ready();
	test_wait();
	check_owner(p[0], F_OWNER_PID, getpid(), 0, "the pipe");
	check_owner(s[0], F_OWNER_TID, me.pid, rtsig, "the socket");
	check_owner(k[0], F_OWNER_PID, kid, 0, "the child's pipe");
	check_owner(g[0], F_OWNER_PGRP, getpid(), grpsig, "the group's pipe");
	got_io = got_rt = 0;
	check(write(p[1], "x", 1) == 1, "write: %m");
	check(wait_for(&got_io), "no SIGIO after a write into the pipe");
	check(write(s[1], "y", 1) == 1, "send: %m");
	check(wait_for(&got_rt), "no signal %d after a write into the socket", rtsig);
	check(rt_fd == s[0], "the signal names fd %d, want %d", (int)rt_fd, s[0]);
	check(write(g[1], "g", 1) == 1, "write: %m");
	check(wait_for(&got_grp), "no signal %d for the process group", grpsig);
	check(write(k[1], "k", 1) == 1, "write: %m");
	int st = 0;
	check(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child got no SIGIO (%#x)", st);
	test_done();
}

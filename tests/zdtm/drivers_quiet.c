/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A tree restored by several drivers (src/engine/restore-drivers.c hands
 * processes between threads of the restorer: parked, detached, seized
 * again) must not see any of it: the root and each of its six children,
 * each the parent of one grandchild, count the SIGCHLD they get (handler
 * installed, SIGCHLD unblocked, stops and continues reported) and ask
 * waitid for any child event; none may come from the restore. Then each
 * lets its children exit and checks that they did, cleanly.
 *
 * stasis-test: zdtm:drivers_quiet
 */
#include "zdtmtst.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIDS 6

static volatile sig_atomic_t nchld;

static void on_chld(int sig)
{
	(void)sig;
	nchld++;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Nothing about our children since the start: no signal, no event. */
static const char *quiet(void)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (nchld)
		return "SIGCHLD came";
	if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) < 0)
		return "waitid failed";
	return si.si_pid ? "a child event is waiting" : NULL;
}

static int reap(pid_t pid)
{
	int status;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void setup_handler(void)
{
	struct sigaction sa = { .sa_handler = on_chld, .sa_flags = SA_RESTART };
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	if (sigaction(SIGCHLD, &sa, NULL) < 0 || sigprocmask(SIG_UNBLOCK, &s, NULL) < 0)
		test_die("sigaction: %s", strerror(errno));
}

static void wait_closed(int go)
{
	char c;
	while (read(go, &c, 1) < 0 && errno == EINTR)
		;
}

/* Waits on go until it closes, then checks its own quiet and lets its
 * grandchild (which waits the same way) exit, and reaps it. */
static void child(int go)
{
	int kgo[2];
	if (pipe(kgo) < 0)
		_exit(3);
	pid_t kid = fork();
	if (kid == 0) {
		close(kgo[1]);
		wait_closed(kgo[0]);
		_exit(0);
	}
	close(kgo[0]);
	wait_closed(go);
	sleep_ms(50);
	int bad = kid < 0 || quiet() != NULL;
	close(kgo[1]);
	_exit(bad || reap(kid) < 0 ? 1 : 0);
}

int main(int argc, char **argv)
{
	pid_t kids[KIDS];
	int go[KIDS][2];
	test_init(argc, argv);
	setup_handler();
	for (int i = 0; i < KIDS; i++) {
		if (pipe(go[i]) < 0)
			test_die("pipe: %s", strerror(errno));
		if ((kids[i] = fork()) < 0)
			test_die("fork: %s", strerror(errno));
		if (!kids[i]) {
			close(go[i][1]);
			child(go[i][0]);
		}
		close(go[i][0]);
	}
	sleep_ms(100); /* every grandchild forked */
	test_ready();
	test_wait();
	sleep_ms(100); /* anything late would have come by now */
	const char *why = quiet();
	check(!why, "root: %s", why);
	for (int i = 0; i < KIDS; i++)
		close(go[i][1]);
	for (int i = 0; i < KIDS; i++)
		check(reap(kids[i]) == 0, "child %d (pid %d) found its grandchild or SIGCHLD wrong", i, kids[i]);
	test_done();
}

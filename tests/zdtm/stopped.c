/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stopped tasks: one child stopped by SIGSTOP from its parent, one that
 * stopped itself with SIGTSTP in a process group of its own (its thread
 * stops too). Neither stop has
 * been waited for. After restore both are still stopped, the parent sees
 * each in waitpid(WUNTRACED), and after SIGCONT both run again.
 *
 * stasis-test: zdtm:stopped
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

static int done_pipe[2];

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void on_cont(int sig)
{
	(void)sig;
	(void)!write(done_pipe[1], "c", 1);
}

static pid_t spawn(bool self_stop, bool thread)
{
	pid_t p = fork();
	if (p < 0)
		test_die("fork: %s", strerror(errno));
	if (p)
		return p;
	pthread_t t;
	signal(SIGUSR1, SIG_IGN);
	if (thread && pthread_create(&t, NULL, idle, NULL) != 0)
		_exit(2);
	/* A group of its own, whose parent is in another group of the same
	 * session, is not orphaned: the kernel would drop SIGTSTP there. */
	if (self_stop && (setpgid(0, 0) < 0 || raise(SIGTSTP) != 0))
		_exit(3);
	for (;;)
		pause();
}

static char state_of(pid_t pid)
{
	char path[64], buf[256], *p;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] && p[2] ? p[2] : '?';
}

static void wait_state(pid_t pid, char want)
{
	for (int i = 0; i < 200 && state_of(pid) != want; i++)
		usleep(10000);
}

static void check_stopped(pid_t pid, const char *what)
{
	int status = 0;
	check(state_of(pid) == 'T', "%s child %d is in state %c, expected T (stopped)", what, pid, state_of(pid));
	pid_t w = waitpid(pid, &status, WUNTRACED | WNOHANG);
	check(w == pid && WIFSTOPPED(status), "%s child: waitpid(WUNTRACED) gave %d status %#x, expected a stop",
	      what, w, status);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (pipe(done_pipe) < 0)
		test_die("pipe: %s", strerror(errno));
	signal(SIGCONT, on_cont); /* before the fork: a is stopped at once */
	pid_t a = spawn(false, false), b = spawn(true, true);
	kill(a, SIGSTOP);
	wait_state(a, 'T');
	wait_state(b, 'T');
	if (state_of(a) != 'T' || state_of(b) != 'T')
		test_die("children did not stop (%c %c)", state_of(a), state_of(b));

	test_ready();
	test_wait();

	check_stopped(a, "SIGSTOP");
	check_stopped(b, "SIGTSTP");
	kill(a, SIGCONT);
	kill(b, SIGCONT);
	char c;
	struct pollfd p = { .fd = done_pipe[0], .events = POLLIN };
	for (int i = 0; i < 2; i++)
		check(poll(&p, 1, 5000) == 1 && read(done_pipe[0], &c, 1) == 1, "child %d did not run after SIGCONT", i);
	wait_state(a, 'S');
	check(state_of(a) != 'T' && state_of(b) != 'T', "children still stopped after SIGCONT (%c %c)", state_of(a),
	      state_of(b));
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	test_done();
}

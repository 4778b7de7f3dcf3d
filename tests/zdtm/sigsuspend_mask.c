/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Calls that wait with a temporary signal mask: the main thread in
 * sigsuspend, one thread each in ppoll and pselect (a pipe that never
 * becomes readable, no timeout) and one in epoll_pwait, all with a mask
 * (SIGHUP, SIGTTIN; the threads also SIGUSR1, which is for the main thread)
 * other than their normal one (SIGUSR1, SIGUSR2, SIGWINCH blocked). While a thread waits, /proc shows the temporary mask;
 * the kernel keeps the normal one aside and puts it back as the call
 * returns. A dump interrupts these calls and the restore makes them start
 * again (ERESTARTNOHAND), so:
 *  - sigsuspend, ppoll and pselect return only when a handler ran in that
 *    thread (no EINTR the program can see without a signal);
 *  - after each return the thread's mask is its normal one.
 * epoll_pwait is the exception the kernel makes: it fails with EINTR when
 * its thread is stopped and resumed (signal(7)), as under any tracer, so
 * it is only checked for its mask.
 *
 * stasis-test: zdtm:sigsuspend_mask
 * stasis-test: zdtm:sigsuspend_mask:lazy restore_args=--lazy asan=no
 * stasis-test: zdtm:sigsuspend_mask:3-iterations iterations=3 asan=no
 */
#include "zdtmtst.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

enum waiter { W_PPOLL, W_PSELECT, W_EPOLL, NWAIT };
static const char *const names[NWAIT] = { "ppoll", "pselect", "epoll_pwait" };

static sigset_t normal, temp, temp_thr; /* temp_thr keeps SIGUSR1 for main */
static volatile sig_atomic_t usr1_count;
static __thread volatile sig_atomic_t usr2_here; /* handlers run in this thread */
static int pipefd[2];
static pthread_t threads[NWAIT];
static char result[NWAIT][160]; /* "" when right */
static int epoll_eintr; /* EINTR without a handler: the kernel's own */

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
	test_go = 1;
}

static void on_usr2(int sig)
{
	(void)sig;
	usr2_here++;
}

static bool mask_is(const sigset_t *want)
{
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&cur, s) != sigismember(want, s))
			return false;
	return true;
}

static int wait_once(enum waiter w, int ep)
{
	struct pollfd p = { pipefd[0], POLLIN, 0 };
	fd_set rd;
	struct epoll_event ev;
	switch (w) {
	case W_PPOLL:
		return ppoll(&p, 1, NULL, &temp_thr);
	case W_PSELECT:
		FD_ZERO(&rd);
		FD_SET(pipefd[0], &rd);
		return pselect(pipefd[0] + 1, &rd, NULL, NULL, NULL, &temp_thr);
	default:
		return epoll_pwait(ep, &ev, 1, -1, &temp_thr);
	}
}

static int started; /* waiters with their epoll fd made */

/* Waits until a handler ran in this thread; the first wrong return ends it. */
static void *waiter_main(void *arg)
{
	enum waiter w = (enum waiter)(long)arg;
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev) < 0)
		snprintf(result[w], sizeof(result[w]), "epoll setup: %s", strerror(errno));
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	while (!result[w][0] && !usr2_here) {
		int r = wait_once(w, ep), e = errno;
		if (!mask_is(&normal))
			snprintf(result[w], sizeof(result[w]), "%s returned with a mask other than the thread's own",
				 names[w]);
		else if (r >= 0 || e != EINTR)
			snprintf(result[w], sizeof(result[w]), "%s returned %d (%s) on a pipe nobody writes", names[w],
				 r, strerror(e));
		else if (!usr2_here && w != W_EPOLL)
			snprintf(result[w], sizeof(result[w]), "%s failed with EINTR but no handler ran", names[w]);
		else if (!usr2_here)
			epoll_eintr++;
	}
	if (ep >= 0)
		close(ep);
	return NULL;
}

static void setup(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigemptyset(&normal);
	sigaddset(&normal, SIGUSR1);
	sigaddset(&normal, SIGUSR2);
	sigaddset(&normal, SIGWINCH);
	sigemptyset(&temp);
	sigaddset(&temp, SIGHUP);
	sigaddset(&temp, SIGTTIN);
	temp_thr = temp;
	sigaddset(&temp_thr, SIGUSR1);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		test_die("sigaction: %s", strerror(errno));
	sa.sa_handler = on_usr2;
	if (sigaction(SIGUSR2, &sa, NULL) < 0 || pipe(pipefd) < 0)
		test_die("sigaction/pipe: %s", strerror(errno));
	sigprocmask(SIG_SETMASK, &normal, NULL); /* the threads inherit it */
	for (long w = 0; w < NWAIT; w++)
		if (pthread_create(&threads[w], NULL, waiter_main, (void *)w))
			test_die("pthread_create");
	/* Every thread's epoll fd exists before the runner looks at the fds. */
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < NWAIT)
		usleep(1000);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	setup();
	test_ready();
	while (!test_go) {
		sig_atomic_t before = usr1_count;
		int r = sigsuspend(&temp), e = errno;
		check(mask_is(&normal), "sigsuspend returned with a mask other than the thread's own");
		check(r == -1 && e == EINTR, "sigsuspend returned %d (%s)", r, strerror(e));
		check(usr1_count != before, "sigsuspend returned but no handler ran");
		if (test_failures())
			break;
	}
	for (int w = 0; w < NWAIT; w++) {
		pthread_kill(threads[w], SIGUSR2);
		pthread_join(threads[w], NULL);
		check(!result[w][0], "%s", result[w]);
	}
	test_msg("epoll_pwait failed %d times with EINTR and no handler", epoll_eintr);
	test_done();
}

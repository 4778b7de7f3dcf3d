/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SIGTRAP's action and mask. The restore's remote calls end on an int3,
 * whose forced SIGTRAP resets the action of a blocked or ignored SIGTRAP
 * and unblocks it: the process must get its own back. Here SIGTRAP has a
 * handler (or is ignored: args=ign) and is blocked in the main thread; a
 * second thread has it unblocked. After restore: the same action and
 * masks, and a SIGTRAP raised in the second thread runs the handler.
 *
 * stasis-test: zdtm:sigtrap
 * stasis-test: zdtm:sigtrap:ign args=ign
 */
#include "zdtmtst.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t trapped;
static sigset_t thread_mask;
static volatile int thread_raise, thread_done;

static void on_trap(int sig)
{
	(void)sig;
	trapped++;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		if (thread_raise && !thread_done) {
			pthread_sigmask(SIG_SETMASK, NULL, &thread_mask);
			raise(SIGTRAP);
			thread_done = 1;
		}
		usleep(1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa, before, now;
	sigset_t blocked, cur;
	pthread_t t;
	int ign;

	test_init(argc, argv);
	ign = argc > 1 && !strcmp(argv[argc - 1], "ign");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ign ? SIG_IGN : on_trap;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	if (sigaction(SIGTRAP, &sa, NULL) < 0)
		test_die("sigaction: %s", strerror(errno));
	sigaction(SIGTRAP, NULL, &before);
	if (pthread_create(&t, NULL, worker, NULL))
		test_die("pthread_create failed");
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTRAP);
	sigaddset(&blocked, SIGUSR1); /* test_wait unblocks it while waiting */
	sigprocmask(SIG_SETMASK, &blocked, NULL);

	test_ready();
	test_wait();

	sigaction(SIGTRAP, NULL, &now);
	check(now.sa_handler == before.sa_handler, "SIGTRAP handler %p, was %p", (void *)now.sa_handler,
	      (void *)before.sa_handler);
	check(now.sa_flags == before.sa_flags, "SIGTRAP sa_flags %#x, was %#x", now.sa_flags, before.sa_flags);
	check(!memcmp(&now.sa_mask, &before.sa_mask, 8), "SIGTRAP sa_mask changed");
	sigprocmask(SIG_BLOCK, NULL, &cur);
	check(sigismember(&cur, SIGTRAP), "SIGTRAP not blocked in the main thread any more");
	thread_raise = 1;
	for (int i = 0; i < 5000 && !thread_done; i++)
		usleep(1000);
	check(thread_done, "the second thread did not come back from raise(SIGTRAP)");
	check(!sigismember(&thread_mask, SIGTRAP), "SIGTRAP blocked in the second thread");
	check(ign ? trapped == 0 : trapped == 1, "the handler ran %d times", (int)trapped);
	test_done();
}

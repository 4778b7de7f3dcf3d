/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Threads blocked in syscalls across the dump: nanosleep (relative) and
 * clock_nanosleep (absolute) must neither return early nor with EINTR,
 * read(0) returns the line the runner writes to stdin after restore
 * ("wake up\n"), pause() returns only for the SIGUSR2 sent after SIGUSR1,
 * a futex wait only returns after the wake. The main thread waits in
 * sigsuspend.
 *
 * stasis-test: zdtm:restart stdin="wake up\n"
 */
#include "zdtmtst.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLEEP_S 3
#define STDIN_LINE "wake up\n"

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
#define tcheck(cond, ...) do { pthread_mutex_lock(&fail_lock); check(cond, __VA_ARGS__); pthread_mutex_unlock(&fail_lock); } while (0)

static volatile int usr2_sent, futex_woken;
static volatile sig_atomic_t usr2_count;
static int futex_word;
static volatile pid_t tids[5];

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void usr2_handler(int sig)
{
	(void)sig;
	usr2_count++;
}

static void *sleeper(void *arg)
{
	struct timespec req = { SLEEP_S, 0 }, rem = { 0, 0 };
	double t0 = test_now(), t1;
	int r;

	tids[0] = my_tid();
	r = nanosleep(&req, &rem);
	t1 = test_now();
	tcheck(r == 0, "nanosleep returned %d (%s), %ld.%09lds remaining", r, strerror(errno), (long)rem.tv_sec, rem.tv_nsec);
	tcheck(t1 - t0 >= SLEEP_S - 0.01, "nanosleep returned after %.3f s, requested %d s", t1 - t0, SLEEP_S);
	return arg;
}

static void *abs_sleeper(void *arg)
{
	struct timespec until;
	int r;

	tids[1] = my_tid();
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += SLEEP_S;
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
	tcheck(r == 0, "clock_nanosleep(TIMER_ABSTIME) returned %d (%s)", r, strerror(r));
	{
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		tcheck(now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec),
		       "clock_nanosleep(TIMER_ABSTIME) returned before the deadline");
	}
	return arg;
}

static void *reader(void *arg)
{
	char buf[64];
	ssize_t n;

	tids[2] = my_tid();
	n = read(STDIN_FILENO, buf, sizeof(buf) - 1);
	tcheck(n == (ssize_t)strlen(STDIN_LINE), "read(0) returned %zd (%s), expected %zu bytes", n,
	       n < 0 ? strerror(errno) : "ok", strlen(STDIN_LINE));
	if (n > 0) {
		buf[n] = 0;
		tcheck(!strcmp(buf, STDIN_LINE), "read(0) got \"%s\"", buf);
	}
	return arg;
}

static void *pauser(void *arg)
{
	sigset_t s;
	int r;

	tids[3] = my_tid();
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	r = pause();
	tcheck(r == -1 && errno == EINTR, "pause returned %d (%s)", r, strerror(errno));
	tcheck(usr2_sent, "pause returned before SIGUSR2 was sent");
	tcheck(usr2_count == 1, "SIGUSR2 handler ran %d times", (int)usr2_count);
	return arg;
}

static void *futexer(void *arg)
{
	long r;

	tids[4] = my_tid();
	while (!__atomic_load_n(&futex_word, __ATOMIC_SEQ_CST)) {
		r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		if (r < 0 && errno == EINTR) {
			tcheck(0, "futex wait returned EINTR");
			break;
		}
		if (r < 0 && errno != EAGAIN) {
			tcheck(0, "futex wait: %s", strerror(errno));
			break;
		}
		tcheck(futex_woken, "futex wait returned %ld before the wake", r);
	}
	return arg;
}

/* Waits until the thread is blocked in syscall nr (per /proc). */
static void wait_blocked(pid_t tid, long nr)
{
	char path[64], buf[256];
	double t0 = test_now();

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	while (test_now() - t0 < 5) {
		FILE *f = fopen(path, "re");
		long cur = -1;

		if (f) {
			if (fgets(buf, sizeof(buf), f))
				cur = strtol(buf, NULL, 10);
			fclose(f);
		}
		if (cur == nr)
			return;
		usleep(1000);
	}
	test_msg("thread %d not seen in syscall %ld", tid, nr);
}

int main(int argc, char **argv)
{
	void *(*fns[5])(void *) = { sleeper, abs_sleeper, reader, pauser, futexer };
	long nrs[5] = { SYS_clock_nanosleep, SYS_clock_nanosleep, SYS_read, SYS_pause, SYS_futex };
	pthread_t th[5];
	struct sigaction sa;
	sigset_t s;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr2_handler;
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);

	for (int i = 0; i < 5; i++)
		if (pthread_create(&th[i], NULL, fns[i], NULL))
			test_die("pthread_create");
	for (int i = 0; i < 5; i++) {
		while (!tids[i])
			usleep(1000);
		wait_blocked(tids[i], nrs[i]);
	}

	test_ready();
	test_wait();

	usr2_sent = 1;
	pthread_kill(th[3], SIGUSR2);
	futex_woken = 1;
	__atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POSIX timers: a periodic CLOCK_MONOTONIC one counting its signals, a
 * CLOCK_REALTIME one-shot far away, one aimed at a thread (SIGEV_THREAD_ID),
 * a SIGEV_NONE one, and a gap in the ids (a deleted timer). After restore
 * the ids are the same, the periodic one keeps firing with its value, and
 * the others have no more time left than before.
 *
 * stasis-test: zdtm:posix_timers
 */
#include "zdtmtst.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NT 5
static volatile sig_atomic_t ticks, bad_value;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (si->si_value.sival_int != 0x1111)
		bad_value = 1;
	ticks++;
}

static double ts(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static timer_t make(clockid_t clk, int notify, int sig, int val, double value, double interval)
{
	struct sigevent se;
	timer_t t;
	memset(&se, 0, sizeof(se));
	se.sigev_notify = notify;
	se.sigev_signo = sig;
	se.sigev_value.sival_int = val;
	if (notify == SIGEV_THREAD_ID)
		se._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(clk, &se, &t) < 0)
		test_die("timer_create: %s", strerror(errno));
	struct itimerspec its = { { (time_t)interval, (long)((interval - (time_t)interval) * 1e9) },
				  { (time_t)value, (long)((value - (time_t)value) * 1e9) } };
	if (value > 0 && timer_settime(t, 0, &its, NULL) < 0)
		test_die("timer_settime: %s", strerror(errno));
	return t;
}

/* The "notify:" line of timer id in /proc/self/timers. */
static void notify_line(long id, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/timers", "re");
	char line[256];
	long cur = -1;
	out[0] = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "ID: %ld", &cur) == 1)
			continue;
		if (cur == id && strncmp(line, "notify:", 7) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, size, "%s", line);
		}
	}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	timer_t t[NT];
	struct itimerspec before[NT], after[NT];
	char note_before[256], note_after[256];

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_tick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGRTMIN, &sa, NULL) < 0)
		test_die("sigaction: %s", strerror(errno));

	t[0] = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0x1111, 0.02, 0.02);
	timer_t gap = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0, 0);
	t[1] = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIGRTMIN + 1, 0x2222, 1000, 0);
	t[2] = make(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 2, 0x3333, 500, 300);
	t[3] = make(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 700, 0);
	t[4] = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0, 0); /* never armed */
	if (timer_delete(gap) < 0)
		test_die("timer_delete: %s", strerror(errno));
	for (int i = 0; i < NT; i++)
		test_msg("timer %d has id %ld", i, (long)(intptr_t)t[i]);
	notify_line((long)(intptr_t)t[2], note_before, sizeof(note_before));
	for (int i = 0; i < NT; i++)
		timer_gettime(t[i], &before[i]);
	double t0 = test_now();

	test_ready();
	test_wait();

	double elapsed = test_now() - t0;
	for (int i = 0; i < NT; i++)
		check(timer_gettime(t[i], &after[i]) == 0, "timer %d (id %ld) is gone: %s", i, (long)(intptr_t)t[i],
		      strerror(errno));
	for (int i = 1; i <= 3; i++) {
		double b = ts(&before[i].it_value), a = ts(&after[i].it_value);
		check(a > 0 && a <= b + 0.05 && a >= b - elapsed - 1.0,
		      "timer %d: %.3f s left, was %.3f s %.3f s ago", i, a, b, elapsed);
		check(after[i].it_interval.tv_sec == before[i].it_interval.tv_sec && after[i].it_interval.tv_nsec == before[i].it_interval.tv_nsec, "timer %d: interval %.9f, was %.9f", i,
		      ts(&after[i].it_interval), ts(&before[i].it_interval));
	}
	check(ts(&after[4].it_value) == 0 && ts(&after[4].it_interval) == 0, "the unarmed timer is armed");
	check(ts(&after[0].it_interval) > 0.0199 && ts(&after[0].it_interval) < 0.0201 &&
	      ts(&after[0].it_value) <= 0.0201, "periodic timer: %.6f s left, interval %.6f",
	      ts(&after[0].it_value), ts(&after[0].it_interval));
	notify_line((long)(intptr_t)t[2], note_after, sizeof(note_after));
	check(note_before[0] && strcmp(note_before, note_after) == 0, "thread timer: '%s', was '%s'", note_after,
	      note_before);
	int c1 = ticks;
	double end = test_now() + 0.3;
	while (test_now() < end)
		usleep(10000);
	check(ticks - c1 >= 5, "periodic timer fired %d times in 0.3 s after restore", ticks - c1);
	check(!bad_value, "a periodic timer signal carried the wrong value");
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/progress.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "util/util.h"

static struct {
	const char *what;
	uint64_t total, done, t0, last;
	bool on, tty, shown;
	pthread_t owner; /* who started it: the only one who shows it */
} P;

bool progress_wanted(void)
{
	return isatty(STDERR_FILENO);
}

void progress_start(const char *what, uint64_t total)
{
	P.what = what, P.total = total, P.done = 0, P.shown = false, P.on = true;
	P.tty = progress_wanted();
	P.owner = pthread_self();
	P.t0 = P.last = now_ns();
}

static void show(uint64_t now)
{
	double mib = (double)__atomic_load_n(&P.done, __ATOMIC_RELAXED) / (1 << 20), s = (double)(now - P.t0) / 1e9;
	if (P.total)
		fprintf(stderr, "\r%s: %.0f of %.0f MiB, %.0f MiB/s   ", P.what, mib, (double)P.total / (1 << 20), mib / s);
	else
		fprintf(stderr, "\r%s: %.0f MiB, %.0f MiB/s   ", P.what, mib, mib / s);
	P.shown = true;
}

void progress_add(uint64_t bytes)
{
	__atomic_fetch_add(&P.done, bytes, __ATOMIC_RELAXED);
	if (!P.on || !P.tty || !pthread_equal(P.owner, pthread_self()))
		return;
	uint64_t now = now_ns();
	if (now - P.t0 < 1000000000ULL || now - P.last < 100000000ULL)
		return;
	P.last = now;
	show(now);
}

void progress_end(void)
{
	if (P.shown) {
		show(now_ns());
		fprintf(stderr, "\n");
	}
	P.on = P.shown = false;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/inject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util/interrupt.h"
#include "util/log.h"
#include "util/util.h"

int inject_fail(const char *point)
{
	const char *e = getenv("STASIS_INJECT_FAIL");
	if (e && streq(e, point))
		return log_error_errno(-EIO, "injected failure at %s (STASIS_INJECT_FAIL)", point);
	return 0;
}

int inject_pause(const char *point)
{
	const char *e = getenv("STASIS_INJECT_PAUSE"), *ms = getenv("STASIS_INJECT_PAUSE_MS");
	uint64_t limit = 60000;
	if (!e || !streq(e, point))
		return 0;
	if (ms && parse_u64(ms, 10, &limit) < 0)
		limit = 60000;
	fprintf(stderr, "stasis: paused at %s (STASIS_INJECT_PAUSE)\n", point);
	fflush(stderr);
	uint64_t end = now_ns() + limit * 1000000ull;
	while (!interrupt_pending() && now_ns() < end)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	return interrupt_check();
}

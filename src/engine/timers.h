/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POSIX timers (timer_create): how each notifies (signal, thread, none),
 * its clock, remaining time and interval. Dump reads /proc/PID/timers and
 * asks the frozen process for the times; restore recreates every timer
 * under its old id (PR_TIMER_CREATE_RESTORE_IDS) and arms it again. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/remote.h"
#include "image/json.h"

#define MAX_POSIX_TIMERS 65536

struct posix_timer_rec {
	int id;
	int clockid;
	int notify;       /* SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, | SIGEV_THREAD_ID */
	int signo;
	uint64_t sigval;  /* sigev_value */
	pid_t tid;        /* target thread with SIGEV_THREAD_ID */
	uint64_t value_ns, interval_ns; /* remaining time (relative), period */
	int overrun;      /* informational: the kernel offers no way to set it */
};

struct timers_rec {
	struct posix_timer_rec *t;
	size_t n;
};

void timers_rec_free(struct timers_rec *t);
/* Pure parser of /proc/PID/timers text; timers come out sorted by id. */
int timers_parse(const char *buf, size_t len, struct timers_rec *ret);
/* Reads /proc/PID/timers (collect, before any remote call). */
int timers_collect(int procfd, pid_t pid, struct timers_rec *t);
/* Remaining time, interval and overrun of each timer, from inside. */
int timers_dump_remote(struct remote *r, pid_t pid, struct timers_rec *t);
/* As the "posix_timers" array of core-PID.json (absent: none). */
/* Adds "posix_timers" to the core record; an error stays in the builder. */
void timers_to_json(const struct timers_rec *t, struct json_builder *core);
int timers_from_json(const json_t *core, struct timers_rec *t);
/* Creates and arms the timers; the threads must exist (SIGEV_THREAD_ID). */
int timers_restore(struct remote *r, pid_t pid, const struct timers_rec *t);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Progress of long work (the page copy of a dump, the fill of a restore)
 * on stderr, only when it is a terminal and the work has taken more than
 * a second: "what: 512 of 1024 MiB, 830 MiB/s", rewritten in place at
 * most ten times a second. Never in a pipe or a log file. One piece of
 * work at a time; other threads may add bytes while it runs, the thread
 * that started it shows them (progress_add(0) to show without adding). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* total: bytes expected (an estimate is fine), 0 when unknown. */
/* Whether progress can be shown at all (stderr is a terminal): a total
 * that costs work to find is looked for only then. */
bool progress_wanted(void);
void progress_start(const char *what, uint64_t total);
void progress_add(uint64_t bytes);
/* Ends the line if one was shown. */
void progress_end(void);

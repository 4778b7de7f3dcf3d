/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a dump or restore measured (--print-stats). Kept in memory shared
 * with the processes that do the work (a container's is done in a child
 * in its namespaces; a lazy restore's pages by the filler), so the
 * command sees their numbers. Times in ns, CLOCK_MONOTONIC. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct dump_stats {
	uint64_t t0_ns;      /* the dump started */
	uint64_t frozen_ns;  /* the tree was frozen (stopped) this long */
	uint64_t total_ns;   /* the whole dump */
	uint64_t pages_written, pages_skipped; /* skipped: unchanged since a parent image (none yet) */
	uint64_t bytes_written;                /* page data */
	uint64_t bytes_compressed;             /* --compress: the page files' size on disk */
	uint64_t pages_done, pages_total;      /* progress of the page copy; total estimated */
};

enum lazy_state {
	LAZY_NONE = 0,
	LAZY_FILLING,
	LAZY_DONE,
	LAZY_FAILED, /* msg says why; the tree was killed */
};

struct restore_stats {
	uint64_t t0_ns;     /* the restore started */
	uint64_t resume_ns; /* from t0 until the tree runs */
	uint64_t full_ns;   /* lazy: from t0 until every page is in */
	uint64_t pages;     /* pages restored (all processes) */
	uint64_t pages_lazy;
	uint64_t lazy_bytes, lazy_done; /* lazy: bytes to fill, filled so far */
	uint64_t faults;                /* lazy: page faults served */
	int lazy_state;                 /* enum lazy_state */
	int attached;                   /* the command waits for the filler: tell it, not syslog */
	char msg[256];
};

/* A zeroed struct in shared anonymous memory (NULL when out of memory). */
void *stats_alloc(size_t size);
void stats_free(void *p, size_t size);
/* One line to syslog (LOG_DAEMON, LOG_ERR): for a process nobody waits for. */
void stats_syslog(const char *msg);

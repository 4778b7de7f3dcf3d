/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Lazy restore (restore --lazy): a process runs as soon as everything but
 * the contents of its private anonymous memory is in place. That memory
 * is registered with a userfaultfd (uffd.h) made inside the process and
 * handed to the filler: a small process of ours, started by the restoring
 * command before the restore (lazy-start.c; never inside the tree), which
 * serves each fault from the image and streams everything else in, one
 * verified 4 MiB block (image/pagesums.h) at a time, then exits. A block
 * whose checksum is wrong kills every process of the tree (SIGKILL), so
 * nothing runs on damaged data, and says so in one line: to the command
 * if it still waits (--wait-lazy), else to syslog and the log file.
 *
 * Shared mappings and file mappings (their copy-on-write pages) are
 * filled before the tree runs, as in an eager restore. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "engine/dump.h"
#include "engine/mm.h"
#include "engine/remote.h"

/* Runtime layer, before the restore: starts the filler (lazy-start.c);
 * sets o->lazy_sock. o->stats must be set (stats_alloc): it is moved to
 * memory the filler shares, where it reports. */
int lazy_start(struct restore_opts *o);
/* The filler is our binary executed with this first argument, then the
 * log level and "log" or "-" (our log file as its fd 5, or none); the
 * command line layer hands such a call to lazy_filler_exec_main, which
 * never returns unless its start failed (1). */
#define LAZY_FILLER_ARG "__lazy-filler"
int lazy_filler_exec_main(int level, bool log);
/* Runtime layer, after the restore: ok false: the filler quits (the
 * restore killed the tree). ok and o->wait_lazy: waits until every page
 * is in (progress on a terminal); -EBADMSG when a damaged block killed
 * the tree. Closes lazy_sock. */
int lazy_finish(struct restore_opts *o, bool ok);

/* Engine: whether the image can fill pid's pages lazily (it has block
 * checksums; an older image is restored eagerly). */
bool lazy_possible(struct image *img, pid_t pid);
/* -EOPNOTSUPP, logged, when pid's page data is compressed (no random access). */
int lazy_refuse_compressed(struct image *img, pid_t pid);
/* Addresses the restore makes the kernel write to before the tree runs
 * (each thread's rseq area): their pages are filled then, not lazily. */
struct touched {
	const uint64_t *addr;
	size_t n;
};
/* Engine, instead of mm_restore_pages: eager pages filled, anonymous
 * memory registered and handed to the filler, which serves its faults
 * from now on. */
int lazy_restore_pages(struct remote *r, pid_t tid, int pidfd, struct image *img, const struct mm_rec *m,
		       const struct touched *tp, int ctl, int tfd, int sock);
/* Engine, once the tree runs: the filler streams the rest in. */
int lazy_go(int sock);

/* The filler's side (lazy-fill.c): runs in the filler; never returns. */
void lazy_fill_main(int sock, struct restore_stats *st) __attribute__((noreturn));

/* lazy-warden.c: the process that holds copies of the filler's
 * userfaultfds and kills the tree should the filler die before the end. */
int lazy_warden_start(struct restore_stats *st, int other, pid_t *ret_pid);
int lazy_warden_give(int sock, int uffd, int pidfd);
void lazy_warden_release(int sock, pid_t pid, bool wait);

/* The message from the restore to the filler: one per process (with its
 * fds: userfaultfd, pidfd, page file, a memfd holding the segments then
 * the ranges to make huge pages of again, and the block sums' file, which
 * the filler reads and checks against sums_hash itself), then one
 * LAZY_GO. */
enum { LAZY_PROC = 1, LAZY_GO = 2 };
#define LAZY_FDS 5
struct lazy_msg {
	uint32_t kind;
	pid_t pid;
	uint64_t nseg, nsums, file_size;
	uint32_t sum_shift; /* the sums' block size (image/pagesums.h) */
	uint32_t nthp;      /* struct lazy_range: mm_thp_range() of its mappings */
	uint64_t sums_len, sums_hash; /* the sums file's size and XXH3-64 */
};
struct lazy_range {
	uint64_t start, len;
};
/* A piece of a page run that is filled lazily: len bytes at vaddr are
 * those at off in the page file. */
struct lazy_seg {
	uint64_t vaddr, len, off;
};

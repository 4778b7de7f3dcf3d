/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Page data of a restore, written by worker threads while the tracer goes
 * on with the next process (mm-fill.c). Only the tracer may make ptrace
 * requests; writing a stopped process's memory needs none. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/mm.h"
#include "engine/remote.h"
#include "image/image.h"

struct fill_pool;
struct fill_job;

/* How many workers a restore of nproc processes gets: STASIS_FILL_THREADS
 * when set (0: none, each process reads its pages itself, one after
 * another, as before), else the online cores: a large process's page
 * file is shared out in chunks among them (none for nproc 0). */
unsigned fill_threads_wanted(size_t nproc);
int fill_pool_start(unsigned nthreads, struct fill_pool **ret);
/* Queues the pages of r's process, whose mappings exist and are writable:
 * its page file (read in order, checksummed on the way) and the pages of
 * its parent images (predump.h). r (pid and mem_fd only) and m stay valid
 * and unchanged until fill_wait or fill_pool_stop. uffd: from
 * fill_uffd_make, or -1; the job owns it (also when this fails) and lets
 * go of it before its parent images and before the job is done. */
int fill_submit(struct fill_pool *p, struct image *img, struct remote *r, const struct mm_rec *m, int uffd,
		struct fill_job **ret);
/* Whether m's pages go in through a userfaultfd: from 8 MiB of pages;
 * STASIS_FILL_UFFD=0 never (process_vm_writev), =1 always (tests). */
bool fill_uffd_wanted(const struct mm_rec *m);
/* A userfaultfd of the stopped process tid's mm, with its private
 * anonymous mappings that get pages registered (mm-fill-uffd.c), for the
 * workers' UFFDIO_COPY. *ret_uffd = -1 where there is none (logged at -v:
 * process_vm_writev does), an error only where the restore cannot go on. */
int fill_uffd_make(struct remote *r, pid_t tid, int pidfd, int ctl, int tfd, const struct mm_rec *m, int *ret_uffd);
/* Writes the bytes of buf to the k runs of memory rem, of m's mappings
 * (*at: the run being written, for a message). Not logged. */
int fill_uffd_put(int uffd, struct remote *r, const struct mm_rec *m, const uint8_t *buf, const struct iovec *rem,
		  size_t k, void **at);
/* Unregisters m's memory and closes uffd (NULL-safe: uffd < 0). */
void fill_uffd_release(int uffd, const struct mm_rec *m);
/* Until the job is done: 0, or its error (logged by the worker). */
int fill_wait(struct fill_pool *p, struct fill_job *j);
/* The restore failed (another driver's process, restore-drivers.h): the
 * jobs left end at their next chunk with -ECANCELED, so that no one waits
 * long in fill_wait. NULL-safe. */
void fill_pool_cancel(struct fill_pool *p);
/* Stops the workers and frees the pool and its jobs; with cancel, queued
 * jobs are dropped and running ones stop at their next chunk (the restore
 * failed: its processes are killed). NULL-safe. */
void fill_pool_stop(struct fill_pool *p, bool cancel);
/* Writes len bytes of buf into r's process at the k ranges rem (as
 * many bytes), by process_vm_writev, else through /proc/PID/mem; *at
 * says where it failed. Not logged. */
int fill_write_in(struct remote *r, const uint8_t *buf, size_t len, const struct iovec *rem, size_t k, void **at);

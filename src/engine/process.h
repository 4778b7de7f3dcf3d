/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Everything the image holds about one process: what the dump collects
 * and the restore reads back, written and read here side by side so the
 * record set (core-PID.json, mm-PID.json, fds-PID.json) cannot drift. */
#pragma once

#include <sys/types.h>

#include "engine/creds.h"
#include "engine/files.h"
#include "engine/locks.h"
#include "engine/mm.h"
#include "engine/prctl.h"
#include "engine/signals.h"
#include "engine/task.h"
#include "engine/thread.h"
#include "engine/timers.h"
#include "image/image.h"

struct process_rec {
	pid_t pid;
	struct thread_rec *threads; /* main thread first */
	size_t nthreads;
	struct mm_rec mm;
	struct files_rec files;
	struct task_rec task;
	struct creds_rec creds;
	struct signals_rec sig;
	struct timers_rec timers; /* in core-PID.json */
	struct locks_rec locks;   /* in core-PID.json */
	struct prctl_rec prctl;   /* in core-PID.json */
};

void process_rec_free(struct process_rec *p);
/* Writes the three records (page data and deleted files' content are
 * written by their own modules). */
int process_write(struct image *img, const struct process_rec *p);
/* Reads and validates them; a damaged record is logged naming it. */
int process_read(struct image *img, pid_t pid, struct process_rec *p);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dump's guardian (DESIGN.md §5a): a small process that outlives the
 * dumper. What the dump changes in the processes and on disk is kept in
 * memory shared with it, current at every step: the cgroup it froze, per
 * process the trap and scratch pages it mapped, per thread the registers
 * and signal mask to put back (struct remote_thread), and the names of the
 * image files being written. If the dumper dies (SIGKILL, a crash) before
 * the dump is done, the guardian thaws the cgroup, seizes the threads
 * again, puts back what was changed, removes the partial image, and exits;
 * if the dumper was killing the tree, it finishes the kill instead. Either
 * way it removes the network lock the dumper held (netlock.h). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "engine/freezer.h"
#include "engine/netlock.h"
#include "engine/remote.h"
#include "engine/sockets.h"
#include "engine/tree.h"
#include "image/image.h"

enum guard_phase {
	GUARD_WORKING, /* anything may be half done: put back, remove the files */
	GUARD_KILLING, /* the image is complete: finish killing the tree */
	GUARD_DONE,    /* nothing to do */
};

struct guard_proc {
	pid_t pid;
	struct remote rem; /* threads point into the shared memory */
};

/* All of it in a MAP_SHARED mapping, at the same address in both. */
struct guard {
	int phase;
	pid_t guardian;
	bool ours; /* the guardian is our child: guard_end reaps it */
	int done_fd; /* ours: its closing (or our death) wakes the guardian */
	struct freezer fz;
	size_t nprocs, nthreads;
	struct guard_proc procs[MAX_TREE];
	struct image_journal journal;
	/* The network lock's tables in netlock_ns's namespace: ours (removed
	 * whatever the phase) and the one handed over to the image (removed
	 * with the image, while GUARD_WORKING). "" when none. */
	pid_t netlock_ns;
	char netlock[NETLOCK_NAME_MAX], netlock_image[NETLOCK_NAME_MAX];
	struct sk_tcp_reuse tcp_reuse; /* connections to give SO_REUSEADDR back */
	struct remote_thread threads[];
};

/* Maps the shared memory, starts the guardian and journals img's files.
 * sibling: the guardian is made our parent's child (a dump inside a
 * container's pid namespace, where an orphan would go to its init);
 * otherwise it is ours. */
int guard_start(struct image *img, bool sibling, struct guard **ret);
/* A slot for pid with ntids threads (tids[k]): its struct remote, the
 * thread records zeroed but for their tids. */
int guard_add(struct guard *g, pid_t pid, const pid_t *tids, size_t ntids, struct remote **ret);
void guard_set_phase(struct guard *g, enum guard_phase phase);
/* What the guardian removes of the network lock if we die (l's tables). */
void guard_set_netlock(struct guard *g, const struct netlock *l);
/* The dump is over (done or rolled back by us): the guardian exits
 * without doing anything, and we wait for it. NULL-safe. */
void guard_end(struct guard *g);

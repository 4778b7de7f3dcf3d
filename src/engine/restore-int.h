/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the restore driver (restore.c) and the tree builder
 * (restore-tree.c); not for the rest of the engine. */
#pragma once

#include <pthread.h>

#include "engine/dump.h"
#include "engine/files.h"
#include "engine/process.h"
#include "engine/remote.h"
#include "engine/tree.h"

/* One process being restored. */
struct rproc {
	struct tree_node *node;
	struct process_rec p; /* empty for zombies */
	struct remote rem;
	int procfd, pidfd;
	pid_t *live; /* threads that exist and are seized by us */
	size_t nlive;
	bool exited; /* a zombie made: nothing left to seize or kill */
	bool lazy;   /* its anonymous memory is filled lazily (lazy.h) */
	/* Between restore_mm and restore_mm_done: its pages are going in
	 * (fill, a worker's job: mm-fill.h), its memory is not finished. */
	bool mm_pending;
	bool mm_exe_set;                /* for mm_restore_finish */
	bool mm_copied;                 /* its parent's pages copied, not inherited */
	const struct rproc *mm_parent; /* whose pages it may copy */
	struct fill_job *fill;
	bool fill_checks; /* a worker checksums its page file (no verifier) */
};

struct restore_ctx {
	struct image *img;
	struct tree tree;
	struct rproc *procs; /* tree order: parents first, procs[0] the root */
	size_t n;
	struct files_ctx files;
	int stub_tfd; /* the transport end the root stub inherits */
	int root_sync; /* tree_spawn_root's pipe until the stub's execve is done, else -1 */
	bool adopted; /* the root stub was started by a container runtime */
	const char *stub_file; /* its file, removed from inside once unmapped */
	/* Page files are read by the processes themselves, not by us: their
	 * checksums are verified by a thread alongside the restore. */
	pthread_t verifier;
	bool verifying;
	int verify_result;
	int lazy_sock; /* restore --lazy: the filler's socket, else -1 */
	unsigned fill_threads; /* 0: each process reads its pages itself */
	struct fill_pool *fill; /* while the tree is made */
	struct drivers *drv;    /* restore-drivers.h; NULL: the main thread alone */
};

/* clone.c: the stopped stub tid makes a thread (flags with CLONE_THREAD,
 * on that stack) or a child process (flags 0) whose pid is want; -EEXIST
 * when that pid is taken. */
long restore_clone(struct remote *r, pid_t tid, uint64_t flags, uint64_t stack, uint64_t stack_size, pid_t want);

/* restore.c: the memory of one stub (exec if needed, mappings, pages, mm
 * fields). Called by tree_create before the stub forks its children, so
 * they inherit its private memory copy-on-write (mm-cow.c); parent is
 * NULL for the root; maker is the process whose stub made it: its parent,
 * or a sibling it shares its fd table or fs info with (share.h). Its
 * pages may still be going in (a worker's job)
 * when it returns: restore_mm_done waits for them and finishes the
 * memory (protections, mm fields), before the process forks anyone or
 * gets anything else. */
int restore_mm(struct restore_ctx *c, struct rproc *rp, const struct rproc *parent, const struct rproc *maker);
int restore_mm_done(struct restore_ctx *c, struct rproc *rp);
/* restore.c: the rest of one process (restore_mm_done, then its fds,
 * task, signals, threads, timers, creds, registers), on whichever driver
 * traces it (restore-drivers.h); it stays stopped until all are done. */
int restore_one(struct restore_ctx *c, struct rproc *rp);

/* restore-tree.c: every process of the tree exists, stopped, with its
 * pid, parent, session and group, zombies dead; each has a scratch area
 * and its memory (restore_mm). */
int tree_create(struct restore_ctx *c, const struct restore_opts *o);
/* Starts the root stub (not for o->adopt) before tree_create, as soon as
 * the tree is read: its execve runs while we read the rest. */
int tree_spawn_root(struct restore_ctx *c, const struct restore_opts *o);
/* Kills and reaps a root stub started but never taken by tree_create. */
void tree_unspawn_root(struct restore_ctx *c);
/* zombie.c: the stopped, freshly forked p ends as its original did
 * (exit code, or signal with the core bit), a zombie of its parent. */
int zombie_make(struct restore_ctx *c, struct rproc *p);
/* Kills and reaps what tree_create made. */
void tree_kill(struct restore_ctx *c);
int rproc_map_scratch(struct rproc *p);
/* 0 when pid is free (after waiting a little for a zombie's reaping),
 * else -EBUSY, logged naming what holds it. */
int restore_check_pid_free(pid_t pid, bool container);

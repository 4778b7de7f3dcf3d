/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Process-wide odds and ends: comm, cwd, root, umask, personality,
 * resource limits, no_new_privs, parent-death signal. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "engine/remote.h"
#include "image/json.h"

#define NLIMITS 16

struct task_rec {
	char comm[16];
	char *cwd, *root;
	uint32_t umask;
	uint32_t personality;
	int no_new_privs;
	int pdeathsig;
	uint32_t membarrier; /* TASK_MB_*: its membarrier registrations */
	struct rlimit64_k {
		uint64_t cur, max;
	} rlim[NLIMITS];
	bool rlim_read; /* dump: rlim came from /proc/PID/limits */
};

#define TASK_MB_PRIVATE 1u   /* MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED */
#define TASK_MB_SYNC_CORE 2u /* ..._PRIVATE_EXPEDITED_SYNC_CORE */
#define TASK_MB_RSEQ 4u      /* ..._PRIVATE_EXPEDITED_RSEQ */

void task_rec_free(struct task_rec *t);
/* membarrier.c: the registrations, found by trying each private
 * expedited command in the process; and registering them again. */
int membarrier_dump_remote(struct remote *r, pid_t tid, uint32_t *ret);
int membarrier_restore(struct remote *r, pid_t tid, uint32_t mb);
int task_collect(int procfd, pid_t pid, struct task_rec *t);
/* /proc/PID/limits into t->rlim; -EBADMSG unless all NLIMITS are there. */
int task_parse_limits(const char *buf, size_t len, struct task_rec *t);
int task_dump_remote(struct remote *r, pid_t tid, struct task_rec *t);
/* Adds its fields to the core record; an error stays in the builder. */
void task_to_json(const struct task_rec *t, struct json_builder *core);
int task_from_json(const json_t *core, struct task_rec *t);
int task_restore(struct remote *r, pid_t tid, const struct task_rec *t);
/* no_new_privs is per thread, and must be set before seccomp filters. */
int task_restore_pdeathsig(struct remote *r, pid_t tid, const struct task_rec *t, bool root);
int task_restore_nnp(struct remote *r, pid_t tid, const struct task_rec *t);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Process-wide odds and ends: comm, cwd, root, umask, personality,
 * resource limits, no_new_privs, parent-death signal. */
#pragma once

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
	struct rlimit64_k {
		uint64_t cur, max;
	} rlim[NLIMITS];
};

void task_rec_free(struct task_rec *t);
int task_collect(int procfd, pid_t pid, struct task_rec *t);
int task_dump_remote(struct remote *r, pid_t tid, struct task_rec *t);
/* Adds its fields to the core record; an error stays in the builder. */
void task_to_json(const struct task_rec *t, struct json_builder *core);
int task_from_json(const json_t *core, struct task_rec *t);
int task_restore(struct remote *r, pid_t tid, const struct task_rec *t);
/* no_new_privs is per thread, and must be set before seccomp filters. */
int task_restore_pdeathsig(struct remote *r, pid_t tid, const struct task_rec *t, bool root);
int task_restore_nnp(struct remote *r, pid_t tid, const struct task_rec *t);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Credentials: uids, gids, supplementary groups, capabilities. Restored
 * per thread (the raw syscalls act on the calling thread only) and after
 * everything else that needs the restorer's privileges. */
#pragma once

#include <stdint.h>

#include "engine/proc.h"
#include "engine/remote.h"
#include "image/json.h"

struct creds_rec {
	uint32_t uid[3], gid[3], fsuid, fsgid; /* real, effective, saved */
	uint32_t ngroups;
	uint32_t groups[256];
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint32_t securebits;
};

void creds_from_status(const struct proc_status *st, struct creds_rec *c);
/* Adds "creds" to the core record; an error stays in the builder. */
void creds_to_json(const struct creds_rec *c, struct json_builder *core);
int creds_from_json(const json_t *core, struct creds_rec *c);
/* What only the task can tell: its securebits (PR_GET_SECUREBITS). */
int creds_dump_remote(struct remote *r, pid_t tid, struct creds_rec *c);
int creds_restore(struct remote *r, pid_t tid, const struct creds_rec *c);

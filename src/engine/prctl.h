/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-process settings that only prctl() or /proc show: the
 * child-subreaper flag, transparent huge pages disabled (PR_SET_THP_DISABLE)
 * and oom_score_adj. In core-PID.json as "prctl". */
#pragma once

#include <sys/types.h>

#include "engine/remote.h"
#include "image/json.h"

struct prctl_rec {
	int subreaper;     /* PR_GET_CHILD_SUBREAPER: 0 or 1 */
	int thp_disable;   /* PR_GET_THP_DISABLE: 0, 1, or 1|PR_THP_DISABLE_EXCEPT_ADVISED */
	int oom_score_adj; /* -1000..1000 */
};

/* oom_score_adj, from /proc (procfd: /proc/PID). */
int prctl_collect(int procfd, pid_t pid, struct prctl_rec *p);
/* The prctl() values, asked inside the task. */
int prctl_dump_remote(struct remote *r, pid_t tid, struct prctl_rec *p);
void prctl_to_json(const struct prctl_rec *p, struct json_builder *core);
int prctl_from_json(const json_t *core, struct prctl_rec *p);
/* Sets them in the task; oom_score_adj is written by us (procfd is ours
 * for the restored process). */
int prctl_restore(struct remote *r, pid_t tid, int procfd, const struct prctl_rec *p);

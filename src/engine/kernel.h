/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kernel features stasis needs, probed once (for `stasis check`). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct kfeature {
	const char *name;
	const char *why;
	bool required;
	bool present;
};

/* Probes everything; returns the table and its length. */
const struct kfeature *kernel_features(size_t *ret_n);
/* Dump and restore need root's powers: CAP_SYS_PTRACE (to stop and drive
 * processes) and CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (map_files,
 * chosen pids, the exe link). Says which are missing, once, and returns
 * -EPERM when one is; what names the command ("dump"). */
int kernel_need_privileges(const char *what);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Docker adapter's steps, also used for containerd's "moby" namespace
 * (Docker's own containers, which Docker restores). */
#pragma once

#include "runtime/runtime.h"

int docker_locate(const char *id, const char *ns, pid_t *ret_pid, json_t **ret_meta, json_t **ret_config);
int docker_create_sandbox(const json_t *meta, const json_t *insp, const char *new_id, const char *stub_path,
			  int stub_tfd, struct rt_sandbox *sb);
void docker_finish(struct rt_sandbox *sb, bool ok);
int docker_save_diff(struct image *img, void *arg);

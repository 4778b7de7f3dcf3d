/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Docker's containers (containerd's "moby" namespace), through the Engine
 * API: the steps the docker and containerd adapters share. */
#pragma once

#include "runtime/runtime.h"

/* The running container id (name or id) and what the image keeps of it. */
int moby_locate(const char *id, struct rt_found *ret);
/* rt_ops steps (runtime.h). */
int moby_create_sandbox(struct image *img, const json_t *meta, const json_t *insp, const char *new_id,
			const char *stub_path, int stub_tfd, struct rt_sandbox *sb);
void moby_finish(struct rt_sandbox *sb, bool ok);
/* moby-net.c: restore --keep-ip: the original's address on its network
 * (from its saved inspect) into the create request body; refused, with
 * the reason logged, where Docker cannot give it. */
int moby_keep_ip(const json_t *insp, json_t *body);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Docker, through its Engine API (moby.c): a container is found by name or
 * id, and restored as a new Docker container of the same image and
 * configuration. */
#include "runtime/moby.h"
#include "runtime/runtime.h"

static int docker_locate(const struct rt_target *t, struct rt_found *ret)
{
	return moby_locate(t->id, ret);
}

const struct rt_ops rt_docker = {
	.name = "docker",
	.target = RT_BY_ID,
	.locate = docker_locate,
	.in_container = true,
	.before_commit = rt_ovl_save,
	.restore = rt_restore_sandbox,
	.create_sandbox = moby_create_sandbox,
	.finish = moby_finish,
	.keeps_ip = true,
	.uses_fd = false,
};

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What Docker's and Podman's overlay containers share, read from their
 * `inspect` (both write GraphDriver.Data, Path and Config alike): the
 * writable layer and tmpfs contents into the image at dump, back into
 * the new container at restore, and what its runtime will execute first
 * (for exec-stub.c). */
#include <limits.h>
#include <stdio.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "util/util.h"

static const char *graph_data(const json_t *insp, const char *key)
{
	return json_string_value(json_object_get(json_object_get(json_object_get(insp, "GraphDriver"), "Data"), key));
}

const char *rt_ovl_lower_dirs(const json_t *insp)
{
	const char *l = graph_data(insp, "LowerDir");
	return l ? l : "";
}

struct rt_exec_args rt_ovl_exec_args(const json_t *insp)
{
	const json_t *cfg = json_object_get(insp, "Config"), *e;
	const char *cwd = json_string_value(json_object_get(cfg, "WorkingDir"));
	struct rt_exec_args a = { json_string_value(json_object_get(insp, "Path")), NULL, cwd && *cwd ? cwd : "/" };
	size_t i;
	json_array_foreach(json_object_get(cfg, "Env"), i, e)
		if (startswith(json_string_value(e) ?: "", "PATH="))
			a.path = json_string_value(e) + 5;
	return a;
}

/* At dump, the tree frozen: the writable layer's changes (the manifest's
 * "upper") and the contents of the "tmpfs" mounts, reached through the
 * init's root (we are in its pid namespace). */
int rt_ovl_save(struct image *img, void *arg)
{
	const json_t *meta = arg, *mp;
	size_t i;
	int r = rt_archive_save(img, json_string_value(json_object_get(meta, "upper")), IMAGE_ROOTFS_DIFF);
	json_array_foreach(json_object_get(meta, "tmpfs"), i, mp) {
		char dir[PATH_MAX], name[IMAGE_NAME_MAX];
		snprintf(dir, sizeof(dir), "%s%s", RT_CONTAINER_ROOT, json_string_value(mp));
		if (r >= 0)
			r = rt_archive_save(img, dir, image_name_tmpfs(name, i));
	}
	return r;
}

/* The new container's tmpfs mounts exist once it runs: filled through its
 * first process's root. */
int rt_ovl_fill_tmpfs(struct image *img, const json_t *meta, pid_t pid)
{
	const json_t *mp;
	size_t i;
	json_array_foreach(json_object_get(meta, "tmpfs"), i, mp) {
		char dest[PATH_MAX], name[IMAGE_NAME_MAX];
		snprintf(dest, sizeof(dest), "/proc/%d/root%s", pid, json_string_value(mp));
		int r = rt_archive_apply(img, image_name_tmpfs(name, i), dest);
		if (r < 0)
			return r;
	}
	return 0;
}

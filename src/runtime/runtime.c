/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The adapters' table, and the checkpoint and restore of a container:
 * the adapter deals with its runtime, the engine with the processes, from
 * inside the container's namespaces (rt_in_container). */
#include "runtime/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "image/image.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct rt_ops rt_runc, rt_docker, rt_containerd;

static const struct rt_ops *const table[] = { &rt_runc, &rt_docker, &rt_containerd };

const struct rt_ops *rt_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (streq(table[i]->name, name))
			return table[i];
	return NULL;
}

struct dump_args {
	const char *dir;
	struct dump_opts *o;
};

static int dump_inside(void *arg)
{
	struct dump_args *a = arg;
	/* In the container's pid namespace its init is pid 1. */
	return dump_process(1, a->dir, a->o);
}

int rt_dump(const struct rt_ops *ops, const char *id, const char *ns, const char *dir, struct dump_opts *o)
{
	_cleanup_json_ json_t *meta = NULL, *config = NULL;
	pid_t pid;
	int r = ops->locate(id, ns, &pid, &meta, &config);
	if (r < 0)
		return r;
	const char *names[] = { "config.json" };
	json_t *files[] = { config };
	o->type = ops->name;
	o->container = meta;
	o->file_names = names;
	o->files = files;
	o->nfiles = 1;
	if (ops->before_commit) {
		o->before_commit = ops->before_commit;
		o->arg = meta;
	}
	struct dump_args a = { dir, o };
	r = rt_in_container(pid, dump_inside, &a);
	if (r < 0)
		return log_error_errno(r, "checkpoint of %s container '%s' failed", ops->name, id);
	log_info("%s container '%s' checkpointed to %s", ops->name, id, dir);
	return 0;
}

struct restore_args {
	const char *dir;
	struct restore_opts *o;
};

static int restore_inside(void *arg)
{
	struct restore_args *a = arg;
	pid_t pid;
	return restore_process(a->dir, a->o, &pid);
}

static int load(const char *dir, const char *type, json_t **ret_meta, json_t **ret_config)
{
	struct image *img;
	int r = image_open(dir, &img);
	if (r < 0)
		return r;
	json_t *meta = json_object_get(image_manifest(img), "container");
	if (!json_is_object(meta) || (r = image_get_json(img, "config.json", ret_config)) < 0) {
		image_free(img);
		return log_error_errno(r < 0 ? r : -EBADMSG, "image %s has no %s container description", dir, type);
	}
	/* Files the runtime adapter reads by itself are checked here. */
	if (image_has(img, "rootfs-diff.tar") && (r = image_verify_file(img, "rootfs-diff.tar")) < 0) {
		image_free(img);
		return r;
	}
	*ret_meta = json_incref(meta);
	image_free(img);
	return 0;
}

int rt_restore(const char *dir, const char *type, const char *new_id, struct restore_opts *o, pid_t *ret_pid)
{
	const struct rt_ops *ops = rt_find(type);
	_cleanup_json_ json_t *meta = NULL, *config = NULL;
	struct rt_sandbox sb = { 0 };
	const char *id;
	int ctl = -1, stub = -1;
	if (!ops)
		return log_error_errno(-EOPNOTSUPP, "image type '%s' cannot be restored by this version", type);
	int r = load(dir, type, &meta, &config);
	if (r < 0)
		return r;
	/* By default the container comes back under its old name. */
	if (!new_id && json_get_str(meta, "name", &id) == 0 && *id)
		new_id = id[0] == '/' ? id + 1 : id;
	if (!new_id && json_get_str(meta, "id", &id) == 0)
		new_id = id;
	/* What runtimes accept as a name, and safe in an API path. */
	bool ok = new_id && isalnum((unsigned char)new_id[0]) && strlen(new_id) < 128;
	for (const char *p = new_id; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr("_.-", *p);
	if (!ok)
		return log_error_errno(-EINVAL, "bad container name '%s' (letters, digits, '_', '.', '-')",
				       new_id ? new_id : "");
	if ((r = fdpass_open(&ctl, &stub)) < 0)
		return log_error_errno(r, "cannot make the fd transport: %m");
	snprintf(sb.dir, sizeof(sb.dir), "%s", dir);
	r = ops->create_sandbox(meta, config, new_id, o->stub_path, stub, &sb);
	close(stub);
	if (r >= 0) {
		struct restore_args a = { dir, o };
		o->adopt = true;
		o->ctl = ops->uses_fd ? ctl : -1;
		o->stub_file = sb.stub_in;
		r = rt_in_container(sb.pid, restore_inside, &a);
		if (r < 0)
			log_error("restore into %s container '%s' failed; the container is removed", type, new_id);
	}
	close(ctl);
	ops->finish(&sb, r >= 0);
	if (r >= 0) {
		*ret_pid = sb.pid;
		log_info("restored into %s container '%s' (init pid %d)", type, new_id, sb.pid);
	}
	return r;
}

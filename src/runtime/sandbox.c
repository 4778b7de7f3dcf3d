/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restore of a container (DESIGN.md §2.2): its runtime makes a new
 * container from the saved description whose first process is our stub
 * (the adapter's create_sandbox); the engine, from inside that container's
 * namespaces, turns the stub into the saved tree. On failure the container
 * is removed (the adapter's finish). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/netlock.h"
#include "engine/tree.h"
#include "image/image.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

struct restore_args {
	struct image *img;
	struct restore_opts *o;
};

static int restore_inside(void *arg)
{
	struct restore_args *a = arg;
	pid_t pid;
	return restore_process(a->img, a->o, &pid);
}

/* By default the container comes back under its old name; either must be
 * what runtimes accept as a name, and safe in an API path. */
static int pick_name(const json_t *meta, const char *new_id, const char **ret)
{
	const char *id;
	if (!new_id && json_get_str(meta, "name", &id) == 0 && *id)
		new_id = id[0] == '/' ? id + 1 : id;
	if (!new_id && json_get_str(meta, "id", &id) == 0)
		new_id = id;
	bool ok = new_id && isalnum((unsigned char)new_id[0]) && strlen(new_id) < 128;
	for (const char *p = new_id; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr("_.-", *p);
	if (!ok)
		return log_error_errno(-EINVAL, "bad container name '%s' (letters, digits, '_', '.', '-')",
				       new_id ? new_id : "");
	*ret = new_id;
	return 0;
}

/* The image's highest pid or tid: in the new container, the restorer
 * stays above it (DESIGN.md §5a). */
static int image_max_pid(struct image *img, pid_t *ret)
{
	struct tree t;
	int r = tree_from_json(json_object_get(image_manifest(img), "tree"), &t);
	if (r < 0)
		return log_error_errno(r, "manifest.json in %s: missing or bad tree", image_dir(img));
	*ret = tree_max_pid(&t);
	tree_free(&t);
	return 0;
}

static int load(struct image *img, const char *type, json_t **ret_meta, json_t **ret_config)
{
	json_t *meta = json_object_get(image_manifest(img), "container");
	int r = json_is_object(meta) ? image_get_json(img, IMAGE_CONFIG, ret_config) : -EBADMSG;
	if (r < 0)
		return log_error_errno(r, "image %s has no %s container description", image_dir(img), type);
	*ret_meta = json_incref(meta);
	return 0;
}

/* --tcp-established: the new container has the old address (--keep-ip)
 * from inside its runtime's start, before we even know its pid, but none
 * of the image's sockets until the restore inside has loaded the image
 * and locked its namespace (seconds on a busy host): a peer's packet
 * arriving meanwhile gets a reset (tcp:docker-keep-ip:sent-while-starting
 * showed it). So the connections are locked on the host's side, where the
 * container's packets pass, before it is made, until the restore inside
 * is done (or failed: the container goes). */
static void lock_outer(struct image *img, const struct restore_opts *o, struct netlock *l)
{
	if (!o->tcp_established ||
	    netlock_from_json(json_object_get(image_manifest(img), "netlock"), l) < 0) /* the restore inside says */
		return;
	l->image_table[0] = 0; /* the dump's: the restore inside removes it */
	(void)netlock_take_outer(l);
}

int rt_restore_sandbox(const struct rt_ops *ops, struct image *img, const struct rt_restore_req *req,
		       struct rt_restored *ret)
{
	_cleanup_json_ json_t *meta = NULL, *config = NULL;
	struct restore_opts o = req->o;
	struct rt_sandbox sb = { .keep_ip = req->keep_ip };
	struct netlock lock = { 0 };
	const char *name;
	int ctl = -1, stub = -1;
	pid_t max;
	if (o.pidns || o.ninherit)
		return log_error_errno(-EINVAL, "--pidns and --inherit-fd are for process images; %s holds a %s "
				       "container", req->dir, ops->name);
	int r = load(img, ops->name, &meta, &config);
	if (r < 0 || (r = pick_name(meta, req->new_id, &name)) < 0 || (r = image_max_pid(img, &max)) < 0)
		return r;
	if (req->address && (size_t)snprintf(sb.address, sizeof(sb.address), "%s", req->address) >= sizeof(sb.address))
		return log_error_errno(-ENAMETOOLONG, "--address %s: too long", req->address);
	if ((r = fdpass_open(&ctl, &stub)) < 0)
		return log_error_errno(r, "cannot make the fd transport: %m");
	lock_outer(img, &o, &lock);
	r = ops->create_sandbox(img, meta, config, name, o.stub_path, stub, &sb);
	close(stub);
	if (r >= 0) {
		struct restore_args a = { img, &o };
		o.adopt = true;
		o.ctl = ops->uses_fd ? ctl : -1;
		o.stub_file = sb.stub_in[0] ? sb.stub_in : NULL;
		o.fsroot = RT_CONTAINER_ROOT;
		r = rt_in_container(sb.pid, max, restore_inside, &a);
		if (r < 0)
			log_error("restore into %s container '%s' failed; the container is removed", ops->name, name);
	}
	close(ctl);
	(void)netlock_release(&lock);
	netlock_free(&lock);
	ops->finish(&sb, r >= 0);
	if (r < 0)
		return r;
	ret->pid = sb.pid;
	log_info("restored into %s container '%s' (init pid %d)", ops->name, name, sb.pid);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* containerd, through its own client (`ctr`, as there is no C client
 * library): the task is found with `ctr --address A --namespace NS task
 * ls`, A found as containerd-address.c says. Docker's
 * containers live in the "moby" namespace: for those, the container's
 * description and restore go through Docker (which owns their image and
 * configuration, reached through the same Engine API steps, moby.c), so a
 * restore gives a first-class Docker container. Containers of other
 * namespaces are containerd's own: described and restored through ctr
 * (containerd-native.c). The image's "namespace" chooses the path. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "runtime/containerd.h"
#include "runtime/moby.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* The pid of task id from `ctr task ls`: "TASK PID STATUS" lines. */
int containerd_task_pid(const char *address, const char *ns, const char *id, pid_t *ret)
{
	char *const argv[] = { (char *)"ctr", (char *)"--address", (char *)address, (char *)"--namespace", (char *)ns,
			       (char *)"task", (char *)"ls", NULL };
	_cleanup_free_ char *out = NULL;
	int r = rt_run(argv, &out);
	if (r == -ENOENT)
		return log_error_errno(r, "ctr (containerd's client) is not installed");
	if (r < 0)
		return log_error_errno(r, "cannot list containerd tasks in namespace '%s' at %s; is containerd running "
				       "there (--address, CONTAINERD_ADDRESS)?", ns, address);
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char task[256], status[64];
		long pid;
		if (sscanf(line, "%255s %ld %63s", task, &pid, status) != 3 || !streq(task, id))
			continue;
		if (!streq(status, "RUNNING"))
			return log_error_errno(-ESRCH, "containerd task '%s' is %s, not running", id, status);
		*ret = (pid_t)pid;
		return 0;
	}
	return log_error_errno(-ENOENT, "no containerd task '%s' in namespace '%s' at %s", id, ns, address);
}

/* A Docker container in the moby namespace, named as docker accepts it
 * (name, full or short id): Docker resolves the name to the full id, which
 * is containerd's id of the task, and both must agree on its pid. */
static int locate_moby(const char *address, const char *id, struct rt_found *ret)
{
	struct rt_found f = { 0 };
	const char *full;
	pid_t pid;
	int r = moby_locate(id, &f);
	if (r < 0)
		return r;
	if (json_get_str(f.meta, "id", &full) < 0)
		r = log_error_errno(-EBADMSG, "Docker gave no id for container '%s'", id);
	else if ((r = containerd_task_pid(address, "moby", full, &pid)) >= 0 && f.pid != pid)
		r = log_error_errno(-ESRCH, "containerd and Docker disagree about container '%s'", id);
	else if (r >= 0 && (json_set_str(f.meta, "runtime", "containerd") < 0 ||
			    json_set_str(f.meta, "namespace", "moby") < 0))
		r = log_error_errno(-ENOMEM, "cannot describe container '%s': %m", id);
	if (r < 0) {
		json_decref(f.meta), json_decref(f.config);
		return r;
	}
	*ret = f;
	return 0;
}

static int containerd_locate(const struct rt_target *t, struct rt_found *ret)
{
	char address[PATH_MAX];
	pid_t pid;
	int r = containerd_address(t->address, t->ns, address, sizeof(address));
	if (r < 0)
		return r;
	log_debug("containerd at %s", address);
	if (streq(t->ns, "moby"))
		return locate_moby(address, t->id, ret);
	if ((r = containerd_task_pid(address, t->ns, t->id, &pid)) < 0)
		return r;
	return ctrd_native_locate(address, t->ns, t->id, pid, ret);
}

static bool is_moby(const json_t *meta)
{
	const char *ns;
	return json_get_str(meta, "namespace", &ns) < 0 || streq(ns, "moby");
}

static int containerd_create_sandbox(struct image *img, const json_t *meta, const json_t *config,
				     const char *new_id, const char *stub_path, int stub_tfd, struct rt_sandbox *sb)
{
	if (is_moby(meta))
		return moby_create_sandbox(img, meta, config, new_id, stub_path, stub_tfd, sb);
	if (sb->keep_ip)
		return log_error_errno(-EOPNOTSUPP, "--keep-ip is for Docker's containers (namespace moby); this image "
				       "holds a container of containerd's own");
	return ctrd_native_create_sandbox(img, meta, config, new_id, stub_path, stub_tfd, sb);
}

/* Only the native path sets sb->ns. */
static void containerd_finish(struct rt_sandbox *sb, bool ok)
{
	if (sb->ns[0])
		ctrd_native_finish(sb, ok);
	else
		moby_finish(sb, ok);
}

const struct rt_ops rt_containerd = {
	.name = "containerd",
	.target = RT_BY_ID_NS,
	.locate = containerd_locate,
	.in_container = true,
	/* Both paths describe the writable layer and tmpfs mounts alike. */
	.before_commit = rt_ovl_save,
	.restore = rt_restore_sandbox,
	.create_sandbox = containerd_create_sandbox,
	.finish = containerd_finish,
	.keeps_ip = true, /* for moby; refused for containerd's own (containerd_create_sandbox) */
};

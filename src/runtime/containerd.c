/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* containerd, through its own client (`ctr`, as there is no C client
 * library): the task is found with `ctr --namespace NS task ls`. Docker's
 * containers live in the "moby" namespace: for those, the container's
 * description and restore go through Docker (which owns their image and
 * configuration), so a restore gives a first-class Docker container. Other
 * namespaces are checkpointed the same way but cannot be restored yet. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "runtime/docker.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* The pid of task id from `ctr task ls`: "TASK PID STATUS" lines. */
static int task_pid(const char *ns, const char *id, pid_t *ret)
{
	char *const argv[] = { (char *)"ctr", (char *)"--namespace", (char *)ns, (char *)"task", (char *)"ls", NULL };
	_cleanup_free_ char *out = NULL;
	int r = rt_run(argv, &out);
	if (r == -ENOENT)
		return log_error_errno(r, "ctr (containerd's client) is not installed");
	if (r < 0)
		return log_error_errno(r, "cannot list containerd tasks in namespace '%s'; is containerd running "
				       "(CONTAINERD_ADDRESS)?", ns);
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
	return log_error_errno(-ENOENT, "no containerd task '%s' in namespace '%s'", id, ns);
}

static int containerd_locate(const char *id, const char *ns, pid_t *ret_pid, json_t **ret_meta, json_t **ret_config)
{
	pid_t pid;
	int r = task_pid(ns, id, &pid);
	if (r < 0)
		return r;
	if (!streq(ns, "moby"))
		return log_error_errno(-EOPNOTSUPP, "containerd namespace '%s': only Docker's (moby) containers can be "
				       "checkpointed yet", ns);
	json_t *meta = NULL;
	if ((r = docker_locate(id, ns, ret_pid, &meta, ret_config)) < 0)
		return r;
	if (*ret_pid != pid) {
		json_decref(meta), json_decref(*ret_config);
		return log_error_errno(-ESRCH, "containerd and Docker disagree about container '%s'", id);
	}
	if (json_object_set_new(meta, "runtime", json_string("containerd")) ||
	    json_object_set_new(meta, "namespace", json_string(ns))) {
		json_decref(meta), json_decref(*ret_config);
		return -ENOMEM;
	}
	*ret_meta = meta;
	return 0;
}

const struct rt_ops rt_containerd = {
	.name = "containerd",
	.locate = containerd_locate,
	.create_sandbox = docker_create_sandbox,
	.finish = docker_finish,
	.before_commit = docker_save_diff,
};

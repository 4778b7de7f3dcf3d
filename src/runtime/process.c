/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Plain processes: the target is a pid and its descendants, dumped from
 * where we run; the restore happens here too (or in a new pid namespace
 * with --pidns), and the command waits for the restored root unless told
 * to detach, passing its exit status on. */
#include <errno.h>
#include <signal.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "util/log.h"

static int process_locate(const struct rt_target *t, struct rt_found *ret)
{
	if (kill(t->pid, 0) < 0 && errno == ESRCH)
		return log_error_errno(-ESRCH, "no process with pid %d", t->pid);
	ret->pid = t->pid;
	return 0;
}

static int process_restore(const struct rt_ops *ops, struct image *img, const struct rt_restore_req *req,
			   struct rt_restored *ret)
{
	pid_t root, init = 0;
	int r;
	(void)ops;
	if (req->new_id)
		return log_error_errno(-EINVAL, "--id is for container images; %s holds a process", req->dir);
	if (req->o.pidns)
		r = restore_pidns(img, &req->o, &root, &init);
	else
		r = restore_process(img, &req->o, &root);
	if (r < 0)
		return r;
	ret->pid = root;
	/* In a pid namespace the root is not our child: its init is, and
	 * passes the root's status on. */
	if (!req->o.detach)
		ret->wait_for = init ? init : root;
	return 0;
}

const struct rt_ops rt_process = {
	.name = "process",
	.target = RT_BY_PID,
	.locate = process_locate,
	.restore = process_restore,
};

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/prctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/proc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

int prctl_collect(int procfd, pid_t pid, struct prctl_rec *p)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = proc_read(procfd, "oom_score_adj", &buf, &len);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot read oom_score_adj: %m", pid);
	buf[strcspn(buf, "\n")] = 0;
	if (parse_int(buf, &p->oom_score_adj) < 0 || p->oom_score_adj < -1000 || p->oom_score_adj > 1000)
		return log_error_errno(-EBADMSG, "pid %d: bad oom_score_adj '%s'", pid, buf);
	return 0;
}

int prctl_dump_remote(struct remote *r, pid_t tid, struct prctl_rec *p)
{
	long ret = remote_syscall(r, tid, SYS_prctl, PR_GET_CHILD_SUBREAPER, r->scratch + 8192);
	int e = ret < 0 ? (int)ret : remote_read(r, r->scratch + 8192, &p->subreaper, sizeof(p->subreaper));
	if (e < 0)
		return e;
	ret = remote_syscall(r, tid, SYS_prctl, PR_GET_THP_DISABLE, 0, 0, 0, 0);
	if (ret < 0)
		return (int)ret;
	p->thp_disable = (int)ret;
	return 0;
}

void prctl_to_json(const struct prctl_rec *p, struct json_builder *core)
{
	struct json_builder o;
	jb_begin(&o);
	jb_int(&o, "child_subreaper", p->subreaper);
	jb_int(&o, "thp_disable", p->thp_disable);
	jb_int(&o, "oom_score_adj", p->oom_score_adj);
	jb_obj(core, "prctl", &o);
}

int prctl_from_json(const json_t *core, struct prctl_rec *p)
{
	const json_t *o = json_object_get(core, "prctl");
	int r;
	if (!json_is_object(o))
		return -EBADMSG;
	if ((r = json_get_int(o, "child_subreaper", &p->subreaper)) < 0 ||
	    (r = json_get_int(o, "thp_disable", &p->thp_disable)) < 0 ||
	    (r = json_get_int(o, "oom_score_adj", &p->oom_score_adj)) < 0)
		return r;
	if ((p->subreaper & ~1) || (p->thp_disable & ~3) || p->oom_score_adj < -1000 || p->oom_score_adj > 1000)
		return -EBADMSG;
	return 0;
}

static int write_oom(int procfd, pid_t pid, int v)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", v);
	_cleanup_close_ int fd = openat(procfd, "oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return log_error_errno(-errno, "pid %d: cannot restore oom_score_adj %d (lowering it needs "
				       "CAP_SYS_RESOURCE): %m", pid, v);
	return 0;
}

int prctl_restore(struct remote *r, pid_t tid, int procfd, const struct prctl_rec *p)
{
	long ret = 0;
	if (p->subreaper && (ret = remote_syscall(r, tid, SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) < 0)
		return log_error_errno((int)ret, "pid %d: cannot make it a child subreaper again: %m", r->pid);
	/* Bit 0 disables, the others are PR_SET_THP_DISABLE's flags. */
	if (p->thp_disable &&
	    (ret = remote_syscall(r, tid, SYS_prctl, PR_SET_THP_DISABLE, 1, p->thp_disable & ~1, 0, 0)) < 0)
		return log_error_errno((int)ret, "pid %d: cannot disable transparent huge pages again: %m", r->pid);
	/* Always: the stub has ours. */
	return write_oom(procfd, r->pid, p->oom_score_adj);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/task.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/deleted.h"
#include "engine/proc.h"
#include "engine/remote-batch.h"
#include "image/json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

void task_rec_free(struct task_rec *t)
{
	if (!t)
		return;
	free(t->cwd);
	free(t->root);
	t->cwd = t->root = NULL;
}

static int read_link(int procfd, const char *name, char **ret)
{
	char buf[PATH_MAX];
	ssize_t l = readlinkat(procfd, name, buf, sizeof(buf) - 1);
	if (l < 0)
		return -errno;
	buf[l] = 0;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static int limit_value(const char *s, uint64_t *ret)
{
	if (streq(s, "unlimited")) {
		*ret = UINT64_MAX; /* RLIM64_INFINITY */
		return 0;
	}
	return parse_u64(s, 10, ret);
}

int task_parse_limits(const char *buf, size_t len, struct task_rec *t)
{
	char line[256], cur[32], max[32];
	size_t pos = 0;
	int i = -1; /* the first line names the columns */
	/* "%-25s %-20s %-20s %-10s": the names have spaces, the values not. */
	while (i < NLIMITS && proc_next_line(buf, len, &pos, line, sizeof(line))) {
		if (i++ < 0)
			continue;
		if (strlen(line) < 27 || sscanf(line + 26, "%31s %31s", cur, max) != 2 ||
		    limit_value(cur, &t->rlim[i - 1].cur) < 0 || limit_value(max, &t->rlim[i - 1].max) < 0)
			return -EBADMSG;
	}
	return i == NLIMITS ? 0 : -EBADMSG;
}

int task_collect(int procfd, pid_t pid, struct task_rec *t)
{
	_cleanup_free_ char *st = NULL, *status = NULL, *pers = NULL;
	size_t len;
	struct proc_stat ps;
	struct proc_status pst;
	int r;

	if ((r = proc_read(procfd, "stat", &st, &len)) < 0 || (r = proc_parse_stat(st, len, &ps)) < 0)
		return log_error_errno(r, "pid %d: cannot read stat: %m", pid);
	memcpy(t->comm, ps.comm, sizeof(t->comm));
	if ((r = proc_read(procfd, "status", &status, &len)) < 0 || (r = proc_parse_status(status, len, &pst)) < 0)
		return log_error_errno(r, "pid %d: cannot read status: %m", pid);
	t->umask = pst.umask;
	t->no_new_privs = pst.no_new_privs;
	if ((r = proc_read(procfd, "personality", &pers, &len)) < 0)
		return log_error_errno(r, "pid %d: cannot read personality: %m", pid);
	uint64_t p;
	pers[strcspn(pers, "\n")] = 0;
	if (parse_u64(pers, 16, &p) < 0)
		return log_error_errno(-EINVAL, "pid %d: bad personality '%s'", pid, pers);
	t->personality = (uint32_t)p;
	if ((r = read_link(procfd, "cwd", &t->cwd)) < 0 || (r = read_link(procfd, "root", &t->root)) < 0)
		return log_error_errno(r, "pid %d: cannot read cwd/root: %m", pid);
	/* (A removed cwd is made again: deleted.h.) The limits in one read
	 * instead of 16 remote calls (~40 us each); where they cannot be read
	 * or parsed, task_dump_remote asks the process. */
	_cleanup_free_ char *lim = NULL;
	t->rlim_read = proc_read(procfd, "limits", &lim, &len) >= 0 && task_parse_limits(lim, len, t) >= 0;
	return 0;
}

int task_dump_remote(struct remote *r, pid_t tid, struct task_rec *t)
{
	long ret = remote_syscall(r, tid, SYS_prctl, PR_GET_PDEATHSIG, r->scratch + 8192);
	if (ret < 0)
		return (int)ret;
	int e = remote_read(r, r->scratch + 8192, &t->pdeathsig, sizeof(t->pdeathsig));
	/* Not from /proc: from inside, as prlimit() on another process needs
	 * matching uids or CAP_SYS_RESOURCE, which root here may lack. */
	for (int i = 0; i < NLIMITS && e >= 0 && !t->rlim_read; i++) {
		ret = remote_syscall(r, tid, SYS_prlimit64, 0, i, 0, r->scratch + 8192);
		if (ret < 0)
			return (int)ret;
		e = remote_read(r, r->scratch + 8192, &t->rlim[i], sizeof(t->rlim[i]));
	}
	return e < 0 ? e : membarrier_dump_remote(r, tid, &t->membarrier);
}

void task_to_json(const struct task_rec *t, struct json_builder *core)
{
	jb_str(core, "comm", t->comm);
	jb_str(core, "cwd", t->cwd);
	jb_str(core, "root", t->root);
	jb_i64(core, "umask", t->umask);
	jb_i64(core, "personality", t->personality);
	jb_int(core, "no_new_privs", t->no_new_privs);
	jb_int(core, "pdeathsig", t->pdeathsig);
	if (t->membarrier)
		jb_int(core, "membarrier", (int)t->membarrier);
	json_t *lim = jb_array(core, "rlimits");
	for (int i = 0; lim && i < NLIMITS; i++) {
		struct json_builder o;
		jb_begin(&o);
		jb_x64(&o, "cur", t->rlim[i].cur);
		jb_x64(&o, "max", t->rlim[i].max);
		jb_append_obj(core, lim, &o);
	}
}

int task_from_json(const json_t *core, struct task_rec *t)
{
	const char *comm, *cwd, *root;
	json_t *lim;
	int r, v;

	memset(t, 0, sizeof(*t));
	if ((r = json_get_str(core, "comm", &comm)) < 0 || (r = json_get_str(core, "cwd", &cwd)) < 0 ||
	    (r = json_get_str(core, "root", &root)) < 0)
		return r;
	if (strlen(comm) >= sizeof(t->comm) || !path_is_normal(cwd) || !path_is_normal(root))
		return -EBADMSG;
	memcpy(t->comm, comm, strlen(comm) + 1);
	if ((r = json_get_int(core, "umask", &v)) < 0 || v & ~0777)
		return -EBADMSG;
	t->umask = (uint32_t)v;
	if ((r = json_get_int(core, "personality", &v)) < 0)
		return r;
	t->personality = (uint32_t)v;
	if ((r = json_get_int(core, "no_new_privs", &t->no_new_privs)) < 0 ||
	    (r = json_get_int(core, "pdeathsig", &t->pdeathsig)) < 0)
		return r;
	if (t->pdeathsig < 0 || t->pdeathsig > 64)
		return -EBADMSG;
	v = 0; /* absent before version 4: no registration */
	if (json_object_get(core, "membarrier") && ((r = json_get_int(core, "membarrier", &v)) < 0 || v < 0 || v > 7))
		return -EBADMSG;
	t->membarrier = (uint32_t)v;
	if ((r = json_get_array(core, "rlimits", NLIMITS, &lim)) < 0)
		return r;
	if (json_array_size(lim) != NLIMITS)
		return -EBADMSG;
	for (int i = 0; i < NLIMITS; i++) {
		const json_t *o = json_array_get(lim, (size_t)i);
		if ((r = json_get_x64(o, "cur", &t->rlim[i].cur)) < 0 || (r = json_get_x64(o, "max", &t->rlim[i].max)) < 0)
			return r;
	}
	t->cwd = strdup(cwd);
	t->root = strdup(root);
	return t->cwd && t->root ? 0 : -ENOMEM;
}

/* Whether the process has that limit already (a child has its parent's,
 * which are mostly ours): read from here, without a remote call (~40 us
 * each, 16 limits). Where we may not read them, every one is set. */
static bool rlimit_is(pid_t tid, int i, uint64_t cur, uint64_t max)
{
	struct {
		uint64_t cur, max;
	} now;
	return syscall(SYS_prlimit64, tid, i, NULL, &now) == 0 && now.cur == cur && now.max == max;
}

/* The calls of task_restore, in one batch (remote-batch.h); their tags. */
enum { T_ROOT, T_CWD, T_UMASK, T_PERSONALITY, T_NAME, T_RLIMIT };

static int task_failed(struct remote *r, const struct rbatch *b, const struct task_rec *t, int e)
{
	uint32_t tag = rbatch_failed_tag(b, UINT32_MAX);
	switch (tag) {
	case T_ROOT:
		return log_error_errno(e, "pid %d: cannot restore root %s: %m", r->pid, t->root);
	case T_CWD:
		return log_error_errno(e, "pid %d: cannot restore cwd %s: %m", r->pid, t->cwd);
	case T_PERSONALITY:
		return log_error_errno(e, "pid %d: cannot restore personality: %m", r->pid);
	case T_NAME:
		return log_error_errno(e, "pid %d: cannot restore its name: %m", r->pid);
	default:
		return log_error_errno(e, "pid %d: cannot restore its root, cwd, name or limits: %m", r->pid);
	}
}

/* Raising a hard limit needs CAP_SYS_RESOURCE, which root may lack: the
 * soft limit is kept where the hard one allows (EPERM, a warning). */
static int rlimits_check(struct remote *r, const struct rbatch *b, size_t n, const struct task_rec *t)
{
	for (size_t k = 0; k < n; k++) {
		const struct rbatch_call *c = &b->calls[k];
		int i = (int)(c->tag - T_RLIMIT);
		if (c->tag < T_RLIMIT || c->ret >= 0)
			continue;
		if (c->ret != -EPERM)
			return log_error_errno((int)c->ret, "pid %d: cannot restore rlimit %d: %m", r->pid, i);
		log_warn("pid %d: rlimit %d: hard limit %llu cannot be raised here; kept lower", r->pid, i,
			 (unsigned long long)t->rlim[i].max);
	}
	return 0;
}

int task_restore(struct remote *r, pid_t tid, const struct task_rec *t)
{
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	size_t lroot = strlen(t->root) + 1, lcwd = strlen(t->cwd) + 1;
	rbatch_begin(b, r, tid);
	if (!rbatch_room(b, 5 + NLIMITS, lroot + lcwd + sizeof(t->comm) + NLIMITS * sizeof(t->rlim[0])))
		return log_error_errno(-ENAMETOOLONG, "pid %d: its root and cwd paths are too long", r->pid);
	if (!streq(t->root, "/"))
		rbatch_call(b, T_ROOT, 0, SYS_chroot, rbatch_data(b, t->root, lroot));
	if (!path_deleted(t->cwd))
		rbatch_call(b, T_CWD, 0, SYS_chdir, rbatch_data(b, t->cwd, lcwd));
	rbatch_call(b, T_UMASK, RB_MAY_FAIL, SYS_umask, t->umask);
	rbatch_call(b, T_PERSONALITY, 0, SYS_personality, t->personality);
	rbatch_call(b, T_NAME, 0, SYS_prctl, PR_SET_NAME, rbatch_data(b, t->comm, sizeof(t->comm)));
	for (int i = 0; i < NLIMITS; i++)
		if (!rlimit_is(tid, i, t->rlim[i].cur, t->rlim[i].max))
			rbatch_call(b, T_RLIMIT + (uint32_t)i, RB_MAY_FAIL, SYS_prlimit64, 0, i,
				    rbatch_data(b, &t->rlim[i], sizeof(t->rlim[i])), 0);
	size_t n = b->n;
	int e = rbatch_run(b);
	if (e < 0)
		return task_failed(r, b, t, e);
	/* After the limits, as before: registering needs nothing of them. */
	if ((e = rlimits_check(r, b, n, t)) < 0 || (e = membarrier_restore(r, tid, t->membarrier)) < 0)
		return e;
	return 0;
}

int task_restore_nnp(struct remote *r, pid_t tid, const struct task_rec *t)
{
	if (!t->no_new_privs)
		return 0;
	long ret = remote_syscall(r, tid, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return ret < 0 ? log_error_errno((int)ret, "tid %d: cannot set no_new_privs: %m", tid) : 0;
}

int task_restore_pdeathsig(struct remote *r, pid_t tid, const struct task_rec *t, bool root)
{
	/* The kernel clears it on any credential change: set it after creds.
	 * Always set it: the stub runs with SIGKILL there until now. */
	long ret = remote_syscall(r, tid, SYS_prctl, PR_SET_PDEATHSIG, t->pdeathsig);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot restore its parent-death signal: %m", r->pid);
	if (t->pdeathsig && root) /* the others have their real parents back */
		log_warn("pid %d: has parent-death signal %d; its parent is now the restorer", r->pid, t->pdeathsig);
	return 0;
}

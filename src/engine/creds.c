/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "engine/proc.h"
#include "engine/remote-batch.h"
#include "image/json.h"
#include "util/cleanup.h"
#include "util/log.h"

void creds_from_status(const struct proc_status *st, struct creds_rec *c)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->uid, st->uid, sizeof(c->uid));
	memcpy(c->gid, st->gid, sizeof(c->gid));
	c->fsuid = st->uid[3];
	c->fsgid = st->gid[3];
	c->ngroups = st->ngroups;
	memcpy(c->groups, st->groups, sizeof(c->groups));
	c->cap_inh = st->cap_inh;
	c->cap_prm = st->cap_prm;
	c->cap_eff = st->cap_eff;
	c->cap_bnd = st->cap_bnd;
	c->cap_amb = st->cap_amb;
}

static void u32_array(struct json_builder *b, const char *key, const uint32_t *v, size_t n)
{
	json_t *a = jb_array(b, key);
	for (size_t i = 0; a && i < n; i++)
		jb_append(b, a, json_integer(v[i]));
}

void creds_to_json(const struct creds_rec *c, struct json_builder *core)
{
	struct json_builder o;
	jb_begin(&o);
	u32_array(&o, "uid", c->uid, 3);
	u32_array(&o, "gid", c->gid, 3);
	jb_i64(&o, "fsuid", c->fsuid);
	jb_i64(&o, "fsgid", c->fsgid);
	u32_array(&o, "groups", c->groups, c->ngroups);
	jb_x64(&o, "cap_inh", c->cap_inh);
	jb_x64(&o, "cap_prm", c->cap_prm);
	jb_x64(&o, "cap_eff", c->cap_eff);
	jb_x64(&o, "cap_bnd", c->cap_bnd);
	jb_x64(&o, "cap_amb", c->cap_amb);
	jb_i64(&o, "securebits", c->securebits);
	jb_obj(core, "creds", &o);
}

static int get_u32_array(const json_t *o, const char *key, uint32_t *v, size_t max, size_t *ret_n)
{
	json_t *a;
	int r = json_get_array(o, key, max, &a);
	if (r < 0)
		return r;
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *e = json_array_get(a, i);
		if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > UINT32_MAX)
			return -EBADMSG;
		v[i] = (uint32_t)json_integer_value(e);
	}
	*ret_n = json_array_size(a);
	return 0;
}

int creds_from_json(const json_t *core, struct creds_rec *c)
{
	const json_t *o = json_object_get(core, "creds");
	size_t n;
	int r, v;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(o))
		return -EBADMSG;
	if ((r = get_u32_array(o, "uid", c->uid, 3, &n)) < 0 || n != 3)
		return -EBADMSG;
	if ((r = get_u32_array(o, "gid", c->gid, 3, &n)) < 0 || n != 3)
		return -EBADMSG;
	if ((r = get_u32_array(o, "groups", c->groups, 256, &n)) < 0)
		return r;
	c->ngroups = (uint32_t)n;
	if ((r = json_get_int(o, "fsuid", &v)) < 0)
		return r;
	c->fsuid = (uint32_t)v;
	if ((r = json_get_int(o, "fsgid", &v)) < 0)
		return r;
	c->fsgid = (uint32_t)v;
	if ((r = json_get_x64(o, "cap_inh", &c->cap_inh)) < 0 || (r = json_get_x64(o, "cap_prm", &c->cap_prm)) < 0 ||
	    (r = json_get_x64(o, "cap_eff", &c->cap_eff)) < 0 || (r = json_get_x64(o, "cap_bnd", &c->cap_bnd)) < 0 ||
	    (r = json_get_x64(o, "cap_amb", &c->cap_amb)) < 0)
		return r;
	if ((r = json_get_int(o, "securebits", &v)) < 0)
		return r;
	c->securebits = (uint32_t)v;
	return 0;
}

int creds_dump_remote(struct remote *r, pid_t tid, struct creds_rec *c)
{
	long ret = remote_syscall(r, tid, SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0);
	if (ret < 0)
		return (int)ret;
	c->securebits = (uint32_t)ret;
	return 0;
}

/* Set while we still have CAP_SETPCAP (the capset may drop it), with
 * KEEP_CAPS on until the capset unless it is locked as it was. */
/* Only what is in the set now: dropping needs CAP_SETPCAP, which a
 * container's process may lack when there is nothing to drop. */
static int drop_bounding(struct remote *r, pid_t tid, uint64_t want, uint64_t have)
{
	for (int cap = 0; cap < 64; cap++) {
		if ((want & (1ULL << cap)) || !(have & (1ULL << cap)))
			continue;
		long ret = remote_syscall(r, tid, SYS_prctl, PR_CAPBSET_DROP, cap);
		if (ret == -EINVAL)
			break; /* past the last capability this kernel knows */
		if (ret < 0)
			return (int)ret;
	}
	return 0;
}

/* The thread's credentials now (the stub's: those its runtime gave it). */
static int creds_now(pid_t tid, struct proc_status *ret)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	int e = proc_read(AT_FDCWD, path, &buf, &len);
	return e < 0 ? e : proc_parse_status(buf, len, ret);
}

/* Order matters: groups and gids while we still have CAP_SETGID, uids with
 * KEEP_CAPS so the permitted set survives, then the capability sets. What
 * is as it should be already is left alone: a process that a container's
 * runtime started unprivileged may not even set it to what it is. */
/* Tags of creds_restore's calls (one batch), for its message. */
enum { C_GROUPS, C_USERS, C_SECUREBITS, C_CAPS, C_KEEPCAPS, C_AMBIENT };

static int creds_failed(pid_t tid, const struct rbatch *b, const struct creds_rec *c, int e)
{
	uint32_t tag = rbatch_failed_tag(b, UINT32_MAX);
	switch (tag) {
	case C_GROUPS:
		return log_error_errno(e, "tid %d: cannot restore group ids: %m", tid);
	case C_USERS:
		return log_error_errno(e, "tid %d: cannot restore user ids: %m", tid);
	case C_SECUREBITS:
		return log_error_errno(e, "tid %d: cannot restore securebits %#x: %m", tid, c->securebits);
	case C_CAPS:
		return log_error_errno(e, "tid %d: cannot restore capabilities: %m", tid);
	case C_KEEPCAPS:
		return log_error_errno(e, "tid %d: cannot restore PR_SET_KEEPCAPS: %m", tid);
	case C_AMBIENT:
		return log_error_errno(e, "tid %d: cannot raise ambient capability %d: %m", tid,
				       (int)b->calls[b->failed].a[2]);
	default:
		return log_error_errno(e, "tid %d: cannot restore its credentials: %m", tid);
	}
}

/* In this order: groups, then user ids keeping the capabilities, then
 * securebits and capabilities, the ambient ones last. */
static void add_creds(struct rbatch *b, const struct creds_rec *c, bool same_groups)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)c->cap_eff, (uint32_t)c->cap_prm, (uint32_t)c->cap_inh },
		{ (uint32_t)(c->cap_eff >> 32), (uint32_t)(c->cap_prm >> 32), (uint32_t)(c->cap_inh >> 32) },
	};
	uint32_t sb = c->securebits | ((c->securebits & SECBIT_KEEP_CAPS_LOCKED) ? 0 : SECBIT_KEEP_CAPS);
	if (!same_groups)
		rbatch_call(b, C_GROUPS, 0, SYS_setgroups, c->ngroups,
			    rbatch_data(b, c->groups, c->ngroups * sizeof(uint32_t)));
	rbatch_call(b, C_GROUPS, 0, SYS_setresgid, c->gid[0], c->gid[1], c->gid[2]);
	rbatch_call(b, C_GROUPS, 0, SYS_setfsgid, c->fsgid);
	rbatch_call(b, C_USERS, 0, SYS_prctl, PR_SET_KEEPCAPS, 1);
	rbatch_call(b, C_USERS, 0, SYS_setresuid, c->uid[0], c->uid[1], c->uid[2]);
	rbatch_call(b, C_USERS, 0, SYS_setfsuid, c->fsuid);
	if (c->securebits)
		rbatch_call(b, C_SECUREBITS, 0, SYS_prctl, PR_SET_SECUREBITS, sb, 0, 0, 0);
	uint64_t h = rbatch_data(b, &hdr, sizeof(hdr));
	rbatch_call(b, C_CAPS, 0, SYS_capset, h, rbatch_data(b, data, sizeof(data)));
	if (!(c->securebits & SECBIT_KEEP_CAPS_LOCKED))
		rbatch_call(b, C_KEEPCAPS, 0, SYS_prctl, PR_SET_KEEPCAPS, !!(c->securebits & SECBIT_KEEP_CAPS));
	for (int cap = 0; cap < 64; cap++)
		if (c->cap_amb & (1ULL << cap))
			rbatch_call(b, C_AMBIENT, 0, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
}

int creds_restore(struct remote *r, pid_t tid, const struct creds_rec *c)
{
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	struct proc_status now;
	int e = b ? creds_now(tid, &now) : -ENOMEM;
	if (e < 0)
		return log_error_errno(e, "tid %d: cannot read its credentials: %m", tid);
	e = drop_bounding(r, tid, c->cap_bnd, now.cap_bnd);
	if (e < 0)
		return log_error_errno(e, "tid %d: cannot restore capability bounding set: %m", tid);
	bool same_groups = now.ngroups == c->ngroups && !memcmp(now.groups, c->groups, c->ngroups * sizeof(uint32_t));
	size_t glen = c->ngroups * sizeof(uint32_t);
	rbatch_begin(b, r, tid);
	if (!same_groups && !rbatch_room(b, 10 + 64, glen + 64)) {
		/* Many groups: they go alone, through the scratch area's data. */
		long ret = glen > r->scratch_len - 16384 ? -E2BIG : remote_write(r, r->scratch + 8192, c->groups, glen);
		if (ret >= 0)
			ret = remote_syscall(r, tid, SYS_setgroups, c->ngroups, r->scratch + 8192);
		if (ret < 0)
			return log_error_errno((int)ret, "tid %d: cannot restore group ids: %m", tid);
		same_groups = true;
	}
	add_creds(b, c, same_groups);
	if ((e = rbatch_run(b)) < 0)
		return creds_failed(tid, b, c, e);
	return 0;
}

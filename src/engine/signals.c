/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/signals.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "engine/remote-batch.h"
#include "engine/thread.h"
#include "image/json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

void signals_rec_free(struct signals_rec *s)
{
	if (s) {
		free(s->shared);
		s->shared = NULL;
	}
}

int signals_dump(struct remote *r, pid_t tid, struct signals_rec *s)
{
	uint64_t buf = r->scratch + 8192;
	/* Each action to its own slot, all read back at once. */
	for (int sig = 1; sig <= NSIG_K; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		long ret = remote_syscall(r, tid, SYS_rt_sigaction, sig, 0, buf + sig * sizeof(s->act[0]), 8);
		if (ret < 0)
			return (int)ret;
	}
	int e = remote_read(r, buf + sizeof(s->act[0]), &s->act[1], NSIG_K * sizeof(s->act[0]));
	if (e < 0)
		return e;
	s->act[SIGKILL] = s->act[SIGSTOP] = (struct k_sigaction){ 0 }; /* not asked: whatever was there */
	for (int w = 0; w < 3; w++) {
		long ret = remote_syscall(r, tid, SYS_getitimer, w, buf);
		if (ret < 0)
			return (int)ret;
		if ((e = remote_read(r, buf, &s->itimer[w], sizeof(s->itimer[w]))) < 0)
			return e;
	}
	return pending_dump(tid, true, &s->shared, &s->nshared);
}

static void sigactions_to_json(const struct signals_rec *s, struct json_builder *core)
{
	json_t *acts = jb_array(core, "sigactions");
	for (int sig = 1; acts && sig <= NSIG_K; sig++) {
		const struct k_sigaction *a = &s->act[sig];
		if (!a->handler && !a->flags && !a->mask && !a->restorer)
			continue;
		struct json_builder o;
		jb_begin(&o);
		jb_int(&o, "sig", sig);
		jb_u64(&o, "handler", a->handler);
		jb_x64(&o, "flags", a->flags);
		jb_u64(&o, "restorer", a->restorer);
		jb_x64(&o, "mask", a->mask);
		jb_append_obj(core, acts, &o);
	}
}

void signals_to_json(const struct signals_rec *s, struct json_builder *core)
{
	sigactions_to_json(s, core);
	json_t *timers = jb_array(core, "itimers");
	for (int w = 0; timers && w < 3; w++) {
		const struct itimerval *it = &s->itimer[w];
		struct json_builder o;
		jb_begin(&o);
		jb_u64(&o, "interval_us", (uint64_t)it->it_interval.tv_sec * 1000000 + it->it_interval.tv_usec);
		jb_u64(&o, "value_us", (uint64_t)it->it_value.tv_sec * 1000000 + it->it_value.tv_usec);
		jb_append_obj(core, timers, &o);
	}
	pending_to_json(core, "shared_pending", s->shared, s->nshared);
}

static int us_to_tv(uint64_t us, struct timeval *tv)
{
	if (us > (uint64_t)INT32_MAX * 1000000ULL)
		return -EBADMSG;
	tv->tv_sec = (time_t)(us / 1000000);
	tv->tv_usec = (suseconds_t)(us % 1000000);
	return 0;
}

int signals_from_json(const json_t *core, struct signals_rec *s)
{
	json_t *a;
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = json_get_array(core, "sigactions", NSIG_K, &a)) < 0)
		return r;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *o = json_array_get(a, i);
		int sig;
		if ((r = json_get_int(o, "sig", &sig)) < 0)
			return r;
		if (sig < 1 || sig > NSIG_K || sig == SIGKILL || sig == SIGSTOP)
			return -EBADMSG;
		struct k_sigaction *k = &s->act[sig];
		if ((r = json_get_u64(o, "handler", &k->handler)) < 0 || (r = json_get_x64(o, "flags", &k->flags)) < 0 ||
		    (r = json_get_u64(o, "restorer", &k->restorer)) < 0 || (r = json_get_x64(o, "mask", &k->mask)) < 0)
			return r;
	}
	if ((r = json_get_array(core, "itimers", 3, &a)) < 0)
		return r;
	if (json_array_size(a) != 3)
		return -EBADMSG;
	for (int w = 0; w < 3; w++) {
		uint64_t iv, v;
		const json_t *o = json_array_get(a, (size_t)w);
		if ((r = json_get_u64(o, "interval_us", &iv)) < 0 || (r = json_get_u64(o, "value_us", &v)) < 0)
			return r;
		if (us_to_tv(iv, &s->itimer[w].it_interval) < 0 || us_to_tv(v, &s->itimer[w].it_value) < 0)
			return -EBADMSG;
	}
	return pending_from_json(core, "shared_pending", &s->shared, &s->nshared);
}

static bool act_is_default(const struct k_sigaction *a)
{
	return !a->handler && !a->flags && !a->mask && !a->restorer;
}

/* One batch: the handlers (structs in the batch's data) and the timers. */
int signals_restore(struct remote *r, pid_t tid, const struct signals_rec *s)
{
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	rbatch_begin(b, r, tid);
	for (int sig = 1; sig <= NSIG_K; sig++)
		if (!act_is_default(&s->act[sig]))
			rbatch_call(b, (uint32_t)sig, 0, SYS_rt_sigaction, sig,
				    rbatch_data(b, &s->act[sig], sizeof(s->act[sig])), 0, 8);
	for (int w = 0; w < 3; w++)
		if (s->itimer[w].it_value.tv_sec || s->itimer[w].it_value.tv_usec)
			rbatch_call(b, 1000u + (uint32_t)w, 0, SYS_setitimer, w,
				    rbatch_data(b, &s->itimer[w], sizeof(s->itimer[w])), 0);
	int e = rbatch_run(b);
	if (e < 0 && b->failed == RBATCH_NONE)
		return log_error_errno(e, "pid %d: cannot restore signal handlers: %m", r->pid);
	if (e < 0 && b->calls[b->failed].tag >= 1000)
		return log_error_errno(e, "pid %d: cannot restore interval timer %u: %m", r->pid,
				       b->calls[b->failed].tag - 1000);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot restore handler of signal %u: %m", r->pid,
				       b->calls[b->failed].tag);
	return 0;
}

int signals_restore_trap(struct remote *r, pid_t pid, const struct signals_rec *s)
{
	const struct k_sigaction *a = &s->act[SIGTRAP];
	if (act_is_default(a))
		return 0; /* what the reset leaves */
	int e = remote_write(r, r->scratch + 8192, a, sizeof(*a));
	long ret = e < 0 ? e : remote_syscall(r, pid, SYS_rt_sigaction, SIGTRAP, r->scratch + 8192, 0, 8);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot restore handler of signal %d: %m", r->pid, SIGTRAP);
	return 0;
}

int signals_restore_pending(struct remote *r, pid_t pid, const struct signals_rec *s)
{
	uint64_t buf = r->scratch + 8192;
	for (size_t i = 0; i < s->nshared; i++) {
		int e = remote_write(r, buf, &s->shared[i], sizeof(siginfo_t));
		if (e < 0)
			return e;
		long ret = remote_syscall(r, pid, SYS_rt_sigqueueinfo, pid, s->shared[i].si_signo, buf);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot queue signal %d: %m", pid, s->shared[i].si_signo);
	}
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POSIX timers. /proc/PID/timers names each timer's id, signal and value,
 * notification and clock; the remaining time and interval come from
 * timer_gettime run inside the frozen process. Restore turns on
 * PR_TIMER_CREATE_RESTORE_IDS (kernel 6.15+), under which timer_create
 * takes the wanted id from *timer_id, creates each timer with its old
 * sigevent and arms it with the remaining time, relative to now. Without
 * the prctl the ids must come out right by themselves (they are handed out
 * in ascending order from 0 in a new process), or the restore fails.
 * The overrun count is saved for inspection only: nothing can set it. */
#include "engine/timers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "engine/proc.h"
#include "image/json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* The kernel's struct sigevent on x86-64 (64 bytes). */
struct k_sigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};

struct k_itimerspec {
	int64_t interval_sec, interval_nsec, value_sec, value_nsec;
};

void timers_rec_free(struct timers_rec *t)
{
	if (!t)
		return;
	free(t->t);
	t->t = NULL;
	t->n = 0;
}

static int cmp_id(const void *a, const void *b)
{
	int x = ((const struct posix_timer_rec *)a)->id, y = ((const struct posix_timer_rec *)b)->id;
	return (x > y) - (x < y);
}

static int notify_from(const char *how, const char *who, int *ret)
{
	int n;
	if (streq(how, "signal"))
		n = SIGEV_SIGNAL;
	else if (streq(how, "none"))
		n = SIGEV_NONE;
	else if (streq(how, "thread"))
		n = SIGEV_THREAD;
	else
		return -EBADMSG;
	if (streq(who, "tid"))
		n |= SIGEV_THREAD_ID;
	else if (!streq(who, "pid"))
		return -EBADMSG;
	*ret = n;
	return 0;
}

/* One timer is four lines: "ID: N", "signal: SIG/VALUE", "notify:
 * HOW/pid.N" (or tid.N), "ClockID: N". */
int timers_parse(const char *buf, size_t len, struct timers_rec *ret)
{
	struct timers_rec t = { 0 };
	size_t pos = 0, cap = 0;
	int seen = 15, r = 0;
	char line[256];

	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		struct posix_timer_rec *c = t.n ? &t.t[t.n - 1] : NULL;
		char how[16], who[8];
		unsigned long long v;
		int id, a;
		if (sscanf(line, "ID: %d", &id) == 1) {
			if (seen != 15 || id < 0 || t.n >= MAX_POSIX_TIMERS) {
				r = -EBADMSG;
				break;
			}
			if (t.n == cap) {
				cap = cap ? cap * 2 : 8;
				struct posix_timer_rec *n = realloc(t.t, cap * sizeof(*n));
				if (!n) {
					r = -ENOMEM;
					break;
				}
				t.t = n;
			}
			t.t[t.n++] = (struct posix_timer_rec){ .id = id };
			seen = 1;
		} else if (c && sscanf(line, "signal: %d/%llx", &a, &v) == 2) {
			c->signo = a, c->sigval = v, seen |= 2;
		} else if (c && sscanf(line, "notify: %15[a-z]/%7[a-z].%d", how, who, &a) == 3) {
			if (notify_from(how, who, &c->notify) < 0) {
				r = -EBADMSG;
				break;
			}
			c->tid = (c->notify & SIGEV_THREAD_ID) ? a : 0;
			seen |= 4;
		} else if (c && sscanf(line, "ClockID: %d", &a) == 1) {
			c->clockid = a, seen |= 8;
		}
	}
	if (!r && seen != 15)
		r = -EBADMSG;
	if (r < 0) {
		free(t.t);
		return r;
	}
	if (t.n)
		qsort(t.t, t.n, sizeof(*t.t), cmp_id);
	for (size_t i = 1; i < t.n; i++)
		if (t.t[i].id == t.t[i - 1].id) {
			free(t.t);
			return -EBADMSG;
		}
	*ret = t;
	return 0;
}

int timers_collect(int procfd, pid_t pid, struct timers_rec *t)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = proc_read(procfd, "timers", &buf, &len);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot read its POSIX timers (/proc/%d/timers): %m", pid, pid);
	r = timers_parse(buf, len, t);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot parse /proc/%d/timers: %m", pid, pid);
	return 0;
}

static uint64_t ts_ns(int64_t sec, int64_t nsec)
{
	return sec < 0 || nsec < 0 ? 0 : (uint64_t)sec * 1000000000ULL + (uint64_t)nsec;
}

int timers_dump_remote(struct remote *r, pid_t pid, struct timers_rec *t)
{
	uint64_t buf = r->scratch + 8192;
	for (size_t i = 0; i < t->n; i++) {
		struct posix_timer_rec *p = &t->t[i];
		struct k_itimerspec its;
		long ret = remote_syscall(r, pid, SYS_timer_gettime, p->id, buf);
		int e = ret < 0 ? (int)ret : remote_read(r, buf, &its, sizeof(its));
		if (e < 0)
			return log_error_errno(e, "pid %d: cannot read POSIX timer %d: %m", pid, p->id);
		p->value_ns = ts_ns(its.value_sec, its.value_nsec);
		p->interval_ns = ts_ns(its.interval_sec, its.interval_nsec);
		ret = remote_syscall(r, pid, SYS_timer_getoverrun, p->id);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot read overrun of POSIX timer %d: %m", pid, p->id);
		p->overrun = (int)ret;
	}
	return 0;
}

void timers_to_json(const struct timers_rec *t, struct json_builder *core)
{
	json_t *a = jb_array(core, "posix_timers");
	for (size_t i = 0; a && i < t->n; i++) {
		const struct posix_timer_rec *p = &t->t[i];
		struct json_builder o;
		jb_begin(&o);
		jb_int(&o, "id", p->id);
		jb_int(&o, "clock", p->clockid);
		jb_int(&o, "notify", p->notify);
		jb_int(&o, "signo", p->signo);
		jb_x64(&o, "sigval", p->sigval);
		jb_int(&o, "tid", p->tid);
		jb_u64(&o, "value_ns", p->value_ns);
		jb_u64(&o, "interval_ns", p->interval_ns);
		jb_int(&o, "overrun", p->overrun);
		jb_append_obj(core, a, &o);
	}
}

static int timer_from_json(const json_t *o, struct posix_timer_rec *p)
{
	int r, n, tid;
	if ((r = json_get_int(o, "id", &p->id)) < 0 || (r = json_get_int(o, "clock", &p->clockid)) < 0 ||
	    (r = json_get_int(o, "notify", &n)) < 0 || (r = json_get_int(o, "signo", &p->signo)) < 0 ||
	    (r = json_get_x64(o, "sigval", &p->sigval)) < 0 || (r = json_get_int(o, "tid", &tid)) < 0 ||
	    (r = json_get_u64(o, "value_ns", &p->value_ns)) < 0 ||
	    (r = json_get_u64(o, "interval_ns", &p->interval_ns)) < 0 || (r = json_get_int(o, "overrun", &p->overrun)) < 0)
		return r;
	int how = n & ~SIGEV_THREAD_ID;
	if (p->id < 0 || (how != SIGEV_SIGNAL && how != SIGEV_NONE && how != SIGEV_THREAD) || p->signo < 0 ||
	    p->signo > 64 || ((n & SIGEV_THREAD_ID) ? tid <= 0 : tid != 0) ||
	    p->value_ns > (uint64_t)INT32_MAX * 1000000000ULL || p->interval_ns > (uint64_t)INT32_MAX * 1000000000ULL)
		return -EBADMSG;
	p->notify = n;
	p->tid = tid;
	return 0;
}

int timers_from_json(const json_t *core, struct timers_rec *t)
{
	json_t *a;
	int r;
	memset(t, 0, sizeof(*t));
	if (!json_object_get(core, "posix_timers"))
		return 0; /* written before timers were saved: none */
	if ((r = json_get_array(core, "posix_timers", MAX_POSIX_TIMERS, &a)) < 0)
		return r;
	size_t n = json_array_size(a);
	t->t = calloc(n ? n : 1, sizeof(*t->t));
	if (!t->t)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		t->n = i + 1;
		if ((r = timer_from_json(json_array_get(a, i), &t->t[i])) < 0)
			return r;
		if (i && t->t[i].id <= t->t[i - 1].id)
			return -EBADMSG;
	}
	return 0;
}

static int create_one(struct remote *r, pid_t pid, const struct posix_timer_rec *p)
{
	uint64_t sev_at = r->scratch + 8192, id_at = sev_at + 128, its_at = sev_at + 192;
	struct k_sigevent sev = { .value = p->sigval, .signo = p->signo, .notify = p->notify, .tid = p->tid };
	int32_t id = p->id;
	int e;
	if ((e = remote_write(r, sev_at, &sev, sizeof(sev))) < 0 || (e = remote_write(r, id_at, &id, sizeof(id))) < 0)
		return e;
	long ret = remote_syscall(r, pid, SYS_timer_create, p->clockid, sev_at, id_at);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot create POSIX timer %d (clock %d%s): %m", pid, p->id,
				       p->clockid, ret == -EBUSY ? ", id in use" : "");
	if ((e = remote_read(r, id_at, &id, sizeof(id))) < 0)
		return e;
	if (id != p->id)
		return log_error_errno(-EOPNOTSUPP, "pid %d: POSIX timer %d came back as id %d: this kernel cannot "
				       "choose timer ids (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15+)", pid, p->id, id);
	uint64_t v = p->value_ns;
	if (!v && p->interval_ns)
		v = 1; /* expired, its signal pending: the next period starts now */
	if (!v)
		return 0;
	struct k_itimerspec its = { .interval_sec = (int64_t)(p->interval_ns / 1000000000ULL),
				    .interval_nsec = (int64_t)(p->interval_ns % 1000000000ULL),
				    .value_sec = (int64_t)(v / 1000000000ULL), .value_nsec = (int64_t)(v % 1000000000ULL) };
	if ((e = remote_write(r, its_at, &its, sizeof(its))) < 0)
		return e;
	ret = remote_syscall(r, pid, SYS_timer_settime, p->id, 0, its_at, 0);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot arm POSIX timer %d: %m", pid, p->id);
	return 0;
}

int timers_restore(struct remote *r, pid_t pid, const struct timers_rec *t)
{
	if (!t->n)
		return 0;
	long on = remote_syscall(r, pid, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0);
	if (on < 0 && on != -EINVAL)
		return log_error_errno((int)on, "pid %d: cannot turn on PR_TIMER_CREATE_RESTORE_IDS: %m", pid);
	if (on < 0)
		log_debug("pid %d: no PR_TIMER_CREATE_RESTORE_IDS; relying on sequential timer ids", pid);
	int e = 0;
	for (size_t i = 0; i < t->n && e >= 0; i++)
		e = create_one(r, pid, &t->t[i]);
	if (on >= 0) {
		long off = remote_syscall(r, pid, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF,
					  0, 0, 0);
		if (off < 0 && e >= 0)
			e = log_error_errno((int)off, "pid %d: cannot turn off PR_TIMER_CREATE_RESTORE_IDS: %m", pid);
	}
	return e < 0 ? e : 0;
}

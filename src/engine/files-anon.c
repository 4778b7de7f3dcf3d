/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Anonymous-inode fds whose whole state fdinfo shows: eventfd (counter,
 * semaphore mode), signalfd (mask), timerfd (clock, remaining time,
 * interval, unread expirations). Restore creates them anew inside the
 * process with the same state. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>

#include "engine/files.h"
#include "engine/proc.h"
#include "engine/rec.h"
#include "util/log.h"
#include "util/util.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

bool anon_kind(const char *link, enum fd_kind *ret)
{
	static const struct {
		const char *link;
		enum fd_kind kind;
	} map[] = {
		{ "anon_inode:[eventfd]", FD_EVENTFD },
		{ "anon_inode:[signalfd]", FD_SIGNALFD },
		{ "anon_inode:[timerfd]", FD_TIMERFD },
		{ "anon_inode:[eventpoll]", FD_EPOLL },
		{ "anon_inode:inotify", FD_INOTIFY },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (streq(link, map[i].link)) {
			*ret = map[i].kind;
			return true;
		}
	return false;
}

int anon_parse_fdinfo(const char *buf, size_t len, enum fd_kind kind, struct fd_anon *ret)
{
	struct fd_anon a = { 0 };
	int seen = 0;
	size_t pos = 0;
	unsigned long long x, y;

	char line[128];

	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		if (sscanf(line, "eventfd-count: %llx", &x) == 1)
			a.count = x, seen |= 1;
		else if (sscanf(line, "eventfd-semaphore: %llu", &x) == 1)
			a.semaphore = x;
		else if (sscanf(line, "sigmask: %llx", &x) == 1)
			a.sigmask = x, seen |= 1;
		else if (sscanf(line, "clockid: %llu", &x) == 1)
			a.clockid = x, seen |= 1;
		else if (sscanf(line, "ticks: %llu", &x) == 1)
			a.ticks = x, seen |= 2;
		else if (sscanf(line, "it_value: (%llu, %llu)", &x, &y) == 2)
			a.value_ns = x * 1000000000ULL + y, seen |= 4;
		else if (sscanf(line, "it_interval: (%llu, %llu)", &x, &y) == 2)
			a.interval_ns = x * 1000000000ULL + y, seen |= 8;
	}
	if (seen != (kind == FD_TIMERFD ? 15 : 1))
		return -EBADMSG;
	*ret = a;
	return 0;
}

static long create(struct remote *r, pid_t tid, const struct fd_rec *o, uint64_t buf)
{
	bool nonblock = o->flags & O_NONBLOCK;
	switch (o->kind) {
	case FD_EVENTFD:
		return remote_syscall(r, tid, SYS_eventfd2, 0,
				      (nonblock ? EFD_NONBLOCK : 0) | (o->anon.semaphore ? EFD_SEMAPHORE : 0));
	case FD_SIGNALFD: {
		int e = remote_write(r, buf, &o->anon.sigmask, sizeof(o->anon.sigmask));
		return e < 0 ? e : remote_syscall(r, tid, SYS_signalfd4, -1, buf, 8, nonblock ? O_NONBLOCK : 0);
	}
	case FD_EPOLL:
		return remote_syscall(r, tid, SYS_epoll_create1, 0);
	default:
		return remote_syscall(r, tid, SYS_timerfd_create, o->anon.clockid, nonblock ? O_NONBLOCK : 0);
	}
}

static int set_state(struct remote *r, pid_t tid, const struct fd_rec *o, long fd, uint64_t buf)
{
	long ret = 0;
	int e;
	if (o->kind == FD_EVENTFD && o->anon.count) {
		/* eventfd2()'s initial value is 32-bit; the counter is not. */
		if ((e = remote_write(r, buf, &o->anon.count, 8)) < 0)
			return e;
		ret = remote_syscall(r, tid, SYS_write, fd, buf, 8);
	} else if (o->kind == FD_TIMERFD) {
		struct itimerspec its = {
			.it_value = { (time_t)(o->anon.value_ns / 1000000000), (long)(o->anon.value_ns % 1000000000) },
			.it_interval = { (time_t)(o->anon.interval_ns / 1000000000), (long)(o->anon.interval_ns % 1000000000) },
		};
		if (o->anon.value_ns) {
			if ((e = remote_write(r, buf, &its, sizeof(its))) < 0)
				return e;
			ret = remote_syscall(r, tid, SYS_timerfd_settime, fd, 0, buf, 0);
		}
		if (ret >= 0 && o->anon.ticks) {
			if ((e = remote_write(r, buf, &o->anon.ticks, 8)) < 0)
				return e;
			ret = remote_syscall(r, tid, SYS_ioctl, fd, TFD_IOC_SET_TICKS, buf);
		}
	}
	return ret < 0 ? (int)ret : 0;
}

long anon_restore(struct remote *r, pid_t tid, const struct fd_rec *o)
{
	uint64_t buf = r->scratch + 8192;
	long fd = create(r, tid, o, buf);
	if (fd < 0)
		return fd;
	int e = set_state(r, tid, o, fd, buf);
	if (e < 0) {
		remote_syscall(r, tid, SYS_close, fd);
		return log_error_errno(e, "pid %d: cannot restore the state of fd %d (%s): %m", r->pid, o->fd, o->path);
	}
	return fd;
}

/* --- epoll --- */

int epoll_parse_fdinfo(const char *buf, size_t len, struct fd_rec *o)
{
	size_t pos = 0, cap = 0;
	char line[256];

	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		int tfd;
		unsigned int ev;
		unsigned long long data;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &ev, &data) != 3)
			continue;
		if (o->ntgts == cap) {
			cap = cap ? cap * 2 : 8;
			if (cap > MAX_EPOLL_TARGETS)
				return -E2BIG;
			struct epoll_target *n = realloc(o->tgts, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			o->tgts = n;
		}
		o->tgts[o->ntgts++] = (struct epoll_target){ tfd, ev, data };
	}
	return 0;
}

/* A watched file is found again by the fd number it was added with: that
 * fd must still be open (and be what was added) for the restore to work. */
int epoll_check(pid_t pid, const struct files_rec *f, const struct fd_rec *o)
{
	for (size_t i = 0; i < o->ntgts; i++) {
		bool found = false;
		for (size_t k = 0; k < f->n && !found; k++)
			found = f->fds[k].fd == o->tgts[i].tfd;
		struct kcmp_epoll_slot slot = { (uint32_t)o->fd, (uint32_t)o->tgts[i].tfd, 0 };
		if (!found || syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, o->tgts[i].tfd, &slot) != 0) {
			log_error("pid %d: epoll fd %d watches fd %d, which is no longer open (or now another "
				  "file); this cannot be checkpointed yet", pid, o->fd, o->tgts[i].tfd);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

int epoll_to_json(const struct fd_rec *o, json_t *j)
{
	json_t *a = json_array();
	int r = 0;
	for (size_t i = 0; a && i < o->ntgts; i++) {
		json_t *t = json_object();
		r |= json_object_set_new(t, "tfd", json_integer(o->tgts[i].tfd));
		r |= json_object_set_new(t, "events", json_integer(o->tgts[i].events));
		r |= json_set_x64(t, "data", o->tgts[i].data);
		r |= json_array_append_new(a, t);
	}
	r |= json_object_set_new(j, "targets", a);
	return r ? -ENOMEM : 0;
}

int epoll_from_json(const json_t *j, struct fd_rec *o)
{
	json_t *a;
	int r = json_get_array(j, "targets", MAX_EPOLL_TARGETS, &a);
	if (r < 0)
		return r;
	size_t n = json_array_size(a);
	o->tgts = calloc(n ? n : 1, sizeof(*o->tgts));
	if (!o->tgts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *t = json_array_get(a, i);
		int64_t ev;
		if ((r = json_get_int(t, "tfd", &o->tgts[i].tfd)) < 0 || (r = json_get_i64(t, "events", &ev)) < 0 ||
		    (r = json_get_x64(t, "data", &o->tgts[i].data)) < 0)
			return r;
		if (o->tgts[i].tfd < 0 || o->tgts[i].tfd >= MAX_FDS || ev < 0 || ev > UINT32_MAX)
			return -EBADMSG;
		o->tgts[i].events = (uint32_t)ev;
		o->ntgts = i + 1;
	}
	return 0;
}

int epoll_restore_targets(struct remote *r, pid_t tid, const struct fd_rec *o)
{
	uint64_t buf = r->scratch + 8192;
	for (size_t i = 0; i < o->ntgts; i++) {
		struct epoll_event ev = { .events = o->tgts[i].events, .data.u64 = o->tgts[i].data };
		int e = remote_write(r, buf, &ev, sizeof(ev));
		if (e < 0)
			return e;
		long ret = remote_syscall(r, tid, SYS_epoll_ctl, o->fd, EPOLL_CTL_ADD, o->tgts[i].tfd, buf);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: epoll fd %d: cannot watch fd %d again: %m", r->pid,
					       o->fd, o->tgts[i].tfd);
	}
	return 0;
}

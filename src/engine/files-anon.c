/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Anonymous-inode fds whose whole state fdinfo shows: eventfd (counter,
 * semaphore mode), signalfd (mask), timerfd (clock, remaining time,
 * interval, unread expirations). Restore creates them anew inside the
 * process with the same state. */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>

#include "engine/files.h"
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

	while (pos < len) {
		const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - s) : len - pos;
		char line[128];
		pos += l + 1;
		if (l >= sizeof(line))
			continue;
		memcpy(line, s, l);
		line[l] = 0;
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

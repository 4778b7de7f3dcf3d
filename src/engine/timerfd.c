/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* timerfd: fdinfo shows its whole state (clock, remaining time, interval,
 * expirations not yet read); restore creates a new one inside the task,
 * arms it with the remaining time and sets the expirations back. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "engine/files.h"
#include "engine/proc.h"
#include "util/log.h"
#include "util/util.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static bool timerfd_match(const struct fd_probe *p)
{
	return streq(p->link, "anon_inode:[timerfd]");
}

static int parse(const char *buf, size_t len, struct fd_anon *a)
{
	size_t pos = 0;
	unsigned long long x, y;
	char line[128];
	int seen = 0;
	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		if (sscanf(line, "clockid: %llu", &x) == 1)
			a->clockid = x, seen |= 1;
		else if (sscanf(line, "ticks: %llu", &x) == 1)
			a->ticks = x, seen |= 2;
		else if (sscanf(line, "it_value: (%llu, %llu)", &x, &y) == 2)
			a->value_ns = x * 1000000000ULL + y, seen |= 4;
		else if (sscanf(line, "it_interval: (%llu, %llu)", &x, &y) == 2)
			a->interval_ns = x * 1000000000ULL + y, seen |= 8;
	}
	return seen == 15 ? 0 : -EBADMSG;
}

static int timerfd_collect(const struct fd_probe *p, struct fd_rec *o)
{
	return fd_anon_collect(p, o, parse);
}

static long set_state(const struct fd_restore *x, const struct fd_anon *a, long fd)
{
	uint64_t buf = x->r->scratch + 8192;
	long ret = 0;
	struct itimerspec its = {
		.it_value = { (time_t)(a->value_ns / 1000000000), (long)(a->value_ns % 1000000000) },
		.it_interval = { (time_t)(a->interval_ns / 1000000000), (long)(a->interval_ns % 1000000000) },
	};
	if (a->value_ns && (ret = remote_write(x->r, buf, &its, sizeof(its))) >= 0)
		ret = remote_syscall(x->r, x->tid, SYS_timerfd_settime, fd, 0, buf, 0);
	if (ret >= 0 && a->ticks && (ret = remote_write(x->r, buf, &a->ticks, 8)) >= 0)
		ret = remote_syscall(x->r, x->tid, SYS_ioctl, fd, TFD_IOC_SET_TICKS, buf);
	return ret;
}

static long timerfd_open(const struct fd_restore *x, const struct fd_rec *o)
{
	const struct fd_anon *a = o->state;
	long fd = remote_syscall(x->r, x->tid, SYS_timerfd_create, a->clockid, (o->flags & O_NONBLOCK) ? O_NONBLOCK : 0);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", x->r->pid, o->fd, o->path);
	long ret = set_state(x, a, fd);
	return ret < 0 ? fd_state_failed(x, o, fd, (int)ret) : fd;
}

const struct fd_ops fd_timerfd_ops = {
	.name = "timerfd",
	.match = timerfd_match,
	.collect = timerfd_collect,
	.to_json = fd_anon_state_to_json,
	.from_json = fd_anon_state_from_json,
	.open = timerfd_open,
};

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* eventfd: fdinfo shows its whole state (the counter and the semaphore
 * mode); restore creates a new one inside the task and writes the counter
 * back. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include "engine/files.h"
#include "engine/proc.h"
#include "util/log.h"
#include "util/util.h"

static bool eventfd_match(const struct fd_probe *p)
{
	return streq(p->link, "anon_inode:[eventfd]");
}

static int parse(const char *buf, size_t len, struct fd_anon *a)
{
	size_t pos = 0;
	unsigned long long x;
	char line[128];
	bool seen = false;
	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		if (sscanf(line, "eventfd-count: %llx", &x) == 1)
			a->count = x, seen = true;
		else if (sscanf(line, "eventfd-semaphore: %llu", &x) == 1)
			a->semaphore = x;
	}
	return seen ? 0 : -EBADMSG;
}

static int eventfd_collect(const struct fd_probe *p, struct fd_rec *o)
{
	return fd_anon_collect(p, o, parse);
}

static long eventfd_open(const struct fd_restore *x, const struct fd_rec *o)
{
	const struct fd_anon *a = o->state;
	uint64_t buf = x->r->scratch + 8192;
	int flags = ((o->flags & O_NONBLOCK) ? EFD_NONBLOCK : 0) | (a->semaphore ? EFD_SEMAPHORE : 0);
	long fd = remote_syscall(x->r, x->tid, SYS_eventfd2, 0, flags);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", x->r->pid, o->fd, o->path);
	if (!a->count)
		return fd;
	/* eventfd2()'s initial value is 32-bit; the counter is not. */
	long ret = remote_write(x->r, buf, &a->count, 8);
	if (ret >= 0)
		ret = remote_syscall(x->r, x->tid, SYS_write, fd, buf, 8);
	return ret < 0 ? fd_state_failed(x, o, fd, (int)ret) : fd;
}

const struct fd_ops fd_eventfd_ops = {
	.name = "eventfd",
	.match = eventfd_match,
	.collect = eventfd_collect,
	.to_json = fd_anon_state_to_json,
	.from_json = fd_anon_state_from_json,
	.open = eventfd_open,
};

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* signalfd: fdinfo shows its whole state (the signal mask); restore
 * creates a new one inside the task with the same mask. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "engine/files.h"
#include "engine/proc.h"
#include "util/log.h"
#include "util/util.h"

static bool signalfd_match(const struct fd_probe *p)
{
	return streq(p->link, "anon_inode:[signalfd]");
}

static int parse(const char *buf, size_t len, struct fd_anon *a)
{
	size_t pos = 0;
	unsigned long long x;
	char line[128];
	while (proc_next_line(buf, len, &pos, line, sizeof(line)))
		if (sscanf(line, "sigmask: %llx", &x) == 1) {
			a->sigmask = x;
			return 0;
		}
	return -EBADMSG;
}

static int signalfd_collect(const struct fd_probe *p, struct fd_rec *o)
{
	return fd_anon_collect(p, o, parse);
}

static long signalfd_open(const struct fd_restore *x, const struct fd_rec *o)
{
	const struct fd_anon *a = o->state;
	uint64_t buf = x->r->scratch + 8192;
	long fd = remote_write(x->r, buf, &a->sigmask, sizeof(a->sigmask));
	if (fd >= 0)
		fd = remote_syscall(x->r, x->tid, SYS_signalfd4, -1, buf, 8, (o->flags & O_NONBLOCK) ? O_NONBLOCK : 0);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", x->r->pid, o->fd, o->path);
	return fd;
}

const struct fd_ops fd_signalfd_ops = {
	.name = "signalfd",
	.match = signalfd_match,
	.collect = signalfd_collect,
	.to_json = fd_anon_state_to_json,
	.from_json = fd_anon_state_from_json,
	.open = signalfd_open,
};

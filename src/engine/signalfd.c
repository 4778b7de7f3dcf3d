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
	int r = fd_state_alloc(o, sizeof(struct fd_anon));
	if (r < 0)
		return r;
	if ((r = parse(p->fdinfo, p->fdinfo_len, o->state)) < 0)
		return log_error_errno(r, "pid %d: cannot parse the state of fd %d (%s): %m", p->pid, p->fd, p->link);
	return 0;
}

static void signalfd_to_json(const struct fd_rec *o, struct json_builder *b)
{
	fd_anon_to_json(b, o->state);
}

static int signalfd_from_json(const json_t *j, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct fd_anon));
	return r < 0 ? r : fd_anon_from_json(j, o->state);
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
	.to_json = signalfd_to_json,
	.from_json = signalfd_from_json,
	.open = signalfd_open,
};

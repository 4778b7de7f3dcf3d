/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* O_PATH fds: a place in the file tree, not an open file (no offset, no
 * I/O). Whatever the inode is (a file, a directory, a device, a socket's
 * path, a symlink itself with O_NOFOLLOW), it comes back as a new O_PATH
 * open of the same path with the same flags, inside the task. Tried
 * before every other kind: the flags, not the inode, make it one. An
 * O_PATH fd of something without a path (a pipe, a deleted file) is
 * refused, naming it. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "engine/files.h"
#include "util/log.h"
#include "util/util.h"

/* What an O_PATH open keeps (the kernel drops the rest). */
#define PATH_FLAGS (O_PATH | O_NOFOLLOW | O_DIRECTORY)

static bool deleted(const char *link)
{
	size_t l = strlen(link);
	return l > 10 && streq(link + l - 10, " (deleted)");
}

static bool path_match(const struct fd_probe *p)
{
	return (p->open_flags & O_PATH) != 0;
}

static int path_collect(const struct fd_probe *p, struct fd_rec *o)
{
	if (p->link[0] != '/' || deleted(p->link))
		return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is an O_PATH fd of %s, which has no path to "
				       "open again; it cannot be checkpointed", p->pid, p->fd, p->link);
	return 0;
}

static int path_from_json(const json_t *j, struct fd_rec *o)
{
	return o->path[0] == '/' && (o->flags & O_PATH) ? 0 : -EBADMSG;
}

static long path_open(const struct fd_restore *x, const struct fd_rec *o)
{
	long fd = remote_open(x->r, x->tid, o->path, (int)(o->flags & PATH_FLAGS), 0);
	if (fd < 0)
		log_error_errno((int)fd, "pid %d: cannot open again fd %d (O_PATH of %s): %m", x->r->pid, o->fd,
				o->path);
	return fd;
}

const struct fd_ops fd_path_ops = {
	.name = "path",
	.match = path_match,
	.collect = path_collect,
	.from_json = path_from_json,
	.open = path_open,
};

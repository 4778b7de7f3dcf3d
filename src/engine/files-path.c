/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* O_PATH fds: a place in the file tree, not an open file (no offset, no
 * I/O). Whatever the inode is (a file, a directory, a device, a socket's
 * path, a symlink itself with O_NOFOLLOW), it comes back as a new O_PATH
 * open of the same path with the same flags, inside the task. Tried
 * before every other kind: the flags, not the inode, make it one. An
 * O_PATH fd of a deleted file or removed directory that another fd of
 * the tree holds is an O_PATH open of the object restore makes for that
 * fd; one of something else without a path (a pipe, a deleted file
 * nobody else holds) is refused, naming it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "engine/deleted.h"
#include "engine/files.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* What an O_PATH open keeps (the kernel drops the rest). */
#define PATH_FLAGS (O_PATH | O_NOFOLLOW | O_DIRECTORY)

/* Kept only for a deleted file or removed directory: the inode at dump,
 * which another fd of the tree must hold (deleted.h). */
struct path_state {
	uint64_t dev, ino;
};

extern const struct fd_ops fd_path_ops;

static bool path_match(const struct fd_probe *p)
{
	return (p->open_flags & O_PATH) != 0;
}

static int path_collect(const struct fd_probe *p, struct fd_rec *o)
{
	if (p->link[0] != '/' || (path_deleted(p->link) && !p->st))
		return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is an O_PATH fd of %s, which has no path to "
				       "open again; it cannot be checkpointed", p->pid, p->fd, p->link);
	if (!path_deleted(p->link))
		return 0;
	int r = fd_state_alloc(o, sizeof(struct path_state));
	if (r >= 0)
		*(struct path_state *)o->state = (struct path_state){ (uint64_t)p->st->st_dev, (uint64_t)p->st->st_ino };
	return r;
}

/* An O_PATH fd of a deleted file or removed directory comes back when
 * another fd of the tree holds it open (that fd's object is made again). */
static int path_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			const struct path_state *s = o->ops == &fd_path_ops ? o->state : NULL;
			if (s && !deleted_object_held(v, n, s->dev, s->ino))
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is an O_PATH fd of %s, which no "
						       "other fd of the tree holds open, so it cannot be made again; "
						       "it cannot be checkpointed", v[i].pid, o->fd, o->path);
		}
	return 0;
}

static void path_to_json(const struct fd_rec *o, struct json_builder *b)
{
	const struct path_state *s = o->state;
	if (s) {
		jb_u64(b, "deleted_dev", s->dev);
		jb_u64(b, "deleted_ino", s->ino);
	}
}

static int path_from_json(const json_t *j, struct fd_rec *o)
{
	if (o->path[0] != '/' || !(o->flags & O_PATH))
		return -EBADMSG;
	if (!json_object_get(j, "deleted_ino"))
		return 0;
	int r = fd_state_alloc(o, sizeof(struct path_state));
	struct path_state *s = o->state;
	if (r < 0 || (r = json_get_u64(j, "deleted_dev", &s->dev)) < 0 || (r = json_get_u64(j, "deleted_ino", &s->ino)) < 0)
		return r;
	return path_deleted(o->path) ? 0 : -EBADMSG;
}

/* An O_PATH open of the object made for the fd that holds it. */
static long open_deleted(const struct fd_restore *x, const struct fd_rec *o, const struct path_state *s)
{
	char p[64];
	int ours = deleted_object_get(x->c, s->dev, s->ino);
	if (ours < 0)
		return log_error_errno(ours, "pid %d: cannot make the object of O_PATH fd %d (%s) again: %m",
				       x->r->pid, o->fd, o->path);
	snprintf(p, sizeof(p), "/proc/self/fd/%d", ours);
	/* Through the magic link: O_NOFOLLOW would open the link itself. */
	_cleanup_close_ int fd = open(p, (int)(o->flags & (O_PATH | O_DIRECTORY)) | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "pid %d: cannot open again fd %d (O_PATH of %s): %m", x->r->pid,
				       o->fd, o->path);
	return fd_push(x, o, fd);
}

static long path_open(const struct fd_restore *x, const struct fd_rec *o)
{
	if (o->state)
		return open_deleted(x, o, o->state);
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
	.link = path_link,
	.to_json = path_to_json,
	.from_json = path_from_json,
	.open = path_open,
};

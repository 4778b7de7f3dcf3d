/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Regular files, directories and harmless character devices: reopened
 * by path inside the task, with their flags and offset.
 *
 * A regular file deleted while open (or a memfd, which /proc shows the
 * same way) cannot be reopened by path: it is a shared memory object
 * (shmem.c), its content saved once per image; restore makes the object
 * once, and each description is a new open of it in the restorer, passed
 * into the task. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/shmem.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* Kept only for a deleted file: a plain one has no state. */
struct reg_state {
	struct shobj obj; /* the object and its saved content */
};

static const char *const safe_chr[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };

static bool deleted(const char *link)
{
	size_t l = strlen(link);
	return l > 10 && streq(link + l - 10, " (deleted)");
}

static bool reg_match(const struct fd_probe *p)
{
	return p->st && S_ISREG(p->st->st_mode) && p->link[0] == '/';
}

static bool dir_match(const struct fd_probe *p)
{
	return p->st && S_ISDIR(p->st->st_mode) && p->link[0] == '/';
}

static bool chr_match(const struct fd_probe *p)
{
	for (size_t i = 0; p->st && S_ISCHR(p->st->st_mode) && i < ARRAY_SIZE(safe_chr); i++)
		if (streq(p->link, safe_chr[i]))
			return true;
	return false;
}

static int reg_collect(const struct fd_probe *p, struct fd_rec *o)
{
	return deleted(p->link) ? fd_state_alloc(o, sizeof(struct reg_state)) : 0;
}

/* The content of a deleted file, once per description (dups share it). */
static int reg_dump_data(struct fd_dump *d, struct fd_rec *o)
{
	struct reg_state *s = o->state;
	char p[64];
	int r = 0;
	if (!s || o->dup_of >= 0)
		return 0;
	snprintf(p, sizeof(p), "fd/%d", o->fd);
	_cleanup_close_ int fd = openat(d->procfd, p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (r = shobj_stat(fd, &s->obj)) < 0 || (r = shobj_save(d->img, fd, &s->obj)) < 0)
		return log_error_errno(fd < 0 ? -errno : r, "pid %d: cannot save deleted file of fd %d: %m", d->pid,
				       o->fd);
	return 0;
}

static void reg_to_json(const struct fd_rec *o, struct json_builder *b)
{
	const struct reg_state *s = o->state;
	if (s)
		shobj_to_jb(b, &s->obj);
}

static int path_from_json(const json_t *j, struct fd_rec *o)
{
	return o->path[0] == '/' ? 0 : -EBADMSG;
}

static int reg_from_json(const json_t *j, struct fd_rec *o)
{
	int r;
	if (o->path[0] != '/')
		return -EBADMSG;
	if (!json_object_get(j, "obj"))
		return 0;
	if ((r = fd_state_alloc(o, sizeof(struct reg_state))) < 0)
		return r;
	return shobj_from_json(j, &((struct reg_state *)o->state)->obj);
}

/* --- restore --- */

static long path_open(const struct fd_restore *x, const struct fd_rec *o)
{
	int flags = (int)(o->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC));
	long fd = remote_open(x->r, x->tid, o->path, flags, 0);
	if (fd < 0)
		log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", x->r->pid, o->fd, o->path);
	return fd;
}

/* A new open file description of the object the restorer made (the
 * same one its mappings use). */
static long open_deleted(const struct fd_restore *x, const struct fd_rec *o, const struct reg_state *s)
{
	char p[64];
	int obj = shobj_get(x->c, o->path, &s->obj);
	if (obj < 0)
		return obj;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", obj);
	int flags = (int)(o->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_CLOEXEC;
	_cleanup_close_ int fd = open(p, flags);
	if (fd < 0)
		return log_error_errno(-errno, "pid %d: cannot reopen deleted file of fd %d (%s): %m", x->r->pid,
				       o->fd, o->path);
	return fd_push(x, o, fd);
}

static long reg_open(const struct fd_restore *x, const struct fd_rec *o)
{
	return o->state ? open_deleted(x, o, o->state) : path_open(x, o);
}

static int seek(const struct fd_restore *x, const struct fd_rec *o)
{
	if (!o->pos)
		return 0;
	long ret = remote_syscall(x->r, x->tid, SYS_lseek, o->fd, o->pos, SEEK_SET);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot seek fd %d: %m", x->r->pid, o->fd);
	return 0;
}

const struct fd_ops fd_reg_ops = {
	.name = "reg",
	.match = reg_match,
	.collect = reg_collect,
	.dump_data = reg_dump_data,
	.to_json = reg_to_json,
	.from_json = reg_from_json,
	.open = reg_open,
	.setup = seek,
};

const struct fd_ops fd_dir_ops = {
	.name = "dir",
	.match = dir_match,
	.from_json = path_from_json,
	.open = path_open,
	.setup = seek,
};

/* /dev/null and friends: nothing to keep, no offset that matters. */
const struct fd_ops fd_chr_ops = {
	.name = "chr",
	.match = chr_match,
	.from_json = path_from_json,
	.open = path_open,
};

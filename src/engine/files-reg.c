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
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/deleted.h"
#include "engine/files.h"
#include "engine/shmem.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* Kept only for a deleted file: a plain one has no state. */
struct reg_state {
	struct shobj obj; /* the object and its saved content */
};

/* The character devices we reopen, with the numbers Linux gives them
 * (Documentation/admin-guide/devices.txt): a record names one of these,
 * and what restore opens must be that device, not whatever lies at the
 * path now. */
static const struct {
	const char *path;
	unsigned major, minor;
} safe_chr[] = {
	{ "/dev/null", 1, 3 }, { "/dev/zero", 1, 5 }, { "/dev/full", 1, 7 }, { "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 },
};

/* The kernel's own O_LARGEFILE on x86-64, set on every open there (glibc's
 * is 0 with 64-bit offsets). */
#define KERNEL_O_LARGEFILE 0100000

/* The open flags the kernel keeps for a file (fdinfo's "flags", O_CLOEXEC
 * included): O_CREAT, O_EXCL, O_NOCTTY and O_TRUNC are dropped by open
 * itself, so a record holding them, or any bit not named here, was not
 * written by a dump and is refused. */
#define FILE_FLAGS                                                                                         \
	(O_ACCMODE | O_APPEND | O_NONBLOCK | O_SYNC | FASYNC | O_DIRECT | KERNEL_O_LARGEFILE |        \
	 O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_PATH | O_TMPFILE)
/* O_TMPFILE is this bit with O_DIRECTORY. */
#define TMPFILE_BIT (O_TMPFILE & ~O_DIRECTORY)

extern const struct fd_ops fd_reg_ops, fd_dir_ops;

static int chr_index(const char *path)
{
	for (size_t i = 0; i < ARRAY_SIZE(safe_chr); i++)
		if (streq(path, safe_chr[i].path))
			return (int)i;
	return -1;
}

static dev_t chr_rdev(int i)
{
	return makedev(safe_chr[i].major, safe_chr[i].minor);
}

/* A directory removed while open: made again, empty and unnamed. */
struct dir_state {
	uint64_t ino; /* at dump: the fds of one removed directory share one */
};

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
	int i = chr_index(p->link);
	return i >= 0 && p->st && S_ISCHR(p->st->st_mode) && p->st->st_rdev == chr_rdev(i);
}

static int reg_collect(const struct fd_probe *p, struct fd_rec *o)
{
	if (!path_deleted(p->link))
		return 0;
	int r = fd_state_alloc(o, sizeof(struct reg_state));
	if (r >= 0) /* what an inotify watch on it is matched with; the rest at dump_data */
		((struct reg_state *)o->state)->obj = (struct shobj){ .dev = (uint64_t)p->st->st_dev,
								      .ino = (uint64_t)p->st->st_ino, .uid = -1, .gid = -1 };
	return r;
}

static int dir_collect(const struct fd_probe *p, struct fd_rec *o)
{
	if (!path_deleted(p->link) || p->st->st_nlink)
		return 0;
	int r = fd_state_alloc(o, sizeof(struct dir_state));
	if (r >= 0)
		((struct dir_state *)o->state)->ino = (uint64_t)p->st->st_ino;
	return r;
}

static void dir_to_json(const struct fd_rec *o, struct json_builder *b)
{
	const struct dir_state *s = o->state;
	if (s)
		jb_u64(b, "deleted_ino", s->ino);
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
	if (fd >= 0 && (r = shobj_stat(fd, &s->obj)) == -EFBIG)
		return log_error_errno(r, "pid %d: fd %d (%s) is a deleted file larger than the %llu GiB stasis saves "
				       "in an image; close it or give it a name again (ln /proc/%d/fd/%d PATH)",
				       d->pid, o->fd, o->path, MAX_SHOBJ_SIZE >> 30, d->pid, o->fd);
	if (fd < 0 || r < 0 || (r = shobj_save(d->img, fd, &s->obj)) < 0)
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

/* The pid of a /proc/PID/... path, or 0. */
static pid_t procfs_pid(const char *path)
{
	int pid = 0;
	const char *p = path + 6;
	if (!startswith(path, "/proc/") || *p < '1' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9' && pid < (1 << 22); p++)
		pid = pid * 10 + (*p - '0');
	return *p == '/' || !*p ? pid : 0;
}

/* A /proc/PID entry is opened again by the same path, which names the
 * restored process when PID is of the tree (same pids, or the tree's own
 * /proc with --pidns), and anybody else's otherwise: refused then. */
static int procfs_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			pid_t pid = o->ops == &fd_reg_ops || o->ops == &fd_dir_ops ? procfs_pid(o->path) : 0;
			bool ours = !pid;
			char t[64];
			for (size_t j = 0; j < n && !ours; j++) {
				snprintf(t, sizeof(t), "/proc/%d/task/%d", v[j].pid, pid);
				ours = v[j].pid == pid || access(t, F_OK) == 0; /* a thread's own entry */
			}
			if (!ours)
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is %s, of process %d, which is not "
						       "part of the tree; after restore that path would name another "
						       "process. Dump the tree that holds %d too", v[i].pid, o->fd,
						       o->path, pid, pid);
		}
	return 0;
}

/* Format 2 has no rdev (a reader may ignore it): it is fixed by the path. */
static void chr_to_json(const struct fd_rec *o, struct json_builder *b)
{
	int i = chr_index(o->path);
	if (i >= 0)
		jb_u64(b, "rdev", (uint64_t)chr_rdev(i));
}

/* Flags a dump writes, the access mode one a file can have. */
static bool flags_valid(const struct fd_rec *o)
{
	return !(o->flags & ~(uint32_t)FILE_FLAGS) && (o->flags & O_ACCMODE) != O_ACCMODE;
}

static int dir_from_json(const json_t *j, struct fd_rec *o)
{
	bool ok = path_is_normal(o->path) && flags_valid(o) && !(o->flags & TMPFILE_BIT);
	if (!ok || !((o->flags & O_ACCMODE) == O_RDONLY || (o->flags & O_PATH)))
		return -EBADMSG;
	if (!json_object_get(j, "deleted_ino"))
		return 0;
	int r = fd_state_alloc(o, sizeof(struct dir_state));
	if (r < 0 || (r = json_get_u64(j, "deleted_ino", &((struct dir_state *)o->state)->ino)) < 0)
		return r;
	return path_deleted(o->path) ? 0 : -EBADMSG;
}

static int chr_from_json(const json_t *j, struct fd_rec *o)
{
	int i = chr_index(o->path);
	uint64_t rdev;
	if (i < 0 || !flags_valid(o) || o->flags & (O_DIRECTORY | TMPFILE_BIT))
		return -EBADMSG;
	if (json_object_get(j, "rdev") && (json_get_u64(j, "rdev", &rdev) < 0 || rdev != (uint64_t)chr_rdev(i)))
		return -EBADMSG;
	return 0;
}

static int reg_from_json(const json_t *j, struct fd_rec *o)
{
	int r;
	if (!path_is_normal(o->path) || !flags_valid(o) || (o->flags & O_DIRECTORY && !(o->flags & TMPFILE_BIT)))
		return -EBADMSG;
	if (!json_object_get(j, "obj"))
		return o->flags & TMPFILE_BIT ? -EBADMSG : 0;
	if ((r = fd_state_alloc(o, sizeof(struct reg_state))) < 0)
		return r;
	return shobj_from_json(j, &((struct reg_state *)o->state)->obj);
}

/* --- restore --- */

static const char *type_name(mode_t m)
{
	return S_ISREG(m) ? "a regular file" : S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
	       : S_ISLNK(m) ? "a symbolic link" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
	       : S_ISBLK(m) ? "a block device" : "a special file";
}

/* What the task got at path (an O_PATH fd there) is what the record says:
 * the same type, and for a device the same device. */
static int check_opened(const struct fd_restore *x, const struct fd_rec *o, long pfd)
{
	char p[64];
	struct stat st;
	mode_t want = o->ops == &fd_reg_ops ? S_IFREG : o->ops == &fd_dir_ops ? S_IFDIR : S_IFCHR;
	int i = chr_index(o->path);

	snprintf(p, sizeof(p), "/proc/%d/fd/%ld", x->r->pid, pfd);
	if (stat(p, &st) < 0)
		return log_error_errno(-errno, "pid %d: cannot look at what fd %d (%s) opened: %m", x->r->pid, o->fd,
				       o->path);
	if ((st.st_mode & S_IFMT) != want)
		return log_error_errno(-EBADMSG, "pid %d: fd %d: %s is %s here, the image says %s; refusing it",
				       x->r->pid, o->fd, o->path, type_name(st.st_mode), type_name(want));
	if (want == S_IFCHR && (i < 0 || st.st_rdev != chr_rdev(i)))
		return log_error_errno(-EBADMSG, "pid %d: fd %d: %s is device %u:%u here, not %u:%u; refusing it",
				       x->r->pid, o->fd, o->path, major(st.st_rdev), minor(st.st_rdev),
				       i < 0 ? 0 : safe_chr[i].major, i < 0 ? 0 : safe_chr[i].minor);
	return 0;
}

/* Opened in the task by path, in two steps so that nothing but the
 * object the record describes is ever opened for real: an O_PATH open
 * that follows no final symlink (a path from /proc is already resolved)
 * and blocks on nothing, the check, then the open with the record's flags
 * of that very inode through /proc/self/fd. */
static long path_open(const struct fd_restore *x, const struct fd_rec *o)
{
	char p[64];
	long fd, pfd = remote_open(x->r, x->tid, o->path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	if (pfd < 0)
		return log_error_errno((int)pfd, "pid %d: cannot reopen fd %d (%s): %m", x->r->pid, o->fd, o->path);
	int e = check_opened(x, o, pfd);
	if (e < 0 || (o->flags & O_PATH)) {
		fd = e < 0 ? e : pfd;
		if (e < 0)
			remote_syscall(x->r, x->tid, SYS_close, pfd);
		return fd;
	}
	snprintf(p, sizeof(p), "/proc/self/fd/%ld", pfd);
	fd = remote_open(x->r, x->tid, p, (int)(o->flags & ~(uint32_t)(O_CLOEXEC | O_NOFOLLOW)), 0);
	remote_syscall(x->r, x->tid, SYS_close, pfd);
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
	uint32_t fl = o->flags & ~(uint32_t)O_NOFOLLOW;
	int flags = (int)(fl & TMPFILE_BIT ? fl & ~(uint32_t)O_TMPFILE : fl) | O_CLOEXEC;
	_cleanup_close_ int fd = open(p, flags);
	if (fd < 0)
		return log_error_errno(-errno, "pid %d: cannot reopen deleted file of fd %d (%s): %m", x->r->pid,
				       o->fd, o->path);
	return fd_push(x, o, fd);
}

/* A removed directory: made once (keyed by its inode at dump, bit 61). */
static int made_dir(struct files_ctx *c, const struct fd_rec *o, const struct dir_state *s)
{
	uint64_t key = (1ULL << 61) | (s->ino & ((1ULL << 61) - 1));
	int e;
	if (files_ctx_find(c, key) < 0 && (e = files_ctx_add(c, key, deleted_make(c->fsroot, o->path, S_IFDIR))) < 0)
		return log_error_errno(e, "cannot make the removed directory %s again: %m", o->path);
	return files_ctx_find(c, key);
}

/* Each description of a removed directory is a new open of it. */
static long open_deleted_dir(const struct fd_restore *x, const struct fd_rec *o, const struct dir_state *s)
{
	char p[64];
	int dir = made_dir(x->c, o, s);
	if (dir < 0)
		return dir;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", dir);
	_cleanup_close_ int fd = open(p, (int)(o->flags & ~(uint32_t)O_NOFOLLOW) | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(-errno, "pid %d: cannot reopen removed directory of fd %d (%s): %m",
				       x->r->pid, o->fd, o->path);
	return fd_push(x, o, fd);
}

static long dir_open(const struct fd_restore *x, const struct fd_rec *o)
{
	return o->state ? open_deleted_dir(x, o, o->state) : path_open(x, o);
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
	.link = procfs_link,
	.dump_data = reg_dump_data,
	.to_json = reg_to_json,
	.from_json = reg_from_json,
	.open = reg_open,
	.setup = seek,
};

const struct fd_ops fd_dir_ops = {
	.name = "dir",
	.match = dir_match,
	.collect = dir_collect,
	.to_json = dir_to_json,
	.from_json = dir_from_json,
	.open = dir_open,
	.setup = seek,
};

/* /dev/null and friends: nothing to keep, no offset that matters. */
const struct fd_ops fd_chr_ops = {
	.name = "chr",
	.match = chr_match,
	.to_json = chr_to_json,
	.from_json = chr_from_json,
	.open = path_open,
};

/* The deleted file or removed directory (at dump: dev, ino) held by fd
 * record o, or NULL. Directories are matched by inode alone. */
static const struct fd_rec *holds(const struct fd_rec *o, uint64_t dev, uint64_t ino)
{
	if (o->dup_of >= 0)
		return NULL; /* a dup's record carries no size (reg_dump_data) */
	if (o->ops == &fd_reg_ops && o->state) {
		const struct shobj *b = &((const struct reg_state *)o->state)->obj;
		return b->dev == dev && b->ino == ino ? o : NULL;
	}
	if (o->ops == &fd_dir_ops && o->state)
		return ((const struct dir_state *)o->state)->ino == ino ? o : NULL;
	return NULL;
}

static const struct fd_rec *find_holder(const struct files_proc *v, size_t n, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++)
			if (holds(&v[i].f->fds[k], dev, ino))
				return &v[i].f->fds[k];
	return NULL;
}

bool deleted_object_held(const struct files_proc *v, size_t n, uint64_t dev, uint64_t ino)
{
	return find_holder(v, n, dev, ino) != NULL;
}

int deleted_object_get(struct files_ctx *c, uint64_t dev, uint64_t ino)
{
	const struct fd_rec *o = find_holder(c->all, c->nall, dev, ino);
	if (!o)
		return -ENOENT;
	if (o->ops == &fd_dir_ops)
		return made_dir(c, o, o->state);
	return shobj_get(c, o->path, &((const struct reg_state *)o->state)->obj);
}

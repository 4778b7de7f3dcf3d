/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* inotify instances. fdinfo shows each watch as
 *     inotify wd:2 ino:a72176 sdev:fe00000 mask:80000002 ignored_mask:0
 *             fhandle-bytes:8 fhandle-type:1 f_handle:7621a700099c6c60
 * The watched inode is found by its file handle (open_by_handle_at on a
 * mount of its filesystem; we are root) and kept as a path. Restore makes a
 * new instance and adds the watches again in ascending wd order. The kernel
 * hands out wds cyclically from 1, so a gap left by a removed watch is
 * recreated by adding and removing a dummy watch (on a directory such as
 * "/" that is not watched) until the next wd is the wanted one; the
 * IN_IGNORED events this leaves are drained. Events that were queued and
 * unread at dump time are not saved: the restored instance starts empty.
 * Paths are resolved in the dumper's mount namespace, which must be the
 * process's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/deleted.h"
#include "engine/fdpass.h"
#include "engine/files.h"
#include "engine/inotify.h"
#include "engine/proc.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_WD_GAPS 65536

void inotify_rec_free(struct inotify_rec *o)
{
	for (size_t i = 0; o->watches && i < o->nwatches; i++)
		free(o->watches[i].path);
	free(o->watches);
	o->watches = NULL;
	o->nwatches = 0;
}

static void inotify_free(void *state)
{
	inotify_rec_free(state);
}

static bool inotify_match(const struct fd_probe *p)
{
	return streq(p->link, "anon_inode:inotify");
}

static int cmp_wd(const void *a, const void *b)
{
	int x = ((const struct inotify_watch *)a)->wd, y = ((const struct inotify_watch *)b)->wd;
	return (x > y) - (x < y);
}

static int parse_watch(const char *line, struct inotify_watch *w)
{
	unsigned long long ino;
	unsigned sdev, mask, ign, bytes, type;
	char hex[260];
	int wd;
	if (sscanf(line, "inotify wd:%d ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x "
			 "f_handle:%259s", &wd, &ino, &sdev, &mask, &ign, &bytes, &type, hex) != 8)
		return -EBADMSG;
	if (wd <= 0 || bytes == 0 || bytes > sizeof(w->handle) || strlen(hex) != 2 * (size_t)bytes ||
	    type > INT_MAX)
		return -EBADMSG;
	*w = (struct inotify_watch){ .wd = wd, .mask = mask, .ino = ino,
				     .dev = (uint64_t)makedev(sdev >> 20, sdev & 0xfffff),
				     .handle_type = (int)type, .handle_bytes = bytes };
	return hex_decode(hex, w->handle, bytes) < 0 ? -EBADMSG : 0;
}

int inotify_parse_fdinfo(const char *buf, size_t len, struct inotify_rec *o)
{
	size_t pos = 0, cap = 0;
	char line[512];
	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		if (!startswith(line, "inotify "))
			continue;
		if (o->nwatches == cap) {
			cap = cap ? cap * 2 : 8;
			if (cap > MAX_INOTIFY_WATCHES)
				return -E2BIG;
			struct inotify_watch *n = realloc(o->watches, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			o->watches = n;
		}
		int r = parse_watch(line, &o->watches[o->nwatches]);
		if (r < 0)
			return r;
		o->nwatches++;
	}
	if (o->nwatches)
		qsort(o->watches, o->nwatches, sizeof(*o->watches), cmp_wd);
	for (size_t i = 1; i < o->nwatches; i++)
		if (o->watches[i].wd == o->watches[i - 1].wd)
			return -EBADMSG;
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

/* Opens (O_PATH) a mount of device dev in the process's view, preferring
 * one of the whole filesystem so that every inode on it has a path. */
static int open_mount(int procfd, const char *mountinfo, size_t len, uint64_t dev)
{
	size_t pos = 0;
	char line[PATH_MAX * 2 + 256], best[PATH_MAX + 8] = "", root[PATH_MAX], mnt[PATH_MAX];
	while (proc_next_line(mountinfo, len, &pos, line, sizeof(line))) {
		unsigned maj, min;
		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &maj, &min, root, mnt) != 4 ||
		    makedev(maj, min) != dev)
			continue;
		if (!best[0] || streq(root, "/")) {
			unescape(mnt);
			snprintf(best, sizeof(best), "root%s", mnt);
		}
		if (streq(root, "/"))
			break;
	}
	if (!best[0])
		return -ENOENT;
	int fd = openat(procfd, best, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* not O_PATH: open_by_handle_at refuses it */
	return fd < 0 ? -errno : fd;
}

static int resolve(int procfd, int mfd, struct inotify_watch *w)
{
	_cleanup_free_ struct file_handle *fh = malloc(sizeof(*fh) + w->handle_bytes);
	char p[64], link[PATH_MAX + 16];
	struct stat st;
	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = w->handle_bytes;
	fh->handle_type = w->handle_type;
	memcpy(fh->f_handle, w->handle, w->handle_bytes);
	_cleanup_close_ int fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t l = readlink(p, link, PATH_MAX);
	if (l < 0)
		return -errno;
	link[l] = 0;
	if (link[0] != '/')
		return -ENOENT;
	if (path_deleted(link)) /* no name any more: found again through an fd of the tree (inotify_link) */
		return (w->path = strdup(link)) ? 0 : -ENOMEM;
	/* The path must lead to the same inode from the process's root too. */
	char in_root[PATH_MAX + 24];
	snprintf(in_root, sizeof(in_root), "root%s", link);
	if (fstatat(procfd, in_root, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != w->ino || st.st_dev != w->dev)
		return -ESTALE;
	w->path = strdup(link);
	return w->path ? 0 : -ENOMEM;
}

/* Each watch's inode, found by its handle, kept as a path. */
static int find_paths(int procfd, pid_t pid, int fd, struct inotify_rec *o)
{
	_cleanup_free_ char *mi = NULL;
	size_t milen;
	int r;
	if (o->nwatches && (r = proc_read(procfd, "mountinfo", &mi, &milen)) < 0)
		return log_error_errno(r, "pid %d: cannot read its mountinfo: %m", pid);
	for (size_t i = 0; i < o->nwatches; i++) {
		struct inotify_watch *w = &o->watches[i];
		int mfd = open_mount(procfd, mi, milen, w->dev);
		r = mfd < 0 ? mfd : resolve(procfd, mfd, w);
		if (mfd >= 0)
			close(mfd);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			log_error("pid %d: inotify fd %d: watch %d is on inode %llu of device %u:%u, whose path cannot "
				  "be found (%s); it cannot be checkpointed", pid, fd, w->wd,
				  (unsigned long long)w->ino, major(w->dev), minor(w->dev),
				  r == -ENOENT ? "deleted or not mounted" : r == -ESTALE ? "not the same file from the "
				  "process's root" : strerror(-r));
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

extern const struct fd_ops fd_inotify_ops;

/* A watch on an inode that has no name any more is kept when an fd of
 * the tree holds that deleted file or removed directory: restore watches
 * the object it makes for that fd. */
static int inotify_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			const struct inotify_rec *s = o->ops == &fd_inotify_ops ? o->state : NULL;
			for (size_t j = 0; s && j < s->nwatches; j++) {
				const struct inotify_watch *w = &s->watches[j];
				if (path_deleted(w->path) && !deleted_object_held(v, n, w->dev, w->ino))
					return log_error_errno(-EOPNOTSUPP, "pid %d: inotify fd %d: watch %d is on %s, "
							       "which no fd of the tree holds open, so it cannot be "
							       "made again; it cannot be checkpointed", v[i].pid,
							       o->fd, w->wd, w->path);
			}
		}
	return 0;
}

static int inotify_collect(const struct fd_probe *p, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct inotify_rec));
	if (r < 0)
		return r;
	if ((r = inotify_parse_fdinfo(p->fdinfo, p->fdinfo_len, o->state)) < 0)
		return log_error_errno(r, "pid %d: cannot parse the state of fd %d (%s): %m", p->pid, p->fd, p->link);
	return find_paths(p->procfd, p->pid, p->fd, o->state);
}

void inotify_to_json(const struct inotify_rec *o, struct json_builder *b)
{
	json_t *a = jb_array(b, "watches");
	for (size_t i = 0; a && i < o->nwatches; i++) {
		const struct inotify_watch *w = &o->watches[i];
		struct json_builder t;
		jb_begin(&t);
		jb_int(&t, "wd", w->wd);
		jb_x64(&t, "mask", w->mask);
		jb_u64(&t, "ino", w->ino);
		jb_u64(&t, "dev", w->dev);
		jb_str(&t, "path", w->path);
		fd_json_append(b, a, &t);
	}
}

int inotify_from_json(const json_t *j, struct inotify_rec *o)
{
	json_t *a;
	int r = json_get_array(j, "watches", MAX_INOTIFY_WATCHES, &a);
	if (r < 0)
		return r;
	size_t n = json_array_size(a);
	o->watches = calloc(n ? n : 1, sizeof(*o->watches));
	if (!o->watches)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *t = json_array_get(a, i);
		struct inotify_watch *w = &o->watches[i];
		const char *path;
		uint64_t mask;
		o->nwatches = i + 1;
		if ((r = json_get_int(t, "wd", &w->wd)) < 0 || (r = json_get_x64(t, "mask", &mask)) < 0 ||
		    (r = json_get_u64(t, "ino", &w->ino)) < 0 || (r = json_get_u64(t, "dev", &w->dev)) < 0 ||
		    (r = json_get_str(t, "path", &path)) < 0)
			return r;
		if (w->wd <= 0 || (i && w->wd <= o->watches[i - 1].wd) || mask > UINT32_MAX || !path_is_normal(path))
			return -EBADMSG;
		w->mask = (uint32_t)mask;
		if (!(w->path = strdup(path)))
			return -ENOMEM;
	}
	return 0;
}

/* Format 2 also writes an all-zero "anon" for inotify fds. */
static void inotify_fd_to_json(const struct fd_rec *o, struct json_builder *b)
{
	fd_anon_to_json(b, NULL);
	inotify_to_json(o->state, b);
}

static int inotify_fd_from_json(const json_t *j, struct fd_rec *o)
{
	int r = fd_anon_from_json(j, NULL);
	if (r < 0 || (r = fd_state_alloc(o, sizeof(struct inotify_rec))) < 0)
		return r;
	return inotify_from_json(j, o->state);
}

/* --- restore --- */

/* A directory no watch is on, to burn wds with. */
static const char *pick_dummy(const struct inotify_rec *o)
{
	static const char *const cand[] = { "/", "/proc", "/sys", "/dev", "/tmp", "/etc", "/usr", "/var" };
	for (size_t c = 0; c < ARRAY_SIZE(cand); c++) {
		struct stat cs, ws;
		bool used = stat(cand[c], &cs) < 0;
		for (size_t i = 0; i < o->nwatches && !used; i++)
			used = stat(o->watches[i].path, &ws) == 0 && ws.st_dev == cs.st_dev && ws.st_ino == cs.st_ino;
		if (!used)
			return cand[c];
	}
	return NULL;
}

static long add_watch(struct remote *r, pid_t tid, long fd, const char *path, uint32_t mask)
{
	uint64_t at = r->scratch + 16384;
	int e = remote_write(r, at, path, strlen(path) + 1);
	if (e < 0)
		return e;
	/* The path names the watched inode itself: never follow a symlink. */
	return remote_syscall(r, tid, SYS_inotify_add_watch, fd, at, mask | IN_DONT_FOLLOW);
}

/* Advances the wd allocator from next to want with a dummy watch. */
static int burn_wds(struct remote *r, pid_t tid, long fd, const struct fd_rec *o, int next, int want)
{
	const char *dummy = pick_dummy(o->state);
	if (!dummy)
		return log_error_errno(-EOPNOTSUPP, "pid %d: inotify fd %d: no unwatched directory to skip wd %d with",
				       r->pid, o->fd, next);
	for (; next < want; next++) {
		long wd = add_watch(r, tid, fd, dummy, IN_DELETE_SELF);
		if (wd < 0)
			return log_error_errno((int)wd, "pid %d: inotify fd %d: cannot skip wd %d: %m", r->pid, o->fd, next);
		long ret = remote_syscall(r, tid, SYS_inotify_rm_watch, fd, wd);
		if (ret < 0)
			return (int)ret;
	}
	return 0;
}

/* Reads away what the dummy watches queued (their IN_IGNORED events). */
static int drain(struct remote *r, pid_t tid, long fd)
{
	uint64_t nat = r->scratch + 8192, buf = r->scratch + 16384;
	for (int i = 0; i < 4096; i++) {
		int n = 0;
		long ret = remote_syscall(r, tid, SYS_ioctl, fd, FIONREAD, nat);
		int e = ret < 0 ? (int)ret : remote_read(r, nat, &n, sizeof(n));
		if (e < 0)
			return e;
		if (n <= 0)
			return 0;
		ret = remote_syscall(r, tid, SYS_read, fd, buf, n > 49152 ? 49152 : n);
		if (ret < 0)
			return (int)ret;
	}
	return -EIO;
}

/* A watch on a deleted file or removed directory: on the object the
 * restorer made for the fd of the tree that holds it, through
 * /proc/self/fd (followed, so not IN_DONT_FOLLOW). */
static long add_deleted_watch(const struct fd_restore *x, long fd, const struct inotify_watch *w)
{
	char p[64];
	int ours = deleted_object_get(x->c, w->dev, w->ino);
	if (ours < 0)
		return ours;
	long in = fdpass_push(x->r, x->tid, x->c->ctl, x->tfd, ours);
	if (in < 0)
		return in;
	snprintf(p, sizeof(p), "/proc/self/fd/%ld", in);
	uint64_t at = x->r->scratch + 16384;
	long wd = remote_write(x->r, at, p, strlen(p) + 1);
	if (wd >= 0)
		wd = remote_syscall(x->r, x->tid, SYS_inotify_add_watch, fd, at, w->mask & ~(uint32_t)IN_DONT_FOLLOW);
	remote_syscall(x->r, x->tid, SYS_close, in);
	return wd;
}

static int add_all(const struct fd_restore *x, long fd, const struct fd_rec *o)
{
	struct remote *r = x->r;
	pid_t tid = x->tid;
	const struct inotify_rec *s = o->state;
	int next = 1, e;
	bool burned = false;
	for (size_t i = 0; i < s->nwatches; i++) {
		const struct inotify_watch *w = &s->watches[i];
		if (w->wd > next) {
			if (w->wd - next > MAX_WD_GAPS)
				return log_error_errno(-EOPNOTSUPP, "pid %d: inotify fd %d: watch %d lies too far past "
						       "the previous one (%d) to be recreated", r->pid, o->fd, w->wd, next - 1);
			if ((e = burn_wds(r, tid, fd, o, next, w->wd)) < 0)
				return e;
			burned = true;
		}
		long wd = path_deleted(w->path) ? add_deleted_watch(x, fd, w) : add_watch(r, tid, fd, w->path, w->mask);
		if (wd < 0)
			return log_error_errno((int)wd, "pid %d: inotify fd %d: cannot watch %s again: %m", r->pid, o->fd,
					       w->path);
		if (wd != w->wd)
			return log_error_errno(-EOPNOTSUPP, "pid %d: inotify fd %d: watch on %s came back as wd %ld, not "
					       "%d (is the same file watched twice under two paths?)", r->pid, o->fd,
					       w->path, wd, w->wd);
		next = w->wd + 1;
	}
	if (burned && (e = drain(r, tid, fd)) < 0)
		return log_error_errno(e, "pid %d: inotify fd %d: cannot clear the queue: %m", r->pid, o->fd);
	return 0;
}

static long inotify_open(const struct fd_restore *x, const struct fd_rec *o)
{
	long fd = remote_syscall(x->r, x->tid, SYS_inotify_init1, (o->flags & O_NONBLOCK) ? IN_NONBLOCK : 0);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", x->r->pid, o->fd, o->path);
	int e = add_all(x, fd, o);
	if (e < 0) {
		remote_syscall(x->r, x->tid, SYS_close, fd);
		return e;
	}
	return fd;
}

const struct fd_ops fd_inotify_ops = {
	.name = "inotify",
	.match = inotify_match,
	.collect = inotify_collect,
	.link = inotify_link,
	.to_json = inotify_fd_to_json,
	.from_json = inotify_fd_from_json,
	.free = inotify_free,
	.open = inotify_open,
};

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/fsroot.h"
#include "engine/shmem.h"
#include "engine/syscalls.h"
#include "engine/proc.h"
#include "engine/rec.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static const char *const kind_names[FD_KIND_MAX] = { "reg",     "dir",    "chr",  "external", "eventfd", "signalfd",
							"timerfd", "epoll",  "pipe", "socket",   "inotify" };
const char *fd_kind_name(const struct fd_rec *o)
{
	return o->kind < FD_KIND_MAX ? kind_names[o->kind] : "?";
}

static const char *const safe_chr[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };

void files_rec_free(struct files_rec *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->fds[i].path);
		free(f->fds[i].data);
		free(f->fds[i].tgts);
		if (f->fds[i].sk)
			sk_rec_free(f->fds[i].sk);
		free(f->fds[i].sk);
		inotify_free(&f->fds[i]);
	}
	free(f->fds);
	f->fds = NULL;
	f->n = 0;
}

static bool is_tty(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);
	return S_ISCHR(st->st_mode) && (maj == 136 || maj == 4 || maj == 5);
}

static int classify_fd(pid_t pid, int fd, const char *link, const struct stat *st, struct fd_rec *o)
{
	bool ext = S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) || is_tty(st);
	if (S_ISFIFO(st->st_mode) && link[0] == '/' && !strstr(link, " (deleted)")) {
		/* A FIFO: a pipe reopened by its path, whoever holds the other end. */
		o->kind = FD_PIPE;
		o->pipe_id = (uint64_t)st->st_ino;
		return 0;
	}
	if (S_ISFIFO(st->st_mode) && startswith(link, "pipe:[")) {
		/* Decided once every fd is known: both ends inside, or not. */
		o->kind = FD_PIPE;
		o->pipe_id = (uint64_t)st->st_ino;
		return 0;
	}
	if (ext && fd <= 2) {
		o->kind = FD_EXTERNAL;
		return 0;
	}
	if (S_ISSOCK(st->st_mode)) {
		o->kind = FD_SOCKET; /* looked at by collect_socket() */
		return 0;
	}
	if (S_ISREG(st->st_mode) && link[0] == '/') {
		o->kind = FD_REG;
		size_t l = strlen(link);
		o->deleted = l > 10 && streq(link + l - 10, " (deleted)");
		return 0;
	}
	if (S_ISDIR(st->st_mode) && link[0] == '/') {
		o->kind = FD_DIR;
		return 0;
	}
	for (size_t i = 0; S_ISCHR(st->st_mode) && i < ARRAY_SIZE(safe_chr); i++)
		if (streq(link, safe_chr[i])) {
			o->kind = FD_CHR;
			return 0;
		}
	const char *what = S_ISFIFO(st->st_mode)  ? "a pipe or FIFO"
			   : S_ISSOCK(st->st_mode) ? "a socket"
			   : is_tty(st)            ? "a terminal"
			   : S_ISCHR(st->st_mode)  ? "a character device"
			   : S_ISBLK(st->st_mode)  ? "a block device"
						   : "a special file";
	log_error("pid %d: fd %d (%s) is %s, which cannot be checkpointed yet", pid, fd, link, what);
	return -EOPNOTSUPP;
}

static int collect_anon(int procfd, pid_t pid, int fd, const char *link, enum fd_kind kind, struct fd_rec *o)
{
	char p[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	struct fdinfo fi;
	snprintf(p, sizeof(p), "fdinfo/%d", fd);
	int r = proc_read(procfd, p, &buf, &len);
	if (r < 0 || (r = proc_parse_fdinfo(buf, len, &fi)) < 0)
		return log_error_errno(r, "pid %d: cannot read fdinfo of fd %d: %m", pid, fd);
	*o = (struct fd_rec){ .fd = fd, .kind = kind, .flags = fi.flags };
	r = kind == FD_EPOLL	 ? epoll_parse_fdinfo(buf, len, o)
	    : kind == FD_INOTIFY ? inotify_collect(procfd, pid, buf, len, o)
				 : anon_parse_fdinfo(buf, len, kind, &o->anon);
	if (r == -EOPNOTSUPP)
		return r; /* said why */
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot parse the state of fd %d (%s): %m", pid, fd, link);
	o->path = strdup(link);
	return o->path ? 0 : -ENOMEM;
}

static int collect_socket(pid_t pid, struct fd_rec *o, unsigned sk_flags)
{
	_cleanup_close_ int pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0)
		return log_error_errno(-errno, "pid %d: cannot open a pidfd: %m", pid);
	o->sk = calloc(1, sizeof(*o->sk));
	if (!o->sk)
		return -ENOMEM;
	return sk_collect(pid, pidfd, o->fd, sk_flags, o->sk);
}

static int collect_one(int procfd, pid_t pid, int fd, unsigned sk_flags, struct fd_rec *o)
{
	char p[64], link[PATH_MAX];
	struct stat st;
	struct fdinfo fi;
	_cleanup_free_ char *buf = NULL;
	size_t len;

	snprintf(p, sizeof(p), "fd/%d", fd);
	ssize_t l = readlinkat(procfd, p, link, sizeof(link) - 1);
	if (l < 0)
		return log_error_errno(-errno, "pid %d: cannot read fd %d: %m", pid, fd);
	link[l] = 0;
	enum fd_kind ak;
	if (anon_kind(link, &ak))
		return collect_anon(procfd, pid, fd, link, ak, o);
	if (fstatat(procfd, p, &st, 0) < 0) {
		/* anon_inode:[eventfd] and friends cannot be stat'ed by path
		 * in every case; they are unsupported anyway. */
		log_error("pid %d: fd %d (%s) cannot be checkpointed yet", pid, fd, link);
		return -EOPNOTSUPP;
	}
	if (startswith(link, "anon_inode:")) {
		log_error("pid %d: fd %d is %s, which cannot be checkpointed yet", pid, fd, link + 11);
		return -EOPNOTSUPP;
	}
	snprintf(p, sizeof(p), "fdinfo/%d", fd);
	int r = proc_read(procfd, p, &buf, &len);
	if (r < 0 || (r = proc_parse_fdinfo(buf, len, &fi)) < 0)
		return log_error_errno(r, "pid %d: cannot read fdinfo of fd %d: %m", pid, fd);
	*o = (struct fd_rec){ .fd = fd, .flags = fi.flags, .pos = fi.pos };
	r = classify_fd(pid, fd, link, &st, o);
	if (r >= 0 && o->kind == FD_SOCKET)
		r = collect_socket(pid, o, sk_flags);
	if (r < 0)
		return r;
	o->path = strdup(link);
	return o->path ? 0 : -ENOMEM;
}

static int cmp_fd(const void *a, const void *b)
{
	return ((const struct fd_rec *)a)->fd - ((const struct fd_rec *)b)->fd;
}

int files_collect(int procfd, pid_t pid, unsigned sk_flags, struct files_rec *f)
{
	int dfd = openat(procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return log_error_errno(-errno, "pid %d: cannot list fds: %m", pid);
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	struct dirent *de;
	size_t cap = 0;
	while ((de = readdir(d))) {
		int fd;
		if (parse_int(de->d_name, &fd) < 0)
			continue;
		if (f->n == cap) {
			cap = cap ? cap * 2 : 16;
			if (cap > MAX_FDS)
				return log_error_errno(-E2BIG, "pid %d: too many fds", pid);
			struct fd_rec *n = realloc(f->fds, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			f->fds = n;
		}
		int r = collect_one(procfd, pid, fd, sk_flags, &f->fds[f->n]);
		if (r < 0)
			return r;
		f->n++;
	}
	qsort(f->fds, f->n, sizeof(*f->fds), cmp_fd);
	for (size_t i = 0; i < f->n; i++)
		if (f->fds[i].kind == FD_EPOLL) {
			int r = epoll_check(pid, f, &f->fds[i]);
			if (r < 0)
				return r;
		}
	return 0;
}

int files_dump_data(struct image *img, int procfd, pid_t pid, struct files_rec *f)
{
	int pr = pipes_dump_data(img, pid, f);
	if (pr < 0)
		return pr;
	for (size_t i = 0; i < f->n; i++) {
		struct fd_rec *o = &f->fds[i];
		char p[64];
		if (!o->deleted || o->dup_of >= 0)
			continue;
		snprintf(p, sizeof(p), "fd/%d", o->fd);
		_cleanup_close_ int fd = openat(procfd, p, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (pr = shobj_stat(fd, &o->obj)) < 0 || (pr = shobj_save(img, fd, &o->obj)) < 0)
			return log_error_errno(fd < 0 ? -errno : pr, "pid %d: cannot save deleted file of fd %d: %m", pid,
					       o->fd);
	}
	return 0;
}

int files_to_json(const struct files_rec *f, json_t **ret)
{
	_cleanup_json_ json_t *a = json_array();
	int r = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct fd_rec *o = &f->fds[i];
		json_t *j = json_object();
		r |= json_object_set_new(j, "fd", json_integer(o->fd));
		r |= json_set_str(j, "kind", kind_names[o->kind]);
		r |= json_set_str(j, "path", o->path);
		r |= json_object_set_new(j, "flags", json_integer(o->flags));
		r |= json_set_u64(j, "pos", o->pos);
		if (o->deleted)
			r |= shobj_to_json(&o->obj, j);
		if (o->kind == FD_SOCKET)
			r |= sk_to_json(o->sk, j) < 0;
		if (o->dup_of >= 0)
			r |= json_object_set_new(j, "dup_of", json_integer(o->dup_of));
		r |= json_set_u64(j, "desc", o->desc);
		if (o->shared)
			r |= json_object_set_new(j, "shared", json_true());
		if (o->kind >= FD_EVENTFD && o->kind != FD_EPOLL)
			r |= json_set_hex(j, "anon", &o->anon, sizeof(o->anon));
		if (o->kind == FD_EPOLL)
			r |= epoll_to_json(o, j);
		if (o->kind == FD_INOTIFY)
			r |= inotify_to_json(o, j);
		if (o->kind == FD_PIPE) {
			r |= json_set_u64(j, "pipe_id", o->pipe_id);
			r |= json_object_set_new(j, "pipe_size", json_integer(o->pipe_size));
		}
		r |= json_array_append_new(a, j);
	}
	if (r)
		return -ENOMEM;
	*ret = TAKE_PTR(a);
	return 0;
}

static int fd_from_json(const json_t *j, struct fd_rec *o)
{
	const char *kind, *path;
	int r, flags;

	if ((r = json_get_int(j, "fd", &o->fd)) < 0 || (r = json_get_str(j, "kind", &kind)) < 0 ||
	    (r = json_get_str(j, "path", &path)) < 0 || (r = json_get_int(j, "flags", &flags)) < 0 ||
	    (r = json_get_u64(j, "pos", &o->pos)) < 0)
		return r;
	if (o->fd < 0 || o->fd >= MAX_FDS || strlen(path) >= PATH_MAX)
		return -EBADMSG;
	o->flags = (uint32_t)flags;
	o->kind = FD_KIND_MAX;
	for (int k = 0; k < FD_KIND_MAX; k++)
		if (streq(kind, kind_names[k]))
			o->kind = (enum fd_kind)k;
	if (o->kind == FD_KIND_MAX || (o->kind < FD_EXTERNAL && path[0] != '/'))
		return -EBADMSG;
	if (o->kind >= FD_EVENTFD && o->kind != FD_EPOLL && (r = json_get_hex(j, "anon", &o->anon, sizeof(o->anon))) < 0)
		return r;
	if (o->kind == FD_EPOLL && (r = epoll_from_json(j, o)) < 0)
		return r;
	if (o->kind == FD_INOTIFY && (r = inotify_from_json(j, o)) < 0)
		return r;
	if (o->kind == FD_PIPE) {
		int sz;
		if ((r = json_get_u64(j, "pipe_id", &o->pipe_id)) < 0 || (r = json_get_int(j, "pipe_size", &sz)) < 0)
			return r;
		if (sz < 4096 || sz > (1 << 30))
			return -EBADMSG;
		o->pipe_size = (uint32_t)sz;
	}
	o->dup_of = -1;
	if (json_object_get(j, "dup_of") && ((r = json_get_int(j, "dup_of", &o->dup_of)) < 0 || o->dup_of < 0 ||
					     o->dup_of >= o->fd))
		return -EBADMSG;
	if ((r = json_get_u64(j, "desc", &o->desc)) < 0 || o->desc == 0)
		return -EBADMSG;
	o->shared = json_is_true(json_object_get(j, "shared"));
	o->path = strdup(path);
	if (!o->path)
		return -ENOMEM;
	if (o->kind == FD_SOCKET) {
		o->sk = calloc(1, sizeof(*o->sk));
		if (!o->sk)
			return -ENOMEM;
		if ((r = sk_from_json(j, o->sk)) < 0)
			return r;
	}
	if (o->kind == FD_REG && json_object_get(j, "obj")) {
		if ((r = shobj_from_json(j, &o->obj)) < 0)
			return r;
		o->deleted = true;
	}
	return 0;
}

int files_from_json(const json_t *j, struct files_rec *f)
{
	if (!json_is_array(j) || json_array_size(j) > MAX_FDS)
		return -EBADMSG;
	size_t n = json_array_size(j);
	f->fds = calloc(n ? n : 1, sizeof(*f->fds));
	if (!f->fds)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = fd_from_json(json_array_get(j, i), &f->fds[i]);
		f->n = i + 1;
		if (r < 0)
			return r;
		if (i && f->fds[i].fd <= f->fds[i - 1].fd)
			return -EBADMSG;
	}
	return 0;
}

/* --- restore --- */

static long open_fd(struct remote *r, pid_t tid, struct image *img, const struct fd_rec *o)
{
	int flags = (int)(o->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC));
	if (o->kind == FD_INOTIFY)
		return inotify_restore(r, tid, o);
	if (o->kind >= FD_EVENTFD)
		return anon_restore(r, tid, o);
	return remote_open(r, tid, o->path, flags, 0);
}

static int find_inherited(const struct inherit_fd *inh, size_t ninh, int target)
{
	for (size_t i = 0; i < ninh; i++)
		if (inh[i].target_fd == target)
			return inh[i].our_fd;
	return target <= 2 ? target : -1;
}

void files_ctx_done(struct files_ctx *c)
{
	for (size_t i = 0; i < c->nmade; i++)
		close(c->made[i].fd);
	free(c->made);
	c->made = NULL;
	c->nmade = 0;
}

int files_ctx_find(const struct files_ctx *c, uint64_t desc)
{
	for (size_t i = 0; i < c->nmade; i++)
		if (c->made[i].desc == desc)
			return c->made[i].fd;
	return -1;
}

int files_ctx_add(struct files_ctx *c, uint64_t desc, int fd)
{
	if (fd < 0)
		return fd;
	struct made_fd *m = realloc(c->made, (c->nmade + 1) * sizeof(*m));
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	c->made = m;
	m[c->nmade++] = (struct made_fd){ desc, fd };
	return 0;
}

/* Makes a pipe in the restorer and records both of its ends, with the
 * flags each end had (O_NONBLOCK belongs to the open file description). */
/* A FIFO is opened again by path, once for each open file description;
 * our own read-write open keeps it alive meanwhile, takes the bytes, and is
 * closed with the other made things once every process has its ends. */
static int make_fifo(struct files_ctx *c, const struct fd_rec *o)
{
	char p[PATH_MAX + 64];
	if (!fsroot_path(c->fsroot, o->path, p, sizeof(p)))
		return -ENAMETOOLONG;
	int keep = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC), e;
	if (keep < 0)
		return log_error_errno(-errno, "cannot open FIFO %s: %m", o->path);
	if ((e = files_ctx_add(c, (1ULL << 62) | o->pipe_id, keep)) < 0 ||
	    (fcntl(keep, F_SETPIPE_SZ, o->pipe_size) < 0 && (e = -errno)) || (e = pipe_fill(c->img, o, keep)) < 0)
		return e;
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (x->kind != FD_PIPE || x->pipe_id != o->pipe_id || x->dup_of >= 0 ||
			    files_ctx_find(c, x->desc) >= 0)
				continue;
			int fd = open(p, (int)(x->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0 || fcntl(fd, F_SETFL, x->flags & O_NONBLOCK) < 0)
				e = -errno;
			if (e < 0 || (e = files_ctx_add(c, x->desc, fd)) < 0) {
				if (fd >= 0)
					close(fd);
				return log_error_errno(e, "cannot open FIFO %s again: %m", x->path);
			}
		}
	return 0;
}

static int make_pipe(struct files_ctx *c, const struct fd_rec *o)
{
	if (o->path[0] == '/')
		return make_fifo(c, o);
	const struct fd_rec *end[2] = { NULL, NULL };
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (x->kind == FD_PIPE && x->pipe_id == o->pipe_id && x->dup_of < 0)
				end[pipe_is_read_end(x) ? 0 : 1] = end[pipe_is_read_end(x) ? 0 : 1] ?: x;
		}
	int fds[2], e = pipe_make(c->img, o, fds);
	if (e < 0)
		return e;
	for (int k = 0; k < 2; k++) {
		if (end[k] && fcntl(fds[k], F_SETFL, end[k]->flags & O_NONBLOCK) < 0)
			e = -errno;
		if (e < 0 || !end[k] || files_ctx_find(c, end[k]->desc) >= 0)
			close(fds[k]);
		else
			e = files_ctx_add(c, end[k]->desc, fds[k]);
	}
	return e;
}

/* The first holder (in tree order) of the socket with this inode. */
static const struct fd_rec *find_socket(const struct files_ctx *c, uint64_t ino)
{
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (x->kind == FD_SOCKET && x->dup_of < 0 && x->sk->ino == ino)
				return x;
		}
	return NULL;
}

static int made_socket(struct files_ctx *c, const struct fd_rec *o, int fd)
{
	if (fcntl(fd, F_SETFL, o->flags & O_NONBLOCK) < 0) {
		close(fd);
		return -errno;
	}
	return files_ctx_add(c, o->desc, fd);
}

/* Makes o's socket (with its peer, for a pair) in the restorer. A dgram
 * socket connected to a named one needs that one to exist first. */
static int make_socket(struct files_ctx *c, const struct fd_rec *o)
{
	const struct sk_rec *s = o->sk;
	const struct fd_rec *peer = NULL;
	int fd = -1, pfd = -1, e;
	if (s->connect_by_name)
		for (size_t i = 0; i < c->nall; i++)
			for (size_t k = 0; k < c->all[i].f->n; k++) {
				const struct fd_rec *x = &c->all[i].f->fds[k];
				if (x->kind == FD_SOCKET && x->dup_of < 0 && x != o && x->sk->name.len &&
				    x->sk->name.len == s->peer_name.len &&
				    !memcmp(&x->sk->name.ss, &s->peer_name.ss, s->peer_name.len) &&
				    files_ctx_find(c, x->desc) < 0 && (e = make_socket(c, x)) < 0)
					return e;
			}
	if (sk_needs_peer(s) && !(peer = find_socket(c, s->peer_ino)))
		return -ENOTCONN;
	if ((e = sk_restore(s, peer ? peer->sk : NULL, &fd, peer ? &pfd : NULL)) < 0)
		return e;
	if (peer && (e = made_socket(c, peer, pfd)) < 0) {
		close(fd);
		return e;
	}
	return made_socket(c, o, fd);
}

/* Gets the description of o into the process, made by us or by another
 * process before. Returns its fd there (not yet at o->fd). */
static long bring_fd(struct files_ctx *c, struct remote *r, pid_t tid, const struct fd_rec *o, int tfd, bool root)
{
	int ours = files_ctx_find(c, o->desc), e;
	if (ours < 0 && o->kind == FD_EXTERNAL) {
		int inh = root ? find_inherited(c->inh, c->ninh, o->fd) : -1;
		if (inh < 0)
			return log_error_errno(-EBADF, "pid %d: fd %d was %s outside the process; give it one with "
					       "--inherit-fd %d:FD", r->pid, o->fd, o->path, o->fd);
		if ((e = files_ctx_add(c, o->desc, fcntl(inh, F_DUPFD_CLOEXEC, 3))) < 0)
			return log_error_errno(e, "pid %d: cannot use our fd %d for its fd %d: %m", r->pid, inh, o->fd);
		ours = files_ctx_find(c, o->desc);
	} else if (ours < 0 && o->kind == FD_SOCKET) {
		if ((e = make_socket(c, o)) < 0)
			return log_error_errno(e, "pid %d: cannot recreate the socket of fd %d: %m", r->pid, o->fd);
		ours = files_ctx_find(c, o->desc);
	} else if (ours < 0 && o->kind == FD_PIPE) {
		if ((e = make_pipe(c, o)) < 0)
			return log_error_errno(e, "pid %d: cannot recreate the pipe of fd %d: %m", r->pid, o->fd);
		ours = files_ctx_find(c, o->desc);
	}
	if (ours < 0)
		return -ENOENT;
	long fd = fdpass_push(r, tid, c->ctl, tfd, ours);
	if (fd < 0)
		return log_error_errno((int)fd, "pid %d: cannot pass fd %d in: %m", r->pid, o->fd);
	return fd;
}

/* A deleted file or memfd: a new open file description of the object the
 * restorer made (the same one its mappings use). */
static long bring_deleted(struct files_ctx *c, struct remote *r, pid_t tid, const struct fd_rec *o, int tfd)
{
	char p[64];
	int obj = shobj_get(c, o->path, &o->obj);
	if (obj < 0)
		return obj;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", obj);
	int flags = (int)(o->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_CLOEXEC;
	_cleanup_close_ int fd = open(p, flags);
	if (fd < 0)
		return log_error_errno(-errno, "pid %d: cannot reopen deleted file of fd %d (%s): %m", r->pid, o->fd,
				       o->path);
	long n = fdpass_push(r, tid, c->ctl, tfd, fd);
	if (n < 0)
		return log_error_errno((int)n, "pid %d: cannot pass fd %d in: %m", r->pid, o->fd);
	return n;
}

static int place_fd(struct remote *r, pid_t tid, const struct fd_rec *o, long fd)
{
	long ret = remote_syscall(r, tid, SYS_dup3, fd, o->fd, (o->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
	if (fd == o->fd && ret == -EINVAL) /* dup3 refuses equal fds */
		ret = remote_syscall(r, tid, SYS_fcntl, fd, F_SETFD, (o->flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot place fd %d: %m", r->pid, o->fd);
	return 0;
}

/* A description opened here for the first time: set it up, and keep a
 * copy when other processes share it. */
static int first_open(struct files_ctx *c, struct remote *r, pid_t tid, const struct fd_rec *o, int pidfd)
{
	int e;
	if (o->kind == FD_EPOLL && (e = epoll_restore_targets(r, tid, o)) < 0)
		return e;
	if ((o->kind == FD_REG || o->kind == FD_DIR) && o->pos) {
		long ret = remote_syscall(r, tid, SYS_lseek, o->fd, o->pos, SEEK_SET);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot seek fd %d: %m", r->pid, o->fd);
	}
	if (o->shared && (e = files_ctx_add(c, o->desc, fdpass_take(pidfd, o->fd))) < 0)
		return log_error_errno(e, "pid %d: cannot take fd %d to share it: %m", r->pid, o->fd);
	return 0;
}

int files_restore(struct files_ctx *c, struct remote *r, pid_t tid, const struct files_rec *f, int tfd, int pidfd,
		  bool root)
{
	int base = f->n ? f->fds[f->n - 1].fd + 1 : 3, e;
	/* The transport goes above every fd number the process will have. */
	long t = remote_syscall(r, tid, SYS_fcntl, tfd, F_DUPFD_CLOEXEC, base < 64 ? 64 : base);
	if (t < 0)
		return log_error_errno((int)t, "pid %d: cannot move the fd transport: %m", r->pid);
	remote_syscall(r, tid, SYS_close, tfd);
	tfd = (int)t;

	/* Pass 0 restores everything but epoll, pass 1 the epoll fds, whose
	 * watched fds must exist first. */
	for (size_t k = 0; k < 2 * f->n; k++) {
		const struct fd_rec *o = &f->fds[k % f->n];
		if ((k < f->n) == (o->kind == FD_EPOLL))
			continue;
		long fd;
		bool opened = false;
		if (o->dup_of >= 0) {
			fd = o->dup_of; /* restored before: fds are in ascending order */
		} else if (files_ctx_find(c, o->desc) >= 0 || o->kind == FD_EXTERNAL || o->kind == FD_PIPE ||
			   o->kind == FD_SOCKET) {
			fd = bring_fd(c, r, tid, o, tfd, root);
		} else if (o->deleted) {
			fd = bring_deleted(c, r, tid, o, tfd);
			opened = true;
		} else {
			fd = open_fd(r, tid, c->img, o);
			opened = true;
			if (fd < 0)
				log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", r->pid, o->fd, o->path);
		}
		if (fd < 0)
			return (int)fd;
		e = place_fd(r, tid, o, fd);
		if (fd != o->fd && o->dup_of < 0)
			remote_syscall(r, tid, SYS_close, fd);
		if (e < 0 || (opened && (e = first_open(c, r, tid, o, pidfd)) < 0))
			return e;
	}
	remote_syscall(r, tid, SYS_close, tfd);
	return 0;
}

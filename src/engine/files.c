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

#include "engine/proc.h"
#include "engine/rec.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static const char *const kind_names[FD_KIND_MAX] = { "reg", "dir", "chr", "external", "eventfd", "signalfd", "timerfd", "epoll", "pipe", "inotify" };
static const char *const safe_chr[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };

void files_rec_free(struct files_rec *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->fds[i].path);
		free(f->fds[i].data);
		free(f->fds[i].tgts);
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

static int collect_one(int procfd, pid_t pid, int fd, struct fd_rec *o)
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
	if (r < 0)
		return r;
	o->path = strdup(link);
	return o->path ? 0 : -ENOMEM;
}

/* fds made by dup() share one open file description (offset, flags):
 * kcmp tells, and restore recreates them with dup3. */
static int find_dups(pid_t pid, struct files_rec *f)
{
	for (size_t i = 0; i < f->n; i++) {
		f->fds[i].dup_of = -1;
		if (f->fds[i].kind == FD_EXTERNAL)
			continue;
		for (size_t k = 0; k < i; k++) {
			if (f->fds[k].kind != f->fds[i].kind || f->fds[k].dup_of >= 0 || !streq(f->fds[k].path, f->fds[i].path))
				continue;
			long r = syscall(SYS_kcmp, pid, pid, KCMP_FILE, f->fds[k].fd, f->fds[i].fd);
			if (r < 0)
				return log_error_errno(-errno, "pid %d: cannot compare fds %d and %d: %m", pid,
						       f->fds[k].fd, f->fds[i].fd);
			if (r == 0) {
				f->fds[i].dup_of = f->fds[k].fd;
				break;
			}
		}
	}
	return 0;
}

static int cmp_fd(const void *a, const void *b)
{
	return ((const struct fd_rec *)a)->fd - ((const struct fd_rec *)b)->fd;
}

int files_collect(int procfd, pid_t pid, struct files_rec *f)
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
		int r = collect_one(procfd, pid, fd, &f->fds[f->n]);
		if (r < 0)
			return r;
		f->n++;
	}
	qsort(f->fds, f->n, sizeof(*f->fds), cmp_fd);
	int pr = pipes_resolve(pid, f);
	if (pr < 0)
		return pr;
	for (size_t i = 0; i < f->n; i++)
		if (f->fds[i].kind == FD_EPOLL) {
			int r = epoll_check(pid, f, &f->fds[i]);
			if (r < 0)
				return r;
		}
	return find_dups(pid, f);
}

int files_dump_data(struct image *img, int procfd, pid_t pid, struct files_rec *f)
{
	int pr = pipes_dump_data(img, pid, f);
	if (pr < 0)
		return pr;
	for (size_t i = 0; i < f->n; i++) {
		struct fd_rec *o = &f->fds[i];
		char p[64], name[64];
		if (!o->deleted)
			continue;
		snprintf(p, sizeof(p), "fd/%d", o->fd);
		_cleanup_close_ int fd = openat(procfd, p, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return log_error_errno(-errno, "pid %d: cannot open deleted file of fd %d: %m", pid, o->fd);
		if ((uint64_t)st.st_size > MAX_DELETED_SIZE)
			return log_error_errno(-EFBIG, "pid %d: deleted file on fd %d is too large to save", pid, o->fd);
		_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
		if (!buf)
			return -ENOMEM;
		int r = pread_exact(fd, buf, (size_t)st.st_size, 0);
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot read deleted file of fd %d: %m", pid, o->fd);
		snprintf(name, sizeof(name), "fd-%d-%d.data", pid, o->fd);
		r = image_put(img, name, buf, (size_t)st.st_size);
		if (r < 0)
			return r;
		o->data = strdup(name);
		if (!o->data)
			return -ENOMEM;
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
		if (o->data)
			r |= json_set_str(j, "data", o->data);
		if (o->dup_of >= 0)
			r |= json_object_set_new(j, "dup_of", json_integer(o->dup_of));
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
	const char *kind, *path, *data;
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
	o->path = strdup(path);
	if (!o->path)
		return -ENOMEM;
	if (json_object_get(j, "data")) {
		if ((r = json_get_str(j, "data", &data)) < 0)
			return r;
		o->deleted = true;
		o->data = strdup(data);
		if (!o->data)
			return -ENOMEM;
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

/* Recreates a deleted file's content under its old name (or a sibling
 * name if that is taken), for the process to open before we unlink it. */
static int stage_deleted(struct image *img, const struct fd_rec *o, char *ret_path, size_t size)
{
	_cleanup_free_ void *buf = NULL;
	size_t len;
	int r = image_get(img, o->data, MAX_DELETED_SIZE, &buf, &len);
	if (r < 0)
		return r;
	size_t l = strlen(o->path) - strlen(" (deleted)");
	snprintf(ret_path, size, "%.*s", (int)l, o->path);
	int fd = open(ret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		snprintf(ret_path, size, "%.*s.stasis-%d", (int)l, o->path, o->fd);
		fd = open(ret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return log_error_errno(-errno, "cannot recreate deleted file %s: %m", ret_path);
	r = write_all(fd, buf, len);
	close(fd);
	if (r < 0) {
		unlink(ret_path);
		return log_error_errno(r, "cannot write %s: %m", ret_path);
	}
	return 0;
}

static long open_fd(struct remote *r, pid_t tid, struct image *img, const struct fd_rec *o)
{
	int flags = (int)(o->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC));
	char staged[PATH_MAX + 32];
	if (o->kind == FD_INOTIFY)
		return inotify_restore(r, tid, o);
	if (o->kind >= FD_EVENTFD)
		return anon_restore(r, tid, o);
	if (!o->deleted)
		return remote_open(r, tid, o->path, flags, 0);
	int e = stage_deleted(img, o, staged, sizeof(staged));
	if (e < 0)
		return e;
	long fd = remote_open(r, tid, staged, flags, 0);
	unlink(staged);
	return fd;
}

static int find_inherited(const struct inherit_fd *inh, size_t ninh, int target)
{
	for (size_t i = 0; i < ninh; i++)
		if (inh[i].target_fd == target)
			return inh[i].our_fd;
	return target <= 2 ? target : -1;
}

/* Moves the fds the stub inherited from us above every fd the process
 * will have, remembering where each went (moved[i] for our fd i). */
static int park_inherited(struct remote *r, pid_t tid, int base, int *moved, int nmoved)
{
	for (int i = 0; i < nmoved; i++) {
		moved[i] = -1;
		long n = remote_syscall(r, tid, SYS_fcntl, i, F_DUPFD_CLOEXEC, base);
		if (n == -EBADF)
			continue;
		if (n < 0)
			return (int)n;
		moved[i] = (int)n;
		remote_syscall(r, tid, SYS_close, i);
	}
	return 0;
}

int files_restore(struct remote *r, pid_t tid, struct image *img, const struct files_rec *f,
		  const struct inherit_fd *inh, size_t ninh, int stub_procfd)
{
	int moved[64];
	int base = f->n ? f->fds[f->n - 1].fd + 1 : 3;
	if (base < 64)
		base = 64;
	int e = park_inherited(r, tid, base, moved, 64);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot set up inherited fds: %m", r->pid);
	(void)stub_procfd;
	_cleanup_free_ struct pipe_table *pipes = pipe_table_new(f->n);
	if (!pipes)
		return -ENOMEM;

	/* Pass 0 restores everything but epoll, pass 1 the epoll fds, whose
	 * watched fds must exist first. */
	for (size_t k = 0; k < 2 * f->n; k++) {
		const struct fd_rec *o = &f->fds[k % f->n];
		if ((k < f->n) == (o->kind == FD_EPOLL))
			continue;
		long fd;
		if (o->dup_of >= 0) {
			fd = o->dup_of; /* restored before: fds are in ascending order */
		} else if (o->kind == FD_PIPE) {
			fd = pipe_restore_end(r, tid, img, f, o, pipes, base);
			if (fd < 0)
				return (int)fd;
		} else if (o->kind == FD_EXTERNAL) {
			int ours = find_inherited(inh, ninh, o->fd);
			if (ours < 0 || ours >= 64 || moved[ours] < 0)
				return log_error_errno(-EBADF, "pid %d: fd %d was %s outside the process; give it one "
						       "with --inherit-fd %d:FD", r->pid, o->fd, o->path, o->fd);
			fd = moved[ours];
		} else {
			fd = open_fd(r, tid, img, o);
			if (fd < 0)
				return log_error_errno((int)fd, "pid %d: cannot reopen fd %d (%s): %m", r->pid, o->fd,
						       o->path);
		}
		long ret = remote_syscall(r, tid, SYS_dup3, fd, o->fd, (o->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
		if (fd == o->fd && ret == -EINVAL) /* dup3 refuses equal fds */
			ret = remote_syscall(r, tid, SYS_fcntl, fd, F_SETFD, (o->flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot place fd %d: %m", r->pid, o->fd);
		if (fd != o->fd && o->kind != FD_EXTERNAL && o->kind != FD_PIPE && o->dup_of < 0)
			remote_syscall(r, tid, SYS_close, fd);
		if (o->kind == FD_EPOLL && o->dup_of < 0 && (e = epoll_restore_targets(r, tid, o)) < 0)
			return e;
		if ((o->kind == FD_REG || o->kind == FD_DIR) && o->pos && o->dup_of < 0) {
			ret = remote_syscall(r, tid, SYS_lseek, o->fd, o->pos, SEEK_SET);
			if (ret < 0)
				return log_error_errno((int)ret, "pid %d: cannot seek fd %d: %m", r->pid, o->fd);
		}
	}
	for (int i = 0; i < 64; i++)
		if (moved[i] >= 0)
			remote_syscall(r, tid, SYS_close, moved[i]);
	pipe_table_close(pipes, r, tid);
	return 0;
}

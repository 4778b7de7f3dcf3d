/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table of fd kinds and the dump side of fds: list a process's fds,
 * hand each to the first kind that takes it, save what the kinds keep,
 * and write and read the records (fds-PID.json). No kind is named here
 * but in the table (files.h says how the kinds are laid out). */
#include "engine/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/proc.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* Every kind, in the order they are tried on an fd (the first whose
 * match() takes it wins): the anonymous-inode kinds by their link text,
 * then pipes (FIFOs too) and terminals before external (a pipe or a
 * pty slave on fd 0-2 is decided once the whole tree is known), before
 * sockets and files. A new kind is one line here (anywhere, as its match() needs) for its
 * `const struct fd_ops fd_NAME_ops`. */
#define FD_KINDS(X) \
	X(path)     \
	X(eventfd)  \
	X(signalfd) \
	X(timerfd)  \
	X(epoll)    \
	X(inotify)  \
	X(pidfd)    \
	X(nsfd)     \
	X(pipe)     \
	X(ptmx)     \
	X(pts)      \
	X(tty)      \
	X(external) \
	X(socket)   \
	X(reg)      \
	X(dir)      \
	X(chr)      \
	/* the end of the list */

#define FD_KIND_DECLARE(k) extern const struct fd_ops fd_##k##_ops;
FD_KINDS(FD_KIND_DECLARE)
#define FD_KIND_ENTRY(k) &fd_##k##_ops,
static const struct fd_ops *const fd_kinds[] = { FD_KINDS(FD_KIND_ENTRY) };

const char *fd_kind_name(const struct fd_rec *o)
{
	return o->ops->name;
}

void fd_state_free(struct fd_rec *o)
{
	if (o->state && o->ops && o->ops->free)
		o->ops->free(o->state);
	free(o->state);
	o->state = NULL;
}

static void fd_rec_free(struct fd_rec *o)
{
	fd_state_free(o);
	free(o->path);
	o->path = NULL;
}

void files_rec_free(struct files_rec *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		fd_rec_free(&f->fds[i]);
	free(f->fds);
	f->fds = NULL;
	f->n = 0;
}

const struct fd_rec *files_find(const struct files_rec *f, int fd)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->fds[i].fd == fd)
			return &f->fds[i];
	return NULL;
}

int fd_state_alloc(struct fd_rec *o, size_t size)
{
	o->state = calloc(1, size);
	return o->state ? 0 : -ENOMEM;
}

int fd_kinds_link(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++) {
		int r = fd_kinds[i]->link ? fd_kinds[i]->link(v, n) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int fd_kinds_link_numbered(struct files_proc *v, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++) {
		int r = fd_kinds[i]->link_numbered ? fd_kinds[i]->link_numbered(v, n) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- collect --- */

static const struct fd_ops *find_kind(const struct fd_probe *p)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i]->match(p))
			return fd_kinds[i];
	return NULL;
}

/* No kind took the fd: say what it is. */
static int refuse(const struct fd_probe *p)
{
	const struct stat *st = p->st;
	if (!st) {
		log_error("pid %d: fd %d (%s) cannot be checkpointed yet", p->pid, p->fd, p->link);
		return -EOPNOTSUPP;
	}
	if (startswith(p->link, "anon_inode:")) {
		log_error("pid %d: fd %d is %s, which cannot be checkpointed yet", p->pid, p->fd, p->link + 11);
		return -EOPNOTSUPP;
	}
	const char *what = S_ISFIFO(st->st_mode)  ? "a pipe or FIFO"
			   : S_ISSOCK(st->st_mode) ? "a socket"
			   : fd_stat_is_tty(st)    ? "a terminal"
			   : S_ISCHR(st->st_mode)  ? "a character device"
			   : S_ISBLK(st->st_mode)  ? "a block device"
						   : "a special file";
	log_error("pid %d: fd %d (%s) is %s, which cannot be checkpointed yet", p->pid, p->fd, p->link, what);
	return -EOPNOTSUPP;
}

static int collect_one(int procfd, pid_t pid, int fd, unsigned flags, struct fd_rec *o)
{
	char p[64], link[PATH_MAX];
	struct stat st;
	struct fdinfo fi;
	_cleanup_free_ char *buf = NULL;
	size_t len;

	snprintf(p, sizeof(p), "fd/%d", fd);
	ssize_t l = readlinkat(procfd, p, link, sizeof(link) - 1);
	/* stasis check freezes nothing: an fd closed since the listing is
	 * simply not there any more, not something a dump would refuse. */
	if (l < 0 && errno == ENOENT && (flags & FILES_CHECK))
		return -ENOENT;
	if (l < 0)
		return log_error_errno(-errno, "pid %d: cannot read fd %d: %m", pid, fd);
	link[l] = 0;
	/* anon_inode:[eventfd] and friends cannot be stat'ed by path in
	 * every case: their kinds go by the link text. */
	struct fd_probe pr = { .procfd = procfd, .pid = pid, .fd = fd, .link = link,
			       .st = fstatat(procfd, p, &st, 0) == 0 ? &st : NULL, .flags = flags };
	/* Read first: some kinds go by the open flags (O_PATH). */
	snprintf(p, sizeof(p), "fdinfo/%d", fd);
	int r = proc_read(procfd, p, &buf, &len);
	if (r == -ENOENT && (flags & FILES_CHECK))
		return r;
	if (r < 0 || (r = proc_parse_fdinfo(buf, len, &fi)) < 0)
		return log_error_errno(r, "pid %d: cannot read fdinfo of fd %d: %m", pid, fd);
	pr.fdinfo = buf;
	pr.fdinfo_len = len;
	pr.open_flags = fi.flags;
	const struct fd_ops *ops = find_kind(&pr);
	if (!ops)
		return refuse(&pr);
	*o = (struct fd_rec){ .fd = fd, .ops = ops, .flags = fi.flags, .pos = fi.pos, .dup_of = -1 };
	if (ops->collect && (r = ops->collect(&pr, o)) < 0) {
		fd_rec_free(o);
		return r;
	}
	o->path = strdup(link);
	if (!o->path) {
		fd_rec_free(o);
		return -ENOMEM;
	}
	return 0;
}

int files_collect_fd(int procfd, pid_t pid, int fd, unsigned flags, struct fd_rec *o)
{
	return collect_one(procfd, pid, fd, flags, o);
}

static int cmp_fd(const void *a, const void *b)
{
	return ((const struct fd_rec *)a)->fd - ((const struct fd_rec *)b)->fd;
}

static int grow(struct files_rec *f, size_t *cap, pid_t pid)
{
	if (f->n < *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	if (n > MAX_FDS)
		return log_error_errno(-E2BIG, "pid %d: too many fds", pid);
	struct fd_rec *p = realloc(f->fds, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	f->fds = p;
	*cap = n;
	return 0;
}

int files_collect(int procfd, pid_t pid, unsigned flags, struct files_rec *f)
{
	int dfd = openat(procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;
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
		if ((r = grow(f, &cap, pid)) < 0)
			return r;
		if ((r = collect_one(procfd, pid, fd, flags, &f->fds[f->n])) < 0 && !(flags & FILES_CHECK))
			return r;
		if (r >= 0)
			f->n++;
	}
	qsort(f->fds, f->n, sizeof(*f->fds), cmp_fd);
	if ((r = fd_owners_collect(pid, f)) < 0)
		return r;
	for (size_t i = 0; i < f->n; i++) {
		const struct fd_rec *o = &f->fds[i];
		if (o->ops->check && (r = o->ops->check(pid, f, o)) < 0 && !(flags & FILES_CHECK))
			return r;
	}
	return 0;
}

/* --- data --- */

int fd_dump_take(struct fd_dump *d, int fd)
{
	if (d->pidfd < 0 && (d->pidfd = sys_pidfd_open(d->pid, 0)) < 0) {
		d->pidfd = -1;
		return log_error_errno(-errno, "pid %d: cannot open a pidfd: %m", d->pid);
	}
	int r = (int)syscall(SYS_pidfd_getfd, d->pidfd, fd, 0);
	if (r < 0)
		return log_error_errno(-errno, "pid %d: cannot take a copy of fd %d: %m", d->pid, fd);
	return r;
}

int files_dump_data(struct image *img, int procfd, pid_t pid, struct files_rec *f)
{
	struct fd_dump d = { .img = img, .procfd = procfd, .pid = pid, .f = f, .pidfd = -1 };
	int r = 0;
	for (size_t i = 0; i < f->n && r >= 0; i++)
		if (f->fds[i].ops->dump_data)
			r = f->fds[i].ops->dump_data(&d, &f->fds[i]);
	if (d.pidfd >= 0)
		close(d.pidfd);
	return r;
}

/* --- records --- */

void fd_anon_to_json(struct json_builder *b, const struct fd_anon *a)
{
	static const struct fd_anon zero;
	jb_hex(b, "anon", a ? a : &zero, sizeof(*a));
}

int fd_anon_from_json(const json_t *j, struct fd_anon *ret)
{
	struct fd_anon a;
	int r = json_get_hex(j, "anon", &a, sizeof(a));
	if (r >= 0 && ret)
		*ret = a;
	return r;
}

int fd_anon_collect(const struct fd_probe *p, struct fd_rec *o,
		    int (*parse)(const char *buf, size_t len, struct fd_anon *ret))
{
	int r = fd_state_alloc(o, sizeof(struct fd_anon));
	if (r < 0)
		return r;
	if ((r = parse(p->fdinfo, p->fdinfo_len, o->state)) < 0)
		return log_error_errno(r, "pid %d: cannot parse the state of fd %d (%s): %m", p->pid, p->fd, p->link);
	return 0;
}

void fd_anon_state_to_json(const struct fd_rec *o, struct json_builder *b)
{
	fd_anon_to_json(b, o->state);
}

int fd_anon_state_from_json(const json_t *j, struct fd_rec *o)
{
	int r = fd_state_alloc(o, sizeof(struct fd_anon));
	return r < 0 ? r : fd_anon_from_json(j, o->state);
}

void fd_json_append(struct json_builder *b, json_t *array, struct json_builder *item)
{
	json_t *v = NULL;
	int r = jb_end(item, &v);
	if (r < 0)
		jb_fail(b, jb_key(item), r);
	else
		jb_append(b, array, v);
}

static int fd_to_json(const struct fd_rec *o, json_t **ret)
{
	struct json_builder b;
	jb_begin(&b);
	jb_int(&b, "fd", o->fd);
	jb_str(&b, "kind", o->ops->name);
	jb_str(&b, "path", o->path);
	jb_i64(&b, "flags", o->flags);
	jb_u64(&b, "pos", o->pos);
	if (o->dup_of >= 0)
		jb_int(&b, "dup_of", o->dup_of);
	jb_u64(&b, "desc", o->desc);
	if (o->shared)
		jb_bool(&b, "shared", true);
	if (o->ops->to_json)
		o->ops->to_json(o, &b);
	fd_owner_to_json(o, &b);
	int r = jb_end(&b, ret);
	if (r < 0)
		return log_error_errno(r, "cannot write the record of fd %d (%s): field '%s': %m", o->fd, o->path,
				       jb_key(&b));
	return 0;
}

int files_to_json(const struct files_rec *f, json_t **ret)
{
	_cleanup_json_ json_t *a = json_array();
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < f->n; i++) {
		json_t *j;
		int r = fd_to_json(&f->fds[i], &j);
		if (r < 0)
			return r;
		if (json_array_append_new(a, j) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(a);
	return 0;
}

static const struct fd_ops *kind_by_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (streq(fd_kinds[i]->name, name))
			return fd_kinds[i];
	return NULL;
}

static int fd_from_json(const json_t *j, struct fd_rec *o)
{
	const char *kind, *path;
	int r, flags;

	o->dup_of = -1;
	if ((r = json_get_int(j, "fd", &o->fd)) < 0 || (r = json_get_str(j, "kind", &kind)) < 0 ||
	    (r = json_get_str(j, "path", &path)) < 0 || (r = json_get_int(j, "flags", &flags)) < 0 ||
	    (r = json_get_u64(j, "pos", &o->pos)) < 0)
		return r;
	if (o->fd < 0 || o->fd >= MAX_FDS || strlen(path) >= PATH_MAX || !(o->ops = kind_by_name(kind)))
		return -EBADMSG;
	o->flags = (uint32_t)flags;
	if (json_object_get(j, "dup_of") && ((r = json_get_int(j, "dup_of", &o->dup_of)) < 0 || o->dup_of < 0 ||
					     o->dup_of >= o->fd))
		return -EBADMSG;
	if ((r = json_get_u64(j, "desc", &o->desc)) < 0 || o->desc == 0)
		return -EBADMSG;
	o->shared = json_is_true(json_object_get(j, "shared"));
	if (!(o->path = strdup(path)))
		return -ENOMEM;
	if ((r = fd_owner_from_json(j, o)) < 0)
		return r;
	return o->ops->from_json ? o->ops->from_json(j, o) : 0;
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

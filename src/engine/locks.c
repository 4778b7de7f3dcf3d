/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File locks. fdinfo lists, on "lock:" lines, the locks taken through that
 * fd's open file description:
 *     lock:	1: POSIX  ADVISORY  WRITE 649 fe:00:10953079 10 29
 *     lock:	2: FLOCK  ADVISORY  WRITE 649 fe:00:10953078 0 EOF
 *     lock:	3: OFDLCK ADVISORY  WRITE -1 fe:00:10953080 0 4
 * (range ends are inclusive). Restore takes each lock again, without
 * waiting, on the same fd: flock(LOCK_NB), fcntl(F_SETLK), fcntl(F_OFD_SETLK).
 * The dumped process is gone by then (or its locks would conflict, which
 * is reported as such); a lock someone else took in between is too. */
#include "engine/locks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>

#include "engine/proc.h"
#include "image/json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37
#endif

static const char *const kind_names[] = { "flock", "posix", "ofd" };

void locks_rec_free(struct locks_rec *l)
{
	if (!l)
		return;
	free(l->l);
	l->l = NULL;
	l->n = 0;
}

static int append(struct locks_rec *l, const struct file_lock_rec *x)
{
	if (l->n >= MAX_FILE_LOCKS)
		return -E2BIG;
	/* Grows in powers of two: realloc when n is 0 or a power of two. */
	if ((l->n & (l->n - 1)) == 0) {
		size_t cap = l->n ? l->n * 2 : 4;
		struct file_lock_rec *n = realloc(l->l, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->l = n;
	}
	l->l[l->n++] = *x;
	return 0;
}

/* One "lock:" line, after the tab. 1 when it is a lock to keep, 0 to skip. */
static int parse_line(const char *s, int fd, pid_t pid, struct file_lock_rec *ret)
{
	char kind[16], adv[16], type[16], devino[64], end[32];
	unsigned long long start;
	int id, owner, n = 0;

	if (sscanf(s, "%d: %n", &id, &n) != 1 || n == 0)
		return -EBADMSG;
	s += n;
	if (startswith(s, "->"))
		return 0; /* waiting for a lock, not holding it */
	if (sscanf(s, "%15s %15s %15s %d %63s %llu %31s", kind, adv, type, &owner, devino, &start, end) != 7)
		return -EBADMSG;
	struct file_lock_rec x = { .fd = fd, .start = start };
	if (streq(kind, "FLOCK"))
		x.kind = LOCK_KIND_FLOCK, x.start = 0;
	else if (streq(kind, "POSIX"))
		x.kind = LOCK_KIND_POSIX;
	else if (streq(kind, "OFDLCK"))
		x.kind = LOCK_KIND_OFD;
	else if (streq(kind, "ACCESS"))
		return 0; /* transient, taken by the kernel for a moment */
	else
		return -EOPNOTSUPP; /* LEASE, DELEG, LAYOUT... */
	if (streq(type, "WRITE"))
		x.write = true;
	else if (!streq(type, "READ"))
		return -EBADMSG;
	if (x.kind == LOCK_KIND_POSIX && owner != pid)
		return 0; /* another process's (sharing the files table) */
	if (x.kind != LOCK_KIND_FLOCK && !streq(end, "EOF")) {
		uint64_t e;
		if (parse_u64(end, 10, &e) < 0 || e < start || e == UINT64_MAX)
			return -EBADMSG;
		x.len = e - start + 1;
	}
	*ret = x;
	return 1;
}

int locks_parse_fdinfo(const char *buf, size_t len, int fd, pid_t pid, struct locks_rec *l)
{
	size_t pos = 0;
	char line[512];
	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		struct file_lock_rec x;
		if (!startswith(line, "lock:"))
			continue;
		int r = parse_line(line + 5 + strspn(line + 5, " \t"), fd, pid, &x);
		if (r < 0)
			return r;
		if (r > 0 && (r = append(l, &x)) < 0)
			return r;
	}
	return 0;
}

int locks_collect(int procfd, pid_t pid, const struct files_rec *f, struct locks_rec *l)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct fd_rec *o = &f->fds[i];
		_cleanup_free_ char *buf = NULL;
		size_t len;
		char p[64];
		/* A dup shows the same locks as the fd it duplicates. */
		if (o->dup_of >= 0 || fd_is_external(o))
			continue;
		snprintf(p, sizeof(p), "fdinfo/%d", o->fd);
		int r = proc_read(procfd, p, &buf, &len);
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot read fdinfo of fd %d: %m", pid, o->fd);
		r = locks_parse_fdinfo(buf, len, o->fd, pid, l);
		if (r == -EOPNOTSUPP)
			return log_error_errno(r, "pid %d: fd %d (%s) holds a lease or delegation, which cannot be "
					       "checkpointed yet", pid, o->fd, o->path);
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot read the file locks of fd %d (%s): %m", pid, o->fd,
					       o->path);
	}
	return 0;
}

void locks_to_json(const struct locks_rec *l, struct json_builder *core)
{
	json_t *a = jb_array(core, "file_locks");
	for (size_t i = 0; a && i < l->n; i++) {
		const struct file_lock_rec *x = &l->l[i];
		struct json_builder o;
		jb_begin(&o);
		jb_int(&o, "fd", x->fd);
		jb_str(&o, "kind", kind_names[x->kind]);
		jb_str(&o, "type", x->write ? "write" : "read");
		jb_u64(&o, "start", x->start);
		jb_u64(&o, "len", x->len);
		jb_append_obj(core, a, &o);
	}
}

static int lock_from_json(const json_t *o, struct file_lock_rec *x)
{
	const char *kind, *type;
	int r;
	if ((r = json_get_int(o, "fd", &x->fd)) < 0 || (r = json_get_str(o, "kind", &kind)) < 0 ||
	    (r = json_get_str(o, "type", &type)) < 0 || (r = json_get_u64(o, "start", &x->start)) < 0 ||
	    (r = json_get_u64(o, "len", &x->len)) < 0)
		return r;
	if (x->fd < 0 || x->fd >= MAX_FDS || x->start > INT64_MAX || x->len > INT64_MAX ||
	    x->start + x->len > (uint64_t)INT64_MAX)
		return -EBADMSG;
	if (streq(type, "write"))
		x->write = true;
	else if (!streq(type, "read"))
		return -EBADMSG;
	for (size_t k = 0; k < ARRAY_SIZE(kind_names); k++)
		if (streq(kind, kind_names[k])) {
			x->kind = (enum lock_kind)k;
			return 0;
		}
	return -EBADMSG;
}

int locks_from_json(const json_t *core, struct locks_rec *l)
{
	json_t *a;
	int r;
	memset(l, 0, sizeof(*l));
	if (!json_object_get(core, "file_locks"))
		return 0; /* written before locks were saved: none */
	if ((r = json_get_array(core, "file_locks", MAX_FILE_LOCKS, &a)) < 0)
		return r;
	size_t n = json_array_size(a);
	l->l = calloc(n ? n : 1, sizeof(*l->l));
	if (!l->l)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		l->n = i + 1;
		if ((r = lock_from_json(json_array_get(a, i), &l->l[i])) < 0)
			return r;
	}
	return 0;
}

static long take(struct remote *r, pid_t pid, const struct file_lock_rec *x)
{
	if (x->kind == LOCK_KIND_FLOCK)
		return remote_syscall(r, pid, SYS_flock, x->fd, (x->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
	uint64_t at = r->scratch + 8192;
	struct flock fl = { .l_type = x->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
			    .l_start = (off_t)x->start, .l_len = (off_t)x->len };
	int e = remote_write(r, at, &fl, sizeof(fl));
	if (e < 0)
		return e;
	return remote_syscall(r, pid, SYS_fcntl, x->fd, x->kind == LOCK_KIND_OFD ? F_OFD_SETLK : F_SETLK, at);
}

int locks_restore(struct remote *r, pid_t pid, const struct locks_rec *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct file_lock_rec *x = &l->l[i];
		long ret = take(r, pid, x);
		if (ret == -EAGAIN || ret == -EACCES)
			return log_error_errno(-EBUSY, "pid %d: the %s %s lock on fd %d (from %llu, %llu bytes, 0: to "
					       "the end) is held by another process now; release it and restore again",
					       pid, kind_names[x->kind], x->write ? "write" : "read", x->fd,
					       (unsigned long long)x->start, (unsigned long long)x->len);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot take the %s lock on fd %d again: %m", pid,
					       kind_names[x->kind], x->fd);
	}
	return 0;
}

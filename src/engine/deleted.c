/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/deleted.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/files.h"
#include "engine/fsroot.h"
#include "util/log.h"
#include "util/util.h"

#define SUFFIX " (deleted)"

bool path_deleted(const char *link)
{
	size_t l = strlen(link), k = strlen(SUFFIX);
	return l > k && streq(link + l - k, SUFFIX);
}

/* Creates and opens one object of type at p; -EEXIST when p is taken. */
static int create_at(const char *p, mode_t type)
{
	int fd;
	if (S_ISREG(type))
		return (fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 ? -errno : fd;
	if ((S_ISDIR(type) ? mkdir(p, 0700) : mkfifo(p, 0600)) < 0)
		return -errno;
	fd = open(p, (S_ISDIR(type) ? O_RDONLY | O_DIRECTORY : O_RDWR | O_NONBLOCK) | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	if (S_ISDIR(type) ? rmdir(p) : unlink(p))
		log_warn("cannot remove %s, made for a restore: %m", p);
	return fd;
}

/* At base, or at base.stasis-N when base is taken; unnamed at once. */
static int create_unnamed(const char *base, mode_t type)
{
	char p[PATH_MAX + 96];
	snprintf(p, sizeof(p), "%s", base);
	int fd = create_at(p, type);
	for (int i = 0; fd == -EEXIST && i < 100; i++) {
		snprintf(p, sizeof(p), "%s.stasis-%d", base, i);
		fd = create_at(p, type);
	}
	if (fd >= 0 && S_ISREG(type) && unlink(p) < 0)
		log_warn("cannot remove %s, made for a restore: %m", p);
	return fd;
}

/* The deepest directory above p that still exists, cut in place. */
static bool existing_parent(char *p)
{
	struct stat st;
	for (char *s = strrchr(p, '/'); s && s > p; s = strrchr(p, '/')) {
		*s = 0;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			return true;
	}
	return false;
}

/* The directory is gone: an unnamed one in the deepest directory left. */
static int make_elsewhere(char *p, mode_t type)
{
	int fd = -ENOENT;
	if (existing_parent(p)) {
		size_t l = strlen(p);
		if (S_ISREG(type))
			return (fd = open(p, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0 ? -errno : fd;
		snprintf(p + l, PATH_MAX + 64 - l, "/.stasis-%d", (int)getpid());
		fd = create_unnamed(p, type);
	}
	return fd;
}

/* Where no directory takes it: the same kind of object without a
 * filesystem (a memfd is what a deleted file is to its reader). */
static int make_anywhere(mode_t type)
{
	int p[2], fd;
	if (S_ISREG(type))
		return (fd = memfd_create("stasis-deleted", MFD_CLOEXEC)) < 0 ? -errno : fd;
	if (!S_ISFIFO(type) || pipe2(p, O_CLOEXEC) < 0)
		return S_ISFIFO(type) ? -errno : -ENOENT;
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", p[0]);
	fd = open(self, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int e = errno;
	close(p[0]);
	close(p[1]);
	return fd < 0 ? -e : fd;
}

/* Makes the missing directories above p (the deepest existing one being
 * `have` bytes long), creates the object, and removes them again, so that
 * /proc shows the very path it showed. */
static int make_through(const char *p, size_t have, mode_t type)
{
	char d[PATH_MAX + 64];
	snprintf(d, sizeof(d), "%s", p);
	char *last = strrchr(d, '/');
	int fd = -ENOENT;
	size_t made = have;
	for (char *s = strchr(d + have + 1, '/'); s && s <= last; s = s == last ? NULL : strchr(s + 1, '/')) {
		*s = 0;
		int e = mkdir(d, 0700) < 0 ? -errno : 0;
		*s = '/';
		if (e < 0)
			break;
		made = (size_t)(s - d);
	}
	if (made == (size_t)(last - d))
		fd = create_unnamed(p, type);
	while (made > have) {
		d[made] = 0;
		if (rmdir(d) < 0)
			log_warn("cannot remove %s, made for a restore: %m", d);
		made = (size_t)(strrchr(d, '/') - d);
	}
	return fd;
}

int deleted_make(const char *fsroot, const char *path, mode_t type)
{
	char name[PATH_MAX], p[PATH_MAX + 64];
	size_t l = strlen(path);
	if (!path_deleted(path) || path[0] != '/')
		return -EINVAL;
	snprintf(name, sizeof(name), "%.*s", (int)(l - strlen(SUFFIX)), path);
	if (!fsroot_path(fsroot, name, p, sizeof(p)))
		return -ENAMETOOLONG;
	int fd = create_unnamed(p, type);
	if (fd != -ENOENT && fd != -ENOTDIR)
		return fd; /* made, or a failure no other place would mend */
	char up[PATH_MAX + 64];
	snprintf(up, sizeof(up), "%s", p);
	if (existing_parent(up) && (fd = make_through(p, strlen(up), type)) >= 0)
		return fd;
	fd = make_elsewhere(p, type);
	if (fd < 0)
		fd = make_anywhere(type);
	if (fd >= 0)
		log_debug("%s: its directory is gone too; made without a name elsewhere", path);
	return fd;
}

/* Keys of removed working directories in the made table: bit 60 and a
 * hash of the path (FNV-1a). */
static uint64_t cwd_key(const char *cwd)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = cwd; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return (1ULL << 60) | (h & ((1ULL << 60) - 1));
}

int deleted_restore_cwd(struct files_ctx *c, struct remote *r, pid_t tid, int tfd, const char *cwd)
{
	uint64_t key = cwd_key(cwd);
	int e = 0;
	if (files_ctx_find(c, key) < 0 && (e = files_ctx_add(c, key, deleted_make(c->fsroot, cwd, S_IFDIR))) < 0)
		return log_error_errno(e, "pid %d: cannot make its removed working directory %s again: %m", r->pid,
				       cwd);
	long fd = fdpass_push(r, tid, c->ctl, tfd, files_ctx_find(c, key));
	long ret = fd < 0 ? fd : remote_syscall(r, tid, SYS_fchdir, fd);
	if (fd >= 0)
		remote_syscall(r, tid, SYS_close, fd);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot enter its removed working directory %s: %m", r->pid,
				       cwd);
	return 0;
}

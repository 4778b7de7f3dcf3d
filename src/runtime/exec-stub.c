/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restore stub as a container's first process, with the container's
 * configuration left as it was (DESIGN.md §5a). Before the first start the
 * stub is put into the container's writable layer (the overlay upper
 * directory) at the very path the runtime will execute: argv[0], looked up
 * in PATH the way runc does, in the container's merged root (seen through a
 * read-only overlay of its layers that we mount for the purpose). Once the
 * stub runs, the path gets back what it held: it is removed through the
 * container's own overlay, which forgets the name (the kernel unhashes an
 * overlay dentry it removes), and the upper directory is given back its
 * entry as the saved changes had it (nothing, or the container's own
 * version of the file, kept aside meanwhile). A restart then runs the
 * original application, and the restored processes map the original
 * files. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* What Docker puts in an environment without PATH. */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int open_in(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve };
	long fd = syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* A file the runtime would execute: what Go's exec.LookPath accepts. */
static bool executable(int rootfd, const char *path)
{
	_cleanup_close_ int fd = open_in(rootfd, path, O_PATH, RESOLVE_IN_ROOT);
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111);
}

/* argv[0] as runc finds it: a path as it is (relative to the working
 * directory), a bare name in each directory of PATH in turn. */
static int look_path(int rootfd, const struct rt_exec_args *a, char *buf, size_t size)
{
	if (strchr(a->arg0, '/')) {
		snprintf(buf, size, "%s/%s", a->arg0[0] == '/' ? "" : a->cwd, a->arg0);
		return executable(rootfd, buf) ? 0 : -ENOENT;
	}
	const char *p = a->path ? a->path : DEFAULT_PATH;
	while (p) {
		const char *end = strchr(p, ':');
		int len = end ? (int)(end - p) : (int)strlen(p);
		if (len == 0)
			snprintf(buf, size, "%s/%s", a->cwd, a->arg0);
		else
			snprintf(buf, size, "%.*s/%s", len, p, a->arg0);
		if (executable(rootfd, buf))
			return 0;
		p = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* The directory of path, symlinks resolved in the root, as a path relative
 * to the root; and path's last component. */
static int split_real(int rootfd, const char *mnt, const char *path, struct rt_exec_stub *s)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], link[64], real[PATH_MAX];
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	snprintf(s->name, sizeof(s->name), "%s", slash + 1);
	if (!*s->name || streq(s->name, ".") || streq(s->name, ".."))
		return -EINVAL;
	_cleanup_close_ int fd = open_in(rootfd, dir, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT);
	if (fd < 0)
		return fd;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, real, sizeof(real) - 1);
	if (n < 0)
		return -errno;
	real[n] = 0;
	size_t ml = strlen(mnt);
	if (strncmp(real, mnt, ml) || (real[ml] && real[ml] != '/'))
		return -EXDEV;
	snprintf(s->dir, sizeof(s->dir), "%s", real[ml] ? real + ml + 1 : "");
	return 0;
}

#define MAX_DEPTH 64

/* The directories on the way to s->dir as the merged root shows them:
 * the root, then each one below; ends[i] is where the i-th one's path ends
 * in s->dir. */
struct way {
	size_t n;
	size_t ends[MAX_DEPTH];
	struct stat st[MAX_DEPTH];
};

static int way_add(int rootfd, const char *dir, size_t end, struct way *w)
{
	char part[PATH_MAX];
	if (w->n == MAX_DEPTH)
		return -ENAMETOOLONG;
	snprintf(part, sizeof(part), "%.*s", (int)end, dir);
	_cleanup_close_ int fd = open_in(rootfd, part, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
	if (fd < 0 || fstat(fd, &w->st[w->n]) < 0)
		return fd < 0 ? fd : -errno;
	w->ends[w->n++] = end;
	return 0;
}

/* dir is canonical (from the kernel): no "//", no trailing "/". */
static int way_read(int rootfd, const char *dir, struct way *w)
{
	size_t len = strlen(dir);
	w->n = 0;
	int r = way_add(rootfd, dir, 0, w);
	for (size_t i = 1; r >= 0 && i <= len; i++)
		if (i == len || dir[i] == '/')
			r = way_add(rootfd, dir, i, w);
	return r;
}

/* The directories on the way that the upper layer lacks are made there as
 * the merged root shows them (owner, mode). Returns an fd of the upper
 * layer's s->dir. */
static int upper_dirs(int upperfd, const char *dir, const struct way *w)
{
	int fd = fcntl(upperfd, F_DUPFD_CLOEXEC, 3);
	for (size_t k = 1; fd >= 0 && k < w->n; k++) {
		size_t from = w->ends[k - 1] + (k > 1);
		char comp[NAME_MAX + 1];
		snprintf(comp, sizeof(comp), "%.*s", (int)(w->ends[k] - from), dir + from);
		const struct stat *st = &w->st[k];
		int e = 0;
		if (mkdirat(fd, comp, st->st_mode & 07777) == 0)
			e = fchownat(fd, comp, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
		else if (errno != EEXIST)
			e = -errno;
		int next = e < 0 ? e : open_in(fd, comp, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
		close(fd);
		fd = next;
	}
	return fd;
}

/* Every directory on the way gets back the times the merged root showed:
 * an overlay directory shows its upper one's, which our changes moved. */
static int way_times(int upperfd, const char *dir, const struct way *w)
{
	for (size_t k = w->n; k-- > 0;) {
		char part[PATH_MAX];
		snprintf(part, sizeof(part), "%.*s", (int)w->ends[k], dir);
		_cleanup_close_ int fd = open_in(upperfd, part, O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
		struct timespec t[2] = { w->st[k].st_atim, w->st[k].st_mtim };
		if (fd < 0 || futimens(fd, t) < 0)
			return fd < 0 ? fd : -errno;
	}
	return 0;
}

static int copy_stub(const char *stub, int dirfd, const char *name)
{
	_cleanup_close_ int in = open(stub, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
	char buf[65536];
	if (in < 0 || out < 0)
		return -errno;
	for (ssize_t n; (n = read(in, buf, sizeof(buf))) != 0;) {
		int r = n < 0 ? -errno : write_all(out, buf, (size_t)n);
		if (r < 0)
			return r;
	}
	return fchmod(out, 0755) < 0 ? -errno : 0;
}

/* The upper directory's parent (the layer's own directory, on the same
 * file system) keeps the entry the stub hides; Docker removes it with the
 * layer should the restore fail. */
static int layer_dir(const char *upper)
{
	char d[PATH_MAX];
	snprintf(d, sizeof(d), "%s/..", upper);
	int fd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int place(const struct rt_exec_args *a, const char *upper, const char *stub, const char *mnt,
		 struct rt_exec_stub *s)
{
	char path[PATH_MAX];
	struct way w;
	_cleanup_close_ int rootfd = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int upperfd = open(upper, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int layerfd = layer_dir(upper);
	if (rootfd < 0 || upperfd < 0 || layerfd < 0)
		return log_error_errno(-errno, "cannot open the container's layers (%s): %m", upper);
	int r = look_path(rootfd, a, path, sizeof(path));
	if (r < 0)
		return log_error_errno(r, "the container's command '%s' is not an executable file in its image", a->arg0);
	if ((r = split_real(rootfd, mnt, path, s)) < 0 || (r = way_read(rootfd, s->dir, &w)) < 0)
		return log_error_errno(r, "cannot resolve %s in the container's root: %m", path);
	_cleanup_close_ int fd = upper_dirs(upperfd, s->dir, &w);
	struct stat st;
	if (fd >= 0 && fstatat(fd, s->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(s->saved, sizeof(s->saved), "stasis-saved-%d", getpid());
		r = renameat(fd, s->name, layerfd, s->saved) < 0 ? -errno : 0;
	}
	if (fd < 0 || r < 0 || (r = copy_stub(stub, fd, s->name)) < 0 || (r = way_times(upperfd, s->dir, &w)) < 0)
		return log_error_errno(fd < 0 ? fd : r, "cannot put the restore stub at /%s/%s in %s: %m", s->dir,
				       s->name, upper);
	s->times[0] = w.st[w.n - 1].st_atim;
	s->times[1] = w.st[w.n - 1].st_mtim;
	log_debug("the restore stub is the container's /%s%s%s", s->dir, *s->dir ? "/" : "", s->name);
	return 0;
}

/* In a mount namespace of its own: the container's layers, the upper one
 * on top, as a read-only overlay, where the command is looked up. */
static int place_child(const struct rt_exec_args *a, const char *upper, const char *lowers, const char *stub,
		       struct rt_exec_stub *s)
{
	char mnt[] = "/run/stasis-root-XXXXXX", opts[4096];
	int n = snprintf(opts, sizeof(opts), "lowerdir=%s%s%s", upper, *lowers ? ":" : "", lowers);
	if (n < 0 || (size_t)n >= sizeof(opts))
		return log_error_errno(-E2BIG, "the container's image has too many layers to look its command up");
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || !mkdtemp(mnt))
		return log_error_errno(-errno, "cannot make a mount namespace to look the command up: %m");
	int r = mount("overlay", mnt, "overlay", MS_RDONLY, opts) < 0 ? -errno : 0;
	if (r < 0)
		log_error_errno(r, "cannot mount the container's layers (%s): %m", upper);
	else {
		r = place(a, upper, stub, mnt, s);
		umount(mnt);
	}
	rmdir(mnt);
	return r;
}

int rt_exec_stub_place(const struct rt_exec_args *a, const char *upper, const char *lowers, const char *stub,
		       struct rt_exec_stub *ret)
{
	struct rt_exec_stub *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return -errno;
	memset(s, 0, sizeof(*s));
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(place_child(a, upper, lowers, stub, s) < 0 ? 1 : 0);
	int r = pid < 0 ? -errno : rt_wait(pid);
	if (r >= 0)
		*ret = *s;
	munmap(s, sizeof(*s));
	return r;
}

/* The runtime has executed the stub: the container's first process runs
 * the file at the path (runc's own init runs until then). */
static int wait_exec(pid_t pid, const struct rt_exec_stub *s, int *ret_dirfd)
{
	char proc[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(proc, sizeof(proc), "/proc/%d/root", pid);
		_cleanup_close_ int root = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
		int dfd = root < 0 ? -1 : open_in(root, s->dir, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
		struct stat exe, at;
		snprintf(proc, sizeof(proc), "/proc/%d/exe", pid);
		if (dfd >= 0 && stat(proc, &exe) == 0 && fstatat(dfd, s->name, &at, AT_SYMLINK_NOFOLLOW) == 0 &&
		    exe.st_dev == at.st_dev && exe.st_ino == at.st_ino) {
			*ret_dirfd = dfd;
			return 0;
		}
		if (dfd >= 0)
			close(dfd);
		if (kill(pid, 0) < 0)
			return -ESRCH;
		usleep(5000);
	}
	return -ETIMEDOUT;
}

int rt_exec_stub_unplace(const struct rt_exec_stub *s, const char *upper, pid_t pid)
{
	_cleanup_close_ int dfd = -1;
	int r = wait_exec(pid, s, &dfd);
	if (r < 0)
		return log_error_errno(r, "the container's first process (pid %d) did not run the restore stub: %m", pid);
	/* Through the container's overlay: it forgets the name it resolved. */
	if (unlinkat(dfd, s->name, 0) < 0)
		return log_error_errno(-errno, "cannot remove the restore stub /%s/%s from the container: %m", s->dir,
				       s->name);
	_cleanup_close_ int upperfd = open(upper, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int layerfd = layer_dir(upper);
	_cleanup_close_ int ufd = upperfd < 0 ? -errno
					      : open_in(upperfd, s->dir, O_RDONLY | O_DIRECTORY,
							RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
	struct stat st;
	r = ufd < 0 ? ufd : layerfd < 0 ? layerfd : 0;
	/* The overlay hid the image's file with a whiteout: not ours to keep. */
	if (r >= 0 && fstatat(ufd, s->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
	    st.st_rdev == makedev(0, 0) && unlinkat(ufd, s->name, 0) < 0)
		r = -errno;
	if (r >= 0 && s->saved[0] && renameat(layerfd, s->saved, ufd, s->name) < 0)
		r = -errno;
	if (r >= 0 && futimens(ufd, s->times) < 0)
		r = -errno;
	if (r < 0)
		return log_error_errno(r, "cannot give the container's /%s/%s back its file: %m", s->dir, s->name);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unix sockets bound to relative paths. The kernel keeps the name as it
 * was given to bind(), resolved against the binder's current directory
 * at that time, which it does not keep. At dump the process' current
 * directory is taken when the socket file is there (same inode as
 * sock_diag's); at restore the name is bound (or connected to) from that
 * directory, in a child that changes its directory, so that the name
 * the socket shows stays the relative one and the restorer's own
 * directory is left alone. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/sockets.h"
#include "util/cleanup.h"

int sk_unix_find_dir(pid_t pid, const struct sk_addr *a, uint32_t vfs_ino, char **ret)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
	char link[64], cwd[PATH_MAX], p[2 * PATH_MAX];
	struct stat st;

	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n <= 0 || cwd[0] != '/')
		return -ENOENT;
	cwd[n] = 0;
	size_t len = strnlen(un->sun_path, a->len - offsetof(struct sockaddr_un, sun_path));
	snprintf(p, sizeof(p), "/proc/%d/root%s/%.*s", pid, cwd, (int)len, un->sun_path);
	if (lstat(p, &st) < 0 || !S_ISSOCK(st.st_mode) || (vfs_ino && st.st_ino != vfs_ino))
		return -ENOENT;
	char *d = strdup(cwd);
	if (!d)
		return -ENOMEM;
	*ret = d;
	return 0;
}

int sk_unix_abs(const char *dir, const struct sk_addr *a, char *buf, size_t size)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
	size_t len = strnlen(un->sun_path, a->len - offsetof(struct sockaddr_un, sun_path));
	int n = snprintf(buf, size, "%s/%.*s", dir, (int)len, un->sun_path);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* In the child: no allocation, no locks. */
static int child(const char *dir, int fd, const struct sk_addr *a, bool conn)
{
	if (chdir(dir) < 0)
		return errno;
	int r = conn ? connect(fd, (const struct sockaddr *)&a->ss, a->len) : bind(fd, (const struct sockaddr *)&a->ss, a->len);
	return r < 0 ? errno : 0;
}

int sk_unix_at(const char *dir, int fd, const struct sk_addr *a, bool conn)
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(child(dir, fd, a, conn));
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status))
		return -EINTR;
	return -WEXITSTATUS(status);
}

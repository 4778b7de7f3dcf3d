/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* O_PATH fds: of a regular file, of a directory (used with openat), and
 * of a symlink itself (O_PATH|O_NOFOLLOW, read with readlinkat). Each
 * must come back with its flags and still name the same inode.
 *
 * stasis-test: zdtm:opath
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmtst.h"

static void same_inode(int fd, const char *path, const char *what)
{
	struct stat a, b;
	check(fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
	      "%s: the O_PATH fd names another inode than %s", what, path);
}

int main(int argc, char **argv)
{
	char cwd[512];
	test_init(argc, argv);
	FILE *f = fopen("target.txt", "we");
	if (!f || fputs("hello\n", f) < 0 || fclose(f) != 0 || mkdir("sub", 0700) < 0 ||
	    symlink("target.txt", "link") < 0 || !getcwd(cwd, sizeof(cwd)))
		test_die("setup: %s", strerror(errno));
	int freg = open("target.txt", O_PATH | O_CLOEXEC);
	int fdir = open("sub", O_PATH | O_DIRECTORY);
	int flnk = open("link", O_PATH | O_NOFOLLOW);
	if (freg < 0 || fdir < 0 || flnk < 0)
		test_die("open O_PATH: %s", strerror(errno));

	test_ready();
	test_wait();

	check(fcntl(freg, F_GETFL) & O_PATH, "file fd lost O_PATH");
	check(fcntl(freg, F_GETFD) & FD_CLOEXEC, "file fd lost FD_CLOEXEC");
	same_inode(freg, "target.txt", "file");
	char buf[16];
	check(read(freg, buf, 1) < 0 && errno == EBADF, "read on an O_PATH fd did not fail with EBADF");
	check((fcntl(fdir, F_GETFL) & (O_PATH | O_DIRECTORY)) == (O_PATH | O_DIRECTORY), "dir fd lost its flags");
	int in = openat(fdir, "new", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	check(in >= 0, "openat in the O_PATH directory: %s", strerror(errno));
	check(access("sub/new", F_OK) == 0, "openat did not create sub/new");
	check((fcntl(flnk, F_GETFL) & (O_PATH | O_NOFOLLOW)) == (O_PATH | O_NOFOLLOW), "symlink fd lost its flags");
	same_inode(flnk, "link", "symlink");
	ssize_t l = readlinkat(flnk, "", buf, sizeof(buf) - 1);
	check(l == 10 && !memcmp(buf, "target.txt", 10), "readlinkat on the symlink fd gave %zd", l);
	test_done();
}

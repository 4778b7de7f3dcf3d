/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the dump must refuse among deleted things and fd owners, one per
 * argument, on the highest fd: `owner` (SIGIO goes to our parent, outside
 * the tree), `procfs` (/proc/1/status, a process outside the tree),
 * `inotify` (a watch on a deleted file that is only mapped, no fd holds
 * it), `big` (a deleted sparse file of 65 GiB, over the image's limit).
 * The workload passes when signalled with its state intact.
 *
 * stasis-build:  # started by the fail:deleted:* tests of t_deleted.py
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmtst.h"

static int setup(const char *what, void **map)
{
	int fd;
	if (!strcmp(what, "owner")) {
		fd = open("owner.dat", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || fcntl(fd, F_SETOWN, getppid()) < 0)
			test_die("owner: %m");
		return fd;
	}
	if (!strcmp(what, "procfs"))
		return open("/proc/1/status", O_RDONLY | O_CLOEXEC);
	if (!strcmp(what, "big")) {
		fd = open("big.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, 65LL << 30) < 0 || unlink("big.dat") < 0)
			test_die("big: %m");
		return fd;
	}
	int f = open("mapped.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fd = inotify_init1(IN_CLOEXEC);
	if (f < 0 || fd < 0 || ftruncate(f, 4096) < 0 || inotify_add_watch(fd, "mapped.dat", IN_MODIFY) < 0)
		test_die("inotify: %m");
	*map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	if (*map == MAP_FAILED || unlink("mapped.dat") < 0)
		test_die("mmap: %m");
	close(f);
	return fd;
}

int main(int argc, char **argv)
{
	void *map = NULL;
	test_init(argc, argv);
	if (argc < 2)
		test_die("usage: deleted_refusals owner|procfs|inotify|big");
	int fd = setup(argv[1], &map);
	if (fd < 0)
		test_die("%s: %m", argv[1]);
	test_ready();
	test_wait();
	check(fcntl(fd, F_GETFD) == FD_CLOEXEC, "fd %d is gone", fd);
	check(!strcmp(argv[1], "owner") ? fcntl(fd, F_GETOWN) == getppid() : 1, "the owner changed");
	test_done();
}

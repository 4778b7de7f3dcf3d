/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private and shared mappings of a memfd and of a deleted file. The
 * memfd is mapped privately by the parent (some pages written, so they
 * are its own copies) and shared by a child; the deleted file is mapped
 * both ways at an offset by the parent, its fd closed. After restore the
 * private copies are the parent's, the other pages the object's; a write
 * through a shared mapping shows in the other mapper's untouched private
 * pages and through the memfd's fd: one object, shared again.
 *
 * stasis-test: zdtm:deleted_maps
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define PG 4096
#define NP 8

static char *map(int fd, int flags, off_t off)
{
	char *p = mmap(NULL, NP * PG, PROT_READ | PROT_WRITE, flags, fd, off);
	if (p == MAP_FAILED)
		test_die("mmap: %m");
	return p;
}

static int object(int fd, uint64_t seed)
{
	static char buf[(NP + 2) * PG];
	test_fill(buf, sizeof(buf), seed);
	if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		test_die("object: %m");
	return fd;
}

/* Pages 0 and 3 written privately, the others the object's from off. */
static void check_private(const char *p, uint64_t seed, off_t off, const char *what)
{
	static char want[(NP + 2) * PG];
	test_fill(want, sizeof(want), seed);
	for (int i = 0; i < NP; i++) {
		char c = i == 0 || i == 3 ? (char)('A' + i) : want[off + i * PG];
		check(p[i * PG] == c, "%s: page %d reads %#x, want %#x", what, i, p[i * PG] & 0xff, c & 0xff);
	}
	check(!memcmp(p + PG + 1, want + off + PG + 1, PG - 1), "%s: page 1 differs", what);
}

int main(int argc, char **argv)
{
	int sync[2];
	test_init(argc, argv);
	int mfd = object(memfd_create("stasis-maps", MFD_CLOEXEC), 1);
	int dfd = object(open("gone.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), 2);
	char *mp = map(mfd, MAP_PRIVATE, 0);
	char *dp = map(dfd, MAP_PRIVATE, 2 * PG), *ds = map(dfd, MAP_SHARED, 2 * PG);
	if (unlink("gone.dat") < 0 || pipe2(sync, O_CLOEXEC) < 0)
		test_die("setup: %m");
	close(dfd);
	mp[0] = 'A', mp[3 * PG] = 'D', dp[0] = 'A', dp[3 * PG] = 'D';
	pid_t kid = fork();
	if (kid == 0) {
		char *ms = map(mfd, MAP_SHARED, 0);
		test_wait();
		ms[5 * PG] = 'S'; /* seen by the parent's private mapping */
		_exit(write(sync[1], "x", 1) == 1 ? 0 : 1);
	}
	close(sync[1]);
	test_ready();
	test_wait();
	check_private(mp, 1, 0, "the private memfd mapping");
	check_private(dp, 2, 2 * PG, "the private deleted-file mapping");
	kill(kid, SIGUSR1);
	char c;
	check(read(sync[0], &c, 1) == 1, "the child did not write");
	check(mp[5 * PG] == 'S', "the child's shared write is not seen by the private memfd mapping");
	check(pread(mfd, &c, 1, 5 * PG) == 1 && c == 'S', "the child's shared write is not in the memfd");
	ds[6 * PG] = 'T';
	check(dp[6 * PG] == 'T', "the shared deleted-file mapping is not the private one's object");
	int st = 0;
	check(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && !WEXITSTATUS(st), "child: %#x", st);
	test_done();
}

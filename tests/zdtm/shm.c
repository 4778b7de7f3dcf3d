/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Memory shared between a parent and its child: MAP_SHARED|MAP_ANONYMOUS
 * inherited over fork, a memfd (mapped, and kept open by both), a POSIX
 * shared memory file in /dev/shm, and one deleted right after mapping (as
 * sem_open does). After the restore the child writes into each and the
 * parent must see it: the memory is still one object, not two copies.
 *
 * stasis-test: zdtm:shm
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define SZ (256 << 10)
#define NOBJ 4

static const char *names[NOBJ] = { "anon", "memfd", "posix", "deleted" };

int main(int argc, char **argv)
{
	char posix[64], deleted[64];
	unsigned char *m[NOBJ];
	int go[2], done[2];
	test_init(argc, argv);
	snprintf(posix, sizeof(posix), "/dev/shm/stasis-zdtm-%d", getpid());
	snprintf(deleted, sizeof(deleted), "/dev/shm/stasis-zdtm-del-%d", getpid());
	m[0] = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int mfd = memfd_create("zdtm-shm", MFD_CLOEXEC);
	int pfd = open(posix, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int dfd = open(deleted, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (m[0] == MAP_FAILED || mfd < 0 || pfd < 0 || dfd < 0 || ftruncate(mfd, SZ) || ftruncate(pfd, SZ) ||
	    ftruncate(dfd, SZ))
		test_die("setup: %m");
	m[1] = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	m[2] = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
	m[3] = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
	close(pfd);
	close(dfd);
	unlink(deleted);
	for (int i = 0; i < NOBJ; i++) {
		if (m[i] == MAP_FAILED)
			test_die("mmap %s", names[i]);
		test_fill(m[i], SZ / 2, (uint64_t)i); /* the second half stays a hole */
	}
	if (pipe(go) || pipe(done))
		test_die("pipe");
	pid_t kid = fork();
	if (kid == 0) {
		char b;
		if (read(go[0], &b, 1) != 1)
			_exit(2);
		for (int i = 0; i < NOBJ; i++) {
			if (test_verify(m[i], SZ / 2, (uint64_t)i) >= 0)
				_exit(10 + i);
			memset(m[i] + SZ - 4096, 0xa0 + i, 4096);
		}
		/* The memfd fd is the same object as the mapping. */
		if (pwrite(mfd, "via-fd", 6, SZ - 64) != 6)
			_exit(3);
		(void)!write(done[1], "d", 1);
		_exit(0);
	}
	test_ready();
	test_wait();
	(void)!write(go[1], "g", 1);
	char b;
	check(read(done[0], &b, 1) == 1, "the child did not finish");
	int status = 0;
	waitpid(kid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed with %#x (10+i: object i differs)", status);
	for (int i = 0; i < NOBJ; i++) {
		check(test_verify(m[i], SZ / 2, (uint64_t)i) < 0, "%s: content differs", names[i]);
		check(m[i][SZ - 4096] == 0xa0 + i && m[i][SZ - 1] == 0xa0 + i,
		      "%s: the child's write is not seen by the parent (%#x)", names[i], m[i][SZ - 4096]);
		check(m[i][SZ / 2] == 0, "%s: the hole is not zero", names[i]);
	}
	check(!memcmp(m[1] + SZ - 64, "via-fd", 6), "memfd: a write through the fd is not in the mapping");
	char link[64], target[256] = "";
	snprintf(link, sizeof(link), "/proc/self/fd/%d", mfd);
	ssize_t l = readlink(link, target, sizeof(target) - 1);
	check(l > 0 && strstr(target, "memfd:zdtm-shm"), "memfd fd is now %s", target);
	unlink(posix);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* forkcheck SIZE_MB: SIZE_MB MiB of anonymous memory with a pattern, some
 * of it dropped (MADV_DONTNEED: zeros) and some moved (mremap) after the
 * fill. On SIGUSR1 it forks at once; child and parent each check every
 * page, also after the parent moves and drops more of it. Restored lazily
 * (tests/t_lazy.py) the fork, the mremap and the madvise come while the
 * filler is still at work: the child's memory must be its parent's.
 *
 * stasis-test: zdtm:forkcheck args=32
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1UL << 20)

static int check_mem(const uint8_t *mem, size_t len, uint64_t seed, size_t zero_from, size_t zero_len, const char *who)
{
	for (size_t off = 0; off < len; off += MB) {
		bool z = off >= zero_from && off < zero_from + zero_len;
		const uint8_t *p = mem + off;
		if (z) {
			for (size_t i = 0; i < MB; i++)
				if (p[i]) {
					fail("%s: dropped MiB at %zu is not zero", who, off / MB);
					return -1;
				}
		} else if (test_verify(p, MB, seed + off / MB) >= 0) {
			fail("%s: MiB %zu differs", who, off / MB);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 32;
	test_init(argc, argv);
	if (mb < 8)
		test_die("usage: forkcheck SIZE_MB (>= 8)");
	size_t len = mb * MB;
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_die("mmap: %s", strerror(errno));
	for (size_t off = 0; off < len; off += MB)
		test_fill(mem + off, MB, 7 + off / MB);
	test_ready();
	test_wait();
	pid_t child = fork();
	if (child < 0)
		test_die("fork: %s", strerror(errno));
	/* In both: drop 2 MiB in the middle, then move the whole region. */
	if (madvise(mem + len / 2, 2 * MB, MADV_DONTNEED) < 0)
		test_die("madvise: %s", strerror(errno));
	uint8_t *moved = mremap(mem, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, mem + len + 64 * MB);
	if (moved == MAP_FAILED)
		test_die("mremap: %s", strerror(errno));
	int r = check_mem(moved, len, 7, len / 2, 2 * MB, child ? "parent" : "child");
	if (!child)
		_exit(r < 0 ? 1 : 0);
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("the child found its memory wrong (status %#x)", status);
	test_done();
}

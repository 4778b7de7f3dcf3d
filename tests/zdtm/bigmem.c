/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bigmem SIZE_MB [thp]: touches SIZE_MB MiB of anonymous memory with a
 * per-page pattern and verifies every page after SIGUSR1. Used by the
 * 1 GiB test and the benchmark. With "thp" the memory is 2 MiB aligned
 * and advised MADV_HUGEPAGE first (transparent huge pages, where the
 * system allows them), and the count of its huge pages is printed before
 * and after.
 *
 * stasis-test: zdtm:bigmem args=64
 * stasis-test: zdtm:bigmem:compress args=64 dump_args=--compress=1
 * stasis-test: bigmem-1g args=1024 timeout=180 asan=no
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PG 4096UL

static inline uint64_t page_seed(size_t page)
{
	return (page + 1) * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995ull;
}

/* The process's memory in transparent huge pages (kB). */
static long huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "re");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "AnonHugePages:", 14))
			kb = strtol(line + 14, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	size_t len = mb << 20, pages = len / PG, bad = 0;
	uint64_t *mem;
	double t0, t1;

	test_init(argc, argv);
	if (!mb)
		test_die("usage: bigmem SIZE_MB");
	bool thp = argc > 2 && !strcmp(argv[2], "thp");
	mem = mmap(NULL, len + (thp ? 2UL << 20 : 0), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_die("mmap %zu MiB: %s", mb, strerror(errno));
	if (thp) {
		mem = (uint64_t *)(((uintptr_t)mem + (2UL << 20) - 1) & ~((2UL << 20) - 1));
		if (madvise(mem, len, MADV_HUGEPAGE) < 0)
			test_die("madvise(MADV_HUGEPAGE): %s", strerror(errno));
	}
	t0 = test_now();
	for (size_t p = 0; p < pages; p++) {
		uint64_t s = page_seed(p), *w = mem + p * (PG / 8);
		for (size_t i = 0; i < PG / 8; i++)
			w[i] = s + i;
	}
	t1 = test_now();
	test_msg("filled %zu MiB in %.3f s", mb, t1 - t0);
	if (thp)
		test_msg("AnonHugePages before: %ld kB", huge_kb());

	test_ready();
	test_wait();

	t0 = test_now();
	for (size_t p = 0; p < pages; p++) {
		uint64_t s = page_seed(p), *w = mem + p * (PG / 8);
		for (size_t i = 0; i < PG / 8; i++)
			if (w[i] != s + i) {
				if (!bad++)
					fail("page %zu (addr %p) word %zu: %#llx, expected %#llx", p, (void *)w, i,
					     (unsigned long long)w[i], (unsigned long long)(s + i));
				break;
			}
	}
	t1 = test_now();
	test_msg("verified %zu MiB in %.3f s, %zu bad pages", mb, t1 - t0, bad);
	if (thp)
		test_msg("AnonHugePages after: %ld kB", huge_kb());
	test_done();
}

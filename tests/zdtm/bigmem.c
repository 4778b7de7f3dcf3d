/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bigmem SIZE_MB: touches SIZE_MB MiB of anonymous memory with a per-page
 * pattern and verifies every page after SIGUSR1. Used by the 1 GiB test
 * and the benchmark.
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

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	size_t len = mb << 20, pages = len / PG, bad = 0;
	uint64_t *mem;
	double t0, t1;

	test_init(argc, argv);
	if (!mb)
		test_die("usage: bigmem SIZE_MB");
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_die("mmap %zu MiB: %s", mb, strerror(errno));
	t0 = test_now();
	for (size_t p = 0; p < pages; p++) {
		uint64_t s = page_seed(p), *w = mem + p * (PG / 8);
		for (size_t i = 0; i < PG / 8; i++)
			w[i] = s + i;
	}
	t1 = test_now();
	test_msg("filled %zu MiB in %.3f s", mb, t1 - t0);

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
	test_done();
}

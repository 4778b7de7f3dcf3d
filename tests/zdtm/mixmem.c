/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mixmem SIZE_MB: memory of realistic content for dump --compress: the
 * first half random (incompressible), the second half text-like (each
 * page a repeated line naming its page: compresses well, but not to
 * nothing). Verifies every page after SIGUSR1. Used by the compressed
 * dump tests and bench/compress.py.
 *
 * stasis-test: zdtm:mixmem:compress args=64 dump_args=--compress
 * stasis-test: zdtm:mixmem:compress-19 args=16 dump_args=--compress=19 asan=no
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PG 4096UL

static void text_page(char *p, size_t page)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "page %zu: the quick brown fox jumps over the lazy dog %zu times\n",
			 page, page % 97);
	for (size_t off = 0; off < PG; off += (size_t)n)
		memcpy(p + off, line, off + (size_t)n <= PG ? (size_t)n : PG - off);
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	size_t len = mb << 20, half = len / 2, bad = 0;
	char want[PG];

	test_init(argc, argv);
	if (!mb)
		test_die("usage: mixmem SIZE_MB");
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_die("mmap %zu MiB: %s", mb, strerror(errno));
	test_fill(mem, half, 42);
	for (size_t p = half / PG; p < len / PG; p++)
		text_page(mem + p * PG, p);

	test_ready();
	test_wait();

	if (test_verify(mem, half, 42) >= 0)
		bad++, fail("random half differs at byte %ld", test_verify(mem, half, 42));
	for (size_t p = half / PG; p < len / PG; p++) {
		text_page(want, p);
		if (memcmp(mem + p * PG, want, PG) && !bad++)
			fail("text page %zu (addr %p) differs", p, (void *)(mem + p * PG));
	}
	test_msg("verified %zu MiB, %zu bad", mb, bad);
	test_done();
}

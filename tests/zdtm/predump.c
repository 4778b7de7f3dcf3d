/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* predump SIZE_MB [ops]: SIZE_MB MiB of anonymous memory in which the
 * process keeps rewriting pages (each page holds a pattern of its index
 * and its generation, the generations in a second mapping), so that
 * pre-dumps taken while it runs see a moving target. With "ops" it also
 * keeps using the calls that write tracking must not disturb: fork (the
 * child checks what it inherited), mprotect (read-only and back),
 * madvise(MADV_DONTNEED) (the page reads zero, generation 0) and mremap
 * (a region moved away and back). SIGUSR1: every page is checked, then
 * PASS (tests/t_predump.py).
 *
 * stasis-test: zdtm:predump args=8,ops
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL
#define MOVED_PAGES 16

static uint64_t *mem;
static uint32_t *gen; /* 0: the page was dropped and reads zero */
static size_t pages;
static uint64_t *moved; /* MOVED_PAGES pages that mremap moves about */

static inline uint64_t word(size_t page, uint32_t g, size_t i)
{
	return g ? test_mix64(((uint64_t)page << 32 | g) ^ i) : 0;
}

static void put(size_t p, uint32_t g)
{
	for (size_t i = 0; i < PG / 8; i++)
		mem[p * (PG / 8) + i] = word(p, g, i);
	gen[p] = g;
}

static void verify(size_t p)
{
	for (size_t i = 0; i < PG / 8; i++)
		if (mem[p * (PG / 8) + i] != word(p, gen[p], i)) {
			printf("FAIL: page %zu (generation %u) word %zu: %#llx, expected %#llx\n", p, gen[p], i,
			       (unsigned long long)mem[p * (PG / 8) + i], (unsigned long long)word(p, gen[p], i));
			_exit(1);
		}
}

static void verify_all(void)
{
	for (size_t p = 0; p < pages; p++)
		verify(p);
	if (test_verify(moved, MOVED_PAGES * PG, 77) >= 0) {
		printf("FAIL: the mremap'ed region is wrong\n");
		_exit(1);
	}
}

/* fork: the child sees its parent's memory as it was. */
static void op_fork(void)
{
	pid_t c = fork();
	if (c == 0) {
		verify_all();
		_exit(0);
	}
	int st;
	pid_t got;
	while ((got = waitpid(c, &st, 0)) < 0 && errno == EINTR)
		; /* SIGUSR1 (no SA_RESTART) */
	if (c < 0 || got != c || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("FAIL: a forked child found its memory wrong (or fork failed)\n");
		_exit(1);
	}
}

static void op(unsigned k, size_t p)
{
	uint8_t *page = (uint8_t *)mem + p * PG;
	switch (k % 4) {
	case 0:
		op_fork();
		break;
	case 1:
		if (mprotect(page, PG, PROT_READ) || mprotect(page, PG, PROT_READ | PROT_WRITE))
			test_die("mprotect: %s", strerror(errno));
		break;
	case 2:
		if (madvise(page, PG, MADV_DONTNEED))
			test_die("madvise: %s", strerror(errno));
		gen[p] = 0;
		break;
	case 3: {
		void *to = mmap(NULL, MOVED_PAGES * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *n = to == MAP_FAILED ? MAP_FAILED
					   : mremap(moved, MOVED_PAGES * PG, MOVED_PAGES * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (n == MAP_FAILED)
			test_die("mremap: %s", strerror(errno));
		moved = n;
		break;
	}
	}
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 8;
	bool ops = argc > 2 && !strcmp(argv[2], "ops");
	test_init(argc, argv);
	pages = (mb << 20) / PG;
	mem = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = mmap(NULL, pages * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved = mmap(NULL, MOVED_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pages || mem == MAP_FAILED || gen == MAP_FAILED || moved == MAP_FAILED)
		test_die("mmap %zu MiB: %s", mb, strerror(errno));
	test_fill(moved, MOVED_PAGES * PG, 77);
	for (size_t p = 0; p < pages; p++)
		put(p, 1);
	test_ready();
	uint64_t x = 1;
	for (unsigned k = 0; !test_go; k++) {
		/* A page rewritten, one checked. */
		x = test_mix64(x);
		size_t p = x % pages;
		put(p, gen[p] + 1 ? gen[p] + 1 : 1);
		verify((x >> 32) % pages);
		if (ops && k % 64 == 0)
			op(k / 64, (x >> 16) % pages);
		if (k % 2 == 0)
			usleep(1000); /* at most ~1000 pages a second: most stay as they were */
	}
	verify_all();
	test_done();
}

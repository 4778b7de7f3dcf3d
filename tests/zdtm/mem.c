/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Memory of all kinds: heap (malloc, sbrk), anonymous mappings with
 * patterns, a PROT_NONE guard, a read-only region, never-touched pages,
 * private file mapping (some pages COWed, some not), shared file mapping,
 * shared anonymous mapping, and data in main's stack frame.
 *
 * stasis-test: zdtm:mem
 * stasis-test: zdtm:mem:2-iterations iterations=2 asan=no
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096UL

static sigjmp_buf segv_jmp;
static volatile sig_atomic_t segv_hit;

static void segv_handler(int sig)
{
	(void)sig;
	segv_hit = 1;
	siglongjmp(segv_jmp, 1);
}

/* Returns 1 when touching addr (read, or write when write) faults. */
static int faults(volatile char *addr, int write)
{
	segv_hit = 0;
	if (sigsetjmp(segv_jmp, 1) == 0) {
		if (write)
			*addr = 1;
		else
			(void)*addr;
	}
	return segv_hit;
}

struct region {
	const char *name;
	void *addr;
	size_t len;
	uint64_t seed;
	char perms[5];
};

static void record_perms(struct region *r)
{
	if (test_map_perms(r->addr, r->perms) < 0)
		test_die("%s: no mapping at %p", r->name, r->addr);
}

static void check_region(struct region *r)
{
	char perms[5];
	long off;

	if (test_map_perms(r->addr, perms) < 0) {
		fail("%s: no mapping at %p anymore", r->name, r->addr);
		return;
	}
	check(!strcmp(perms, r->perms), "%s: perms %s, expected %s", r->name, perms, r->perms);
	if (r->seed) {
		off = test_verify(r->addr, r->len, r->seed);
		check(off < 0, "%s: content differs at offset %ld", r->name, off);
	}
}

static int make_file(const char *name, size_t len, uint64_t seed)
{
	char *buf = malloc(len);
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || !buf)
		test_die("create %s: %s", name, strerror(errno));
	test_fill(buf, len, seed);
	if (pwrite(fd, buf, len, 0) != (ssize_t)len)
		test_die("write %s: %s", name, strerror(errno));
	free(buf);
	return fd;
}

int main(int argc, char **argv)
{
	volatile unsigned char stack_data[3000];
	struct region r[16];
	int n = 0;
	char *small, *big, *brk_area, *anon1, *anon2, *anon3, *guard, *ro, *sparse;
	char *priv, *shared, *shanon;
	int priv_fd, shared_fd;
	char buf[PG];
	struct sigaction sa;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = segv_handler;
	sigaction(SIGSEGV, &sa, NULL);

	for (size_t i = 0; i < sizeof(stack_data); i++)
		stack_data[i] = (unsigned char)(i * 7 + 3);

	/* heap: a small chunk (brk heap) and a big one (malloc's mmap) */
	small = malloc(10000);
	big = malloc(1 << 20);
	brk_area = sbrk(65536);
	if (!small || !big || brk_area == (void *)-1)
		test_die("malloc/sbrk failed");
	r[n++] = (struct region){ "malloc-small", small, 10000, 101 };
	r[n++] = (struct region){ "malloc-big", big, 1 << 20, 102 };
	r[n++] = (struct region){ "sbrk", brk_area, 65536, 103 };

	anon1 = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	anon2 = mmap(NULL, 300 * PG, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	anon3 = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	guard = mmap(NULL, 3 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, 7 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	sparse = mmap(NULL, 256 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shanon = mmap(NULL, 9 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (anon1 == MAP_FAILED || anon2 == MAP_FAILED || anon3 == MAP_FAILED || guard == MAP_FAILED ||
	    ro == MAP_FAILED || sparse == MAP_FAILED || shanon == MAP_FAILED)
		test_die("mmap: %s", strerror(errno));
	r[n++] = (struct region){ "anon-rw", anon1, 5 * PG, 201 };
	r[n++] = (struct region){ "anon-rwx", anon2, 300 * PG, 202 };
	r[n++] = (struct region){ "anon-4M", anon3, 4 << 20, 203 };
	r[n++] = (struct region){ "guard", guard, 3 * PG, 0 };
	r[n++] = (struct region){ "readonly", ro, 7 * PG, 204 };
	r[n++] = (struct region){ "shared-anon", shanon, 9 * PG, 205 };

	/* private file mapping: pages 0 and 2 written (COW), 1 and 3 not */
	priv_fd = make_file("private.dat", 4 * PG, 301);
	priv = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, priv_fd, 0);
	/* shared file mapping written through */
	shared_fd = make_file("shared.dat", 6 * PG, 401);
	shared = mmap(NULL, 6 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, shared_fd, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		test_die("file mmap: %s", strerror(errno));
	close(priv_fd);

	for (int i = 0; i < n; i++)
		if (r[i].seed)
			test_fill(r[i].addr, r[i].len, r[i].seed);
	mprotect(ro, 7 * PG, PROT_READ);
	test_fill(priv, PG, 302);
	test_fill(priv + 2 * PG, PG, 303);
	/* page 1 and 3 read only (keeps them file-backed) */
	(void)*(volatile char *)(priv + PG);
	test_fill(shared + PG, 2 * PG, 402);
	/* sparse: touch pages 0, 100, 255 only */
	test_fill(sparse, PG, 501);
	test_fill(sparse + 100 * PG, PG, 502);
	test_fill(sparse + 255 * PG, PG, 503);

	for (int i = 0; i < n; i++)
		record_perms(&r[i]);
	r[n] = (struct region){ "sparse", sparse, 0, 0 };
	record_perms(&r[n++]);
	r[n] = (struct region){ "private-file", priv, 0, 0 };
	record_perms(&r[n++]);
	r[n] = (struct region){ "shared-file", shared, 0, 0 };
	record_perms(&r[n++]);
	check(faults(guard + PG, 0), "guard page readable before dump");
	check(faults(ro, 1), "read-only region writable before dump");
	if (test_failures())
		test_done();

	test_ready();
	test_wait();

	for (int i = 0; i < n; i++)
		check_region(&r[i]);
	for (size_t i = 0; i < sizeof(stack_data); i++)
		if (stack_data[i] != (unsigned char)(i * 7 + 3)) {
			fail("stack data differs at %zu", i);
			break;
		}
	check(faults(guard, 0), "guard page readable after restore");
	check(faults(guard + 2 * PG, 1), "guard page writable after restore");
	check(faults(ro + 3 * PG, 1), "read-only region writable after restore");

	/* never-touched pages read back as zero */
	for (size_t p = 0; p < 256; p++) {
		const uint64_t *w = (const uint64_t *)(sparse + p * PG);
		if (p == 0 || p == 100 || p == 255)
			continue;
		for (size_t i = 0; i < PG / 8; i++)
			if (w[i]) {
				fail("sparse page %zu not zero", p);
				p = 256;
				break;
			}
	}
	check(test_verify(sparse, PG, 501) < 0, "sparse page 0 differs");
	check(test_verify(sparse + 100 * PG, PG, 502) < 0, "sparse page 100 differs");
	check(test_verify(sparse + 255 * PG, PG, 503) < 0, "sparse page 255 differs");

	/* private file mapping: COWed pages keep the writes, others show the file */
	check(test_verify(priv, PG, 302) < 0, "private file page 0 (written) differs");
	check(test_verify(priv + 2 * PG, PG, 303) < 0, "private file page 2 (written) differs");
	{
		char *file = malloc(4 * PG);
		int fd = open("private.dat", O_RDONLY | O_CLOEXEC);

		if (fd < 0 || pread(fd, file, 4 * PG, 0) != (ssize_t)(4 * PG))
			fail("private.dat: cannot read back: %s", strerror(errno));
		else {
			check(test_verify(file, 4 * PG, 301) < 0, "private.dat itself was modified");
			check(!memcmp(priv + PG, file + PG, PG), "private file page 1 (untouched) differs from the file");
			check(!memcmp(priv + 3 * PG, file + 3 * PG, PG), "private file page 3 (untouched) differs from the file");
		}
		if (fd >= 0)
			close(fd);
		free(file);
	}

	/* shared file mapping: mapping and file agree, and stay shared */
	{
		char *file = malloc(6 * PG);

		check(test_verify(shared + PG, 2 * PG, 402) < 0, "shared file mapping pages 1-2 differ");
		check(test_verify(shared + 3 * PG, 3 * PG, 401 + 3 * PG / 8) < 0, "shared file mapping pages 3-5 differ");
		if (pread(shared_fd, file, 6 * PG, 0) != (ssize_t)(6 * PG))
			fail("shared.dat: pread: %s", strerror(errno));
		else
			check(!memcmp(file, shared, 6 * PG), "shared.dat contents differ from its mapping");
		shared[5] = 'X';
		check(pread(shared_fd, buf, 16, 0) == 16 && buf[5] == 'X', "write through shared mapping not visible in the file");
		buf[0] = 'Y';
		check(pwrite(shared_fd, buf, 1, 4 * PG) == 1, "pwrite shared.dat");
		check(shared[4 * PG] == 'Y', "pwrite to shared.dat not visible in the mapping");
		free(file);
	}

	/* writes still work everywhere they did */
	memset(anon1, 0x5a, 5 * PG);
	memset(shanon, 0xa5, 9 * PG);
	brk_area[65535] = 1;
	check(malloc(123456) != NULL, "malloc after restore");
	test_done();
}

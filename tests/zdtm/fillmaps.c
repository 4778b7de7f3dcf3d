/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The eager fill through a userfaultfd (engine/mm-fill-uffd.c) on the
 * layouts where it must hand pages to process_vm_writev or split its
 * copies: more than 8 MiB of pages (so the restore takes that path) in
 *  - one mapping split by mprotect into read-write, read-only and
 *    PROT_NONE parts (runs of pages that cross mappings);
 *  - anonymous memory right below a private file mapping with written
 *    pages (a run from a registered mapping into one that is not);
 *  - sparse pages, and a range given back with MADV_DONTNEED (zero after
 *    restore, and writable as before);
 *  - shared anonymous memory.
 * After SIGUSR1 every page has its content and the holes read zero; the
 * runner compares the mappings before and after.
 *
 * stasis-test: zdtm:fillmaps
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmtst.h"

#define PG 4096UL
#define MB (1UL << 20)

static int is_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/* 4 MiB anonymous, then 1 MiB of a file's private mapping right above. */
static char *anon_below_file(void)
{
	char path[] = "fillmaps-XXXXXX";
	int fd = mkstemp(path);
	char *a = mmap(NULL, 5 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || ftruncate(fd, (off_t)MB) < 0 || a == MAP_FAILED)
		test_die("file mapping: %s", strerror(errno));
	if (mmap(a + 4 * MB, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED)
		test_die("mmap of %s: %s", path, strerror(errno));
	close(fd);
	unlink(path);
	test_fill(a, 5 * MB, 2); /* the file's pages written: anonymous copies */
	return a;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *split = mmap(NULL, 6 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *sparse = mmap(NULL, 4 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *shared = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (split == MAP_FAILED || sparse == MAP_FAILED || shared == MAP_FAILED)
		test_die("mmap: %s", strerror(errno));
	test_fill(split, 6 * MB, 1);
	if (mprotect(split + 2 * MB, 2 * MB, PROT_READ) < 0 || mprotect(split + 4 * MB + PG, MB, PROT_NONE) < 0)
		test_die("mprotect: %s", strerror(errno));
	char *mixed = anon_below_file();
	for (size_t off = 0; off < 4 * MB; off += 3 * PG)
		test_fill(sparse + off, PG, 100 + off / PG);
	memset(sparse + MB, 0x77, MB);
	if (madvise(sparse + MB + 8 * PG, 16 * PG, MADV_DONTNEED) < 0)
		test_die("madvise: %s", strerror(errno));
	test_fill(shared, MB, 3);

	test_ready();
	test_wait();

	if (mprotect(split + 4 * MB + PG, MB, PROT_READ) < 0)
		fail("mprotect back: %s", strerror(errno));
	check(test_verify(split, 6 * MB, 1) < 0, "the split mapping lost its content");
	check(test_verify(mixed, 5 * MB, 2) < 0, "the anonymous and file pages lost their content");
	for (size_t off = 0; off < 4 * MB; off += PG) {
		const char *p = sparse + off;
		if (off >= MB + 8 * PG && off < MB + 24 * PG)
			check(is_zero(p, PG), "page %zu of the given-back range is not zero", off / PG);
		else if (off >= MB && off < 2 * MB)
			check(p[0] == 0x77 && p[PG - 1] == 0x77, "page %zu of the set range lost its content", off / PG);
		else if (off % (3 * PG) == 0)
			check(test_verify(p, PG, 100 + off / PG) < 0, "sparse page %zu lost its content", off / PG);
		else
			check(is_zero(p, PG), "page %zu never written is not zero", off / PG);
	}
	sparse[MB + 8 * PG] = 1; /* writable as before */
	check(test_verify(shared, MB, 3) < 0, "the shared mapping lost its content");
	test_done();
}

/* Transparent huge pages come back where the original had them: a 64 MiB
 * region with MADV_HUGEPAGE (VmFlags "hg") and a 16 MiB one without any
 * hint that the program collapsed itself (MADV_COLLAPSE), both filled
 * with a pattern. After the restore each region has its data, about as
 * many AnonHugePages as before, and the same VmFlags: no hint the
 * original did not have. Without THP here (never) it says so and checks
 * only the data.
 *
 * stasis-test: zdtm:thp
 * stasis-test: zdtm:thp:lazy restore_args="--lazy --wait-lazy"
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define HPAGE (2UL << 20)

struct region {
	const char *name;
	size_t len;
	uint8_t *mem;
	long thp_kb;
	char flags[256];
};

/* AnonHugePages (kB) and VmFlags of the mapping that holds addr. */
static int smaps_of(const void *addr, long *ret_kb, char flags[256])
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	int in = 0, found = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= a && (uintptr_t)addr < b;
			found |= in;
		} else if (in && !strncmp(line, "AnonHugePages:", 14)) {
			*ret_kb = strtol(line + 14, NULL, 10);
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, 256, "%.200s", line + 8);
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

/* A 2 MiB aligned region of its own: the rest of the mapping, on both
 * sides, made PROT_NONE so that it merges with no neighbour. */
static uint8_t *map_aligned(size_t len)
{
	uint8_t *p = mmap(NULL, len + 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		test_die("mmap %zu bytes: %s", len, strerror(errno));
	uint8_t *a = (uint8_t *)(((uintptr_t)p + HPAGE) & ~(HPAGE - 1));
	if (mprotect(p, (size_t)(a - p), PROT_NONE) < 0 ||
	    mprotect(a + len, (size_t)(p + len + 2 * HPAGE - (a + len)), PROT_NONE) < 0)
		test_die("mprotect: %s", strerror(errno));
	return a;
}

int main(int argc, char **argv)
{
	struct region r[2] = { { "hinted", 64UL << 20, NULL, 0, "" }, { "collapsed", 16UL << 20, NULL, 0, "" } };
	bool thp = true;

	test_init(argc, argv);
	for (int i = 0; i < 2; i++)
		r[i].mem = map_aligned(r[i].len);
	if (madvise(r[0].mem, r[0].len, MADV_HUGEPAGE) < 0)
		test_die("madvise(MADV_HUGEPAGE): %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		test_fill(r[i].mem, r[i].len, 0x7407 + (uint64_t)i);
	if (madvise(r[1].mem, r[1].len, MADV_COLLAPSE) < 0)
		test_msg("madvise(MADV_COLLAPSE): %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		if (smaps_of(r[i].mem, &r[i].thp_kb, r[i].flags) < 0)
			test_die("the %s region is not in /proc/self/smaps", r[i].name);
		test_msg("%s: %ld kB in huge pages, VmFlags:%s", r[i].name, r[i].thp_kb, r[i].flags);
	}
	if (!r[0].thp_kb) {
		test_msg("no huge pages here (transparent_hugepage never?): checking the data only");
		thp = false;
	}

	test_ready();
	test_wait();

	for (int i = 0; i < 2; i++) {
		long kb = 0;
		char flags[256] = "";
		long bad = test_verify(r[i].mem, r[i].len, 0x7407 + (uint64_t)i);
		if (bad >= 0)
			fail("%s region: data differs at byte %ld", r[i].name, bad);
		if (smaps_of(r[i].mem, &kb, flags) < 0) {
			fail("%s region: gone from /proc/self/smaps", r[i].name);
			continue;
		}
		test_msg("%s after: %ld kB in huge pages, VmFlags:%s", r[i].name, kb, flags);
		if (strcmp(flags, r[i].flags))
			fail("%s region: VmFlags were%s and are now%s", r[i].name, r[i].flags, flags);
		/* Close to before: a huge page or two may stay split. */
		if (thp && kb + 4096 < r[i].thp_kb)
			fail("%s region: %ld kB in huge pages after the restore, %ld kB before", r[i].name, kb,
			     r[i].thp_kb);
	}
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Guard regions (MADV_GUARD_INSTALL, Linux 6.13+): two ranges in an
 * anonymous mapping with data around them, and one in a private file
 * mapping. Not seen in /proc/PID/maps; after restore they still fault
 * (SIGSEGV, caught) and the pages around them keep their bytes.
 *
 * stasis-test: zdtm:guard_pages
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define PG 4096

static sigjmp_buf jb;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jb, 1);
}

static bool faults(volatile char *p)
{
	if (sigsetjmp(jb, 1))
		return true;
	(void)*p;
	return false;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *a = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("file", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (a == MAP_FAILED || fd < 0 || ftruncate(fd, 8 * PG) < 0)
		test_die("setup: %s", strerror(errno));
	char *f = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	test_fill(a, 32 * PG, 7);
	if (f == MAP_FAILED || madvise(a + 4 * PG, 2 * PG, MADV_GUARD_INSTALL) < 0 ||
	    madvise(a + 20 * PG, PG, MADV_GUARD_INSTALL) < 0 || madvise(f + 3 * PG, PG, MADV_GUARD_INSTALL) < 0) {
		if (errno == EINVAL)
			test_die("MADV_GUARD_INSTALL is not supported by this kernel (6.13+)");
		test_die("madvise: %s", strerror(errno));
	}
	struct sigaction sa = { .sa_handler = on_segv };
	sigaction(SIGSEGV, &sa, NULL);

	test_ready();
	test_wait();

	static const int guard[] = { 4, 5, 20 };
	for (int pg = 0; pg < 32; pg++) {
		bool g = pg == guard[0] || pg == guard[1] || pg == guard[2];
		check(faults(a + pg * PG) == g, "anon page %d: %s", pg, g ? "the guard is gone" : "faults");
	}
	/* The bytes around the guards are what they were. */
	char *copy = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	test_fill(copy, 32 * PG, 7);
	for (int pg = 0; pg < 32; pg++)
		if (pg != 4 && pg != 5 && pg != 20)
			check(!memcmp(a + pg * PG, copy + pg * PG, PG), "anon page %d changed", pg);
	for (int pg = 0; pg < 8; pg++)
		check(faults(f + pg * PG) == (pg == 3), "file page %d: %s", pg, pg == 3 ? "the guard is gone" : "faults");
	test_done();
}

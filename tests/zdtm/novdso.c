/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A program without a vdso (it unmapped it, as some sandboxes and
 * record-replay tools do): the dump has no `syscall` there to borrow for
 * its remote calls and takes one from another executable mapping. After
 * restore there is still no vdso, and system calls work.
 *
 * stasis-test: zdtm:novdso
 * stasis-test: zdtm:novdso:2-iterations iterations=2 asan=no
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The [vdso] line of /proc/self/maps, or 0. No stdio after the unmap:
 * nothing here may call into the vdso (clock_gettime) any more. */
static int find_vdso(unsigned long *start, unsigned long *end)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", start, end) == 2)
			found = 1;
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	unsigned long s, e;
	test_init(argc, argv);
	if (!find_vdso(&s, &e))
		test_die("no [vdso] to unmap");
	if (munmap((void *)s, e - s) < 0)
		test_die("munmap vdso: %s", strerror(errno));
	check(!find_vdso(&s, &e), "the vdso is still mapped");

	test_ready();
	test_wait();

	check(!find_vdso(&s, &e), "a vdso came back at %#lx", s);
	check(syscall(SYS_getpid) == getpid(), "getpid through syscall()");
	char buf[4];
	check(write(1, "", 0) == 0 && read(-1, buf, 1) < 0 && errno == EBADF, "plain system calls");
	test_done();
}

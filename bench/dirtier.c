/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench/predump.py's process: touches MIB MiB (argv[1]), prints READY,
 * then for each line on stdin rewrites PCT percent (argv[2]) of its pages,
 * spread over the whole area, and prints DIRTY. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	double pct = argc > 2 ? atof(argv[2]) : 1.0;
	size_t pages = (mib << 20) / 4096, step = pct > 0 ? (size_t)(100.0 / pct) : pages;
	unsigned char *p = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char line[64];
	if (p == MAP_FAILED || !step)
		return 1;
	memset(p, 0x5a, mib << 20);
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("READY\n");
	for (unsigned gen = 1; fgets(line, sizeof(line), stdin); gen++) {
		for (size_t i = gen % step; i < pages; i += step)
			memset(p + i * 4096, (int)gen, 4096);
		printf("DIRTY\n");
	}
	return 0;
}

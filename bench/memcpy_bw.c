/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* memcpy_bw SIZE_MB [REPS]: copies SIZE_MB MiB between two buffers that
 * were touched first and prints the best time and bandwidth:
 *   "memcpy <bytes> bytes <seconds> s <GB/s> GB/s"
 * Used by bench.py as the reference for restore throughput. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	size_t len = mb << 20;
	char *src, *dst;
	double best = 1e9;

	if (!mb || reps < 1) {
		fprintf(stderr, "usage: memcpy_bw SIZE_MB [REPS]\n");
		return 2;
	}
	src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(src, 0x5a, len);
	memset(dst, 0, len);
	for (int i = 0; i < reps; i++) {
		double t0 = now();
		memcpy(dst, src, len);
		__asm__ volatile("" : : "r"(dst) : "memory");
		double t = now() - t0;
		if (t < best)
			best = t;
	}
	printf("memcpy %zu bytes %.6f s %.3f GB/s\n", len, best, len / best / 1e9);
	return 0;
}

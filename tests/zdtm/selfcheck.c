/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* selfcheck SIZE_MB: SIZE_MB MiB of anonymous memory with a per-page
 * pattern that the process keeps verifying while it runs, and a thread
 * that sleeps in short nanosleeps (a call every dump interrupts and the
 * kernel must restart) and checks their results. It exits at once with
 * FAIL when a page or a call is wrong, so a dump that harms it shows
 * whether or not it lets the process go on; SIGUSR1: a last full check,
 * then PASS. Interrupted dumps (tests/t_interrupt.py) use it by the dozen.
 *
 * stasis-test: zdtm:selfcheck args=16
 */
#include "zdtmtst.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL

static uint64_t *mem;
static size_t pages;

static inline uint64_t word(size_t page, size_t i)
{
	return (page + 1) * 0x9e3779b97f4a7c15ull ^ (i * 0xff51afd7ed558ccdull);
}

static void fill(void)
{
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < PG / 8; i++)
			mem[p * (PG / 8) + i] = word(p, i);
}

/* A few pages each call: the main loop checks all of them over and over. */
static int verify(size_t from, size_t n)
{
	for (size_t p = from; p < from + n && p < pages; p++)
		for (size_t i = 0; i < PG / 8; i++)
			if (mem[p * (PG / 8) + i] != word(p, i)) {
				printf("FAIL: page %zu word %zu: %#llx, expected %#llx\n", p, i,
				       (unsigned long long)mem[p * (PG / 8) + i], (unsigned long long)word(p, i));
				_exit(1);
			}
	return 0;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		if (nanosleep(&ts, NULL) < 0 && errno != EINTR) {
			printf("FAIL: nanosleep: %s (errno %d)\n", strerror(errno), errno);
			_exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	pthread_t t;
	sigset_t usr1;

	test_init(argc, argv);
	if (!mb)
		test_die("usage: selfcheck SIZE_MB");
	pages = (mb << 20) / PG;
	mem = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_die("mmap %zu MiB: %s", mb, strerror(errno));
	fill();
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* the sleeper never takes it */
	if (pthread_create(&t, NULL, sleeper, NULL))
		test_die("pthread_create");
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	test_ready();
	for (size_t p = 0; !test_go; p = (p + 64) % pages) {
		verify(p, 64);
		if (p == 0)
			usleep(1000); /* a call of its own to be interrupted in */
	}
	verify(0, pages);
	test_done();
}

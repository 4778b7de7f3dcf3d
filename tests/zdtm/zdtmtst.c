/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "zdtmtst.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t test_go;
static int failures;
static char first_failure[512];

static void usr1_handler(int sig)
{
	(void)sig;
	test_go = 1;
}

void test_init(int argc, char **argv)
{
	struct sigaction sa;

	(void)argc;
	(void)argv;
	setvbuf(stdout, NULL, _IONBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		test_die("sigaction(SIGUSR1): %s", strerror(errno));
}

void test_ready(void)
{
	printf("READY\n");
	fflush(stdout);
}

void test_wait(void)
{
	sigset_t block, old, wait_mask;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	wait_mask = old;
	sigdelset(&wait_mask, SIGUSR1);
	while (!test_go)
		sigsuspend(&wait_mask);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void test_wait_pause(void)
{
	while (!test_go)
		pause();
}

static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	dprintf(STDOUT_FILENO, "%s%s\n", prefix, buf);
}

void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (!failures)
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	vmsg("check failed: ", fmt, ap);
	va_end(ap);
	failures++;
}

int test_failures(void)
{
	return failures;
}

void test_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("note: ", fmt, ap);
	va_end(ap);
}

void test_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("FAIL: setup: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void test_done(void)
{
	if (failures) {
		dprintf(STDOUT_FILENO, "FAIL: %s (%d failed checks)\n", first_failure, failures);
		exit(1);
	}
	dprintf(STDOUT_FILENO, "PASS\n");
	exit(0);
}

uint64_t test_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void test_fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = test_mix64(seed + i / 8);
		p[i] = (unsigned char)(v >> (8 * (i % 8)));
	}
}

long test_verify(const void *buf, size_t len, uint64_t seed)
{
	const unsigned char *p = buf;
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = test_mix64(seed + i / 8);
		if (p[i] != (unsigned char)(v >> (8 * (i % 8))))
			return (long)i;
	}
	return -1;
}

int test_map_perms(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	uintptr_t a = (uintptr_t)addr;
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		char p[5];

		if (sscanf(line, "%lx-%lx %4s", &start, &end, p) != 3)
			continue;
		if (a >= start && a < end) {
			memcpy(perms, p, 5);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

double test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

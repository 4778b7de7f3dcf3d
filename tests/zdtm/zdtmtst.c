/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

void test_send_fd(int sock, const char *msg, int fd)
{
	struct iovec iov = { (void *)msg, strlen(msg) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &mh, 0) != (ssize_t)strlen(msg))
		test_die("sendmsg %s: %m", msg);
}

size_t test_fill_socket(int s, const uint8_t *pat, size_t limit)
{
	size_t off = 0;
	int fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl | O_NONBLOCK);
	while (off < limit) {
		ssize_t n = write(s, pat + off, limit - off);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			test_die("write: %m");
		off += (size_t)n;
	}
	fcntl(s, F_SETFL, fl);
	return off;
}

const char *test_drain(int s, size_t n, uint64_t seed)
{
	uint8_t *buf = malloc(n ? n : 1);
	const char *why = buf ? NULL : "out of memory";
	for (size_t off = 0; !why && off < n;) {
		ssize_t k = read(s, buf + off, n - off);
		if (k <= 0)
			why = k < 0 ? "read failed" : "EOF before every byte arrived";
		else
			off += (size_t)k;
	}
	if (!why && test_verify(buf, n, seed) >= 0)
		why = "bytes differ from what was written";
	free(buf);
	return why;
}

const char *test_ping(int s, const char *out, const char *in)
{
	char b[4];
	if (write(s, out, 4) != 4)
		return "ping write failed";
	for (size_t off = 0; off < 4;) {
		ssize_t k = read(s, b + off, 4 - off);
		if (k <= 0)
			return "ping read failed";
		off += (size_t)k;
	}
	return memcmp(b, in, 4) ? "ping answer differs" : NULL;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* treemem [NPROC [MIB]]: a flat tree of NPROC processes (the root and
 * NPROC-1 children, default 50), each with MIB MiB (default 16) of private
 * anonymous memory filled with a pattern seeded by its index. Used by the
 * tree benchmark (bench/tree.py).
 *
 * The children tell the root they are ready over a pipe; the root prints
 * READY when all are. On SIGUSR1 the root forwards SIGUSR1 to every child,
 * each verifies its own memory (and its pid and parent) and sends a
 * fixed-size report (< PIPE_BUF, so writes never interleave) to the root,
 * which reaps them all and prints PASS only if every process passed.
 * Children die with the root (PR_SET_PDEATHSIG).
 *
 * stasis-build:  # started by bench/tree.py
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

struct report {
	int idx;
	int ok;
	char msg[112];
};

static int rdy[2], res[2];

static uint64_t seed_of(long idx)
{
	/* test_fill seeds each 8 bytes with seed + offset/8: keep the
	 * processes' ranges apart. */
	return ((uint64_t)idx + 1) << 40;
}

static void *fill_own(long idx, size_t len)
{
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	test_fill(mem, len, seed_of(idx));
	return mem;
}

/* NULL when the memory (and identity) of process idx are intact. */
static const char *check_own(long idx, const void *mem, size_t len, pid_t pid, pid_t ppid)
{
	static char why[sizeof(((struct report *)0)->msg)];
	long off;

	if (getpid() != pid)
		return snprintf(why, sizeof(why), "process %ld: pid %d is now %d", idx, pid, getpid()), why;
	if (getppid() != ppid)
		return snprintf(why, sizeof(why), "process %ld (pid %d): parent %d is now %d", idx, pid, ppid,
				getppid()), why;
	off = test_verify(mem, len, seed_of(idx));
	if (off >= 0)
		return snprintf(why, sizeof(why), "process %ld (pid %d): memory differs at offset %ld of %zu", idx,
				pid, off, len), why;
	return NULL;
}

static void __attribute__((noreturn)) child(long idx, size_t len, pid_t root)
{
	struct report rep = { .idx = (int)idx };
	pid_t pid = getpid();
	const char *why;
	void *mem;

	close(rdy[0]);
	close(res[0]);
	mem = fill_own(idx, len);
	if (!mem)
		_exit(2); /* the root sees a missing ready byte */
	if (write(rdy[1], "r", 1) != 1)
		_exit(2);
	close(rdy[1]);
	test_wait();
	why = check_own(idx, mem, len, pid, root);
	rep.ok = !why;
	snprintf(rep.msg, sizeof(rep.msg), "%s", why ? why : "");
	if (write(res[1], &rep, sizeof(rep)) != sizeof(rep))
		_exit(3);
	_exit(0);
}

int main(int argc, char **argv)
{
	long nproc = argc > 1 ? strtol(argv[1], NULL, 0) : 50;
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 16;
	size_t len = mib << 20;
	pid_t root = getpid(), root_parent = getppid(), *kids;
	double t0 = test_now();
	void *mem;

	test_init(argc, argv);
	if (nproc < 1 || nproc > 100000 || !mib)
		test_die("usage: treemem [NPROC [MIB]]");
	kids = calloc((size_t)nproc, sizeof(*kids));
	if (!kids || pipe(rdy) < 0 || pipe(res) < 0)
		test_die("setup: %s", strerror(errno));
	for (long i = 1; i < nproc; i++) {
		pid_t k = fork();
		if (k < 0)
			test_die("fork of process %ld: %s", i, strerror(errno));
		if (k == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != root)
				_exit(1); /* the root died before the prctl */
			child(i, len, root);
		}
		kids[i] = k;
	}
	close(rdy[1]);
	close(res[1]);
	/* The root's memory is its own too (filled after the forks, so no
	 * child shares it copy-on-write). */
	mem = fill_own(0, len);
	if (!mem)
		test_die("mmap %zu MiB: %s", mib, strerror(errno));
	for (long got = 0; got < nproc - 1;) {
		char b[64];
		ssize_t n = read(rdy[0], b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			test_die("only %ld of %ld children got ready", got, nproc - 1);
		got += n;
	}
	close(rdy[0]);
	test_msg("%ld processes x %zu MiB ready in %.3f s", nproc, mib, test_now() - t0);
	test_ready();
	test_wait();

	t0 = test_now();
	for (long i = 1; i < nproc; i++)
		if (kill(kids[i], SIGUSR1) < 0)
			fail("SIGUSR1 to process %ld (pid %d): %s", i, kids[i], strerror(errno));
	const char *why = check_own(0, mem, len, root, root_parent);
	if (why)
		fail("%s", why);
	long seen = 0, bad = 0;
	struct report rep;
	for (;;) {
		ssize_t n = read(res[0], &rep, sizeof(rep));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(rep))
			break;
		seen++;
		if (!rep.ok) {
			bad++;
			fail("%.*s", (int)sizeof(rep.msg), rep.msg);
		}
	}
	check(seen == nproc - 1, "%ld of %ld children reported", seen, nproc - 1);
	for (long i = 1; i < nproc; i++) {
		int status = 0;
		pid_t w;
		while ((w = waitpid(kids[i], &status, 0)) < 0 && errno == EINTR)
			;
		if (w != kids[i])
			fail("process %ld (pid %d) could not be reaped: %s", i, kids[i], strerror(errno));
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail("process %ld (pid %d) ended with status %#x", i, kids[i], status);
	}
	test_msg("verified %ld processes x %zu MiB in %.3f s, %ld bad", nproc, mib, test_now() - t0, bad);
	test_done();
}

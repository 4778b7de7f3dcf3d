/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cowshare [NWORKERS [MIB]]: the shape of a prefork server. The root
 * fills MIB MiB (default 256) with a pattern and forks NWORKERS workers
 * (default 9) that only read it, so they share it copy-on-write; each
 * worker also writes a few pages of its own in it, worker 1 drops a
 * range (MADV_DONTNEED: zeros for it alone), and the root rewrites a few
 * pages after the forks (the workers keep the old content there). After
 * restore every process checks every page: the shared pattern, its own
 * pages, zeros, the root's rewrite. The last worker forks a grandchild
 * that shares the same pages through it, and its own pages too. t_cowshare.py also measures the
 * tree's memory (PSS) before and after, and the image's size.
 *
 * stasis-test: zdtm:cowshare args="9 64" timeout=120
 * stasis-test: zdtm:cowshare:2-iterations args="3 16" iterations=2 asan=no
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define PG 4096UL
#define SHARED_SEED (1ULL << 40)
#define ROOT_PAGES 8      /* pages [0, 8) rewritten by the root after the forks */
#define OWN_AT 64         /* worker i writes pages OWN_AT + 16 i ... + OWN_PAGES */
#define OWN_PAGES 4
#define DROP_AT 32        /* worker 1 drops pages [32, 48) */
#define DROP_PAGES 16

struct report {
	int idx;
	int ok;
	char msg[200];
};

static int rdy[2], res[2];
static long grandchild; /* its idx: NWORKERS + 1, a child of worker NWORKERS */

static bool own_range(long idx, size_t p)
{
	return idx > 0 && p >= OWN_AT + 16 * (size_t)idx && p < OWN_AT + 16 * (size_t)idx + OWN_PAGES;
}

/* What process idx expects in page p: its seed, or 0 for zeros. */
static uint64_t expected(long idx, size_t p, int *zero)
{
	*zero = 0;
	if (idx == 0 && p < ROOT_PAGES)
		return (3ULL << 40) + p * (PG / 8);
	if (own_range(idx, p))
		return ((uint64_t)idx + 4) << 40 | p * (PG / 8);
	if (idx == grandchild && own_range(idx - 1, p)) /* its parent's, from before its fork */
		return ((uint64_t)idx + 3) << 40 | p * (PG / 8);
	if (idx == 1 && p >= DROP_AT && p < DROP_AT + DROP_PAGES)
		return *zero = 1, 0;
	return SHARED_SEED + p * (PG / 8);
}

static void write_own(long idx, unsigned char *mem, size_t npages)
{
	for (size_t p = 0; p < npages; p++) {
		int zero;
		uint64_t seed = expected(idx, p, &zero);
		if (!zero && seed != SHARED_SEED + p * (PG / 8))
			test_fill(mem + p * PG, PG, seed);
	}
	if (idx == 1 && madvise(mem + DROP_AT * PG, DROP_PAGES * PG, MADV_DONTNEED) < 0)
		test_die("madvise: %s", strerror(errno));
}

static const char *check_all(long idx, const unsigned char *mem, size_t npages, pid_t ppid)
{
	static char why[sizeof(((struct report *)0)->msg)];
	static const unsigned char zeros[PG];
	if (getppid() != ppid)
		return snprintf(why, sizeof(why), "process %ld: parent %d is now %d", idx, ppid, getppid()), why;
	for (size_t p = 0; p < npages; p++) {
		int zero;
		uint64_t seed = expected(idx, p, &zero);
		long off = zero ? (memcmp(mem + p * PG, zeros, PG) ? 0 : -1) : test_verify(mem + p * PG, PG, seed);
		if (off >= 0)
			return snprintf(why, sizeof(why), "process %ld (pid %d): page %zu differs at byte %ld%s", idx,
					getpid(), p, off, zero ? " (should be zeros)" : ""), why;
	}
	return NULL;
}

static void report(long idx, const unsigned char *mem, size_t npages, pid_t ppid)
{
	struct report rep = { .idx = (int)idx };
	const char *why = check_all(idx, mem, npages, ppid);
	rep.ok = !why;
	snprintf(rep.msg, sizeof(rep.msg), "%s", why ? why : "");
	if (write(res[1], &rep, sizeof(rep)) != sizeof(rep))
		_exit(3);
}

/* The grandchild: forked by the last worker after it wrote its pages. */
static void __attribute__((noreturn)) grandchild_main(unsigned char *mem, size_t npages, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	write_own(grandchild, mem, npages);
	if (write(rdy[1], "r", 1) != 1)
		_exit(2);
	close(rdy[1]);
	test_wait();
	report(grandchild, mem, npages, parent);
	_exit(0);
}

static void __attribute__((noreturn)) worker(long idx, unsigned char *mem, size_t npages, pid_t root)
{
	pid_t g = 0;
	close(rdy[0]);
	close(res[0]);
	write_own(idx, mem, npages);
	if (idx == grandchild - 1 && (g = fork()) == 0)
		grandchild_main(mem, npages, getppid());
	if (g < 0 || write(rdy[1], "r", 1) != 1)
		_exit(2);
	close(rdy[1]);
	test_wait();
	if (g > 0)
		kill(g, SIGUSR1);
	report(idx, mem, npages, root);
	int status = 0;
	if (g > 0 && (waitpid(g, &status, 0) != g || !WIFEXITED(status) || WEXITSTATUS(status)))
		_exit(4);
	_exit(0);
}

static void collect(long nworkers, const pid_t *kids)
{
	struct report rep;
	long seen = 0;
	for (;;) {
		ssize_t n = read(res[0], &rep, sizeof(rep));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(rep))
			break;
		seen++;
		if (!rep.ok)
			fail("%.*s", (int)sizeof(rep.msg), rep.msg);
	}
	check(seen == nworkers + 1, "%ld of %ld workers (and the grandchild) reported", seen, nworkers + 1);
	for (long i = 1; i <= nworkers; i++) {
		int status = 0;
		pid_t w;
		while ((w = waitpid(kids[i], &status, 0)) < 0 && errno == EINTR)
			;
		if (w != kids[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail("worker %ld (pid %d) ended with status %#x", i, kids[i], status);
	}
}

int main(int argc, char **argv)
{
	long nworkers = argc > 1 ? strtol(argv[1], NULL, 0) : 9;
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 256;
	size_t npages = (mib << 20) / PG;
	pid_t root = getpid(), root_parent = getppid();

	test_init(argc, argv);
	grandchild = nworkers + 1;
	if (nworkers < 2 || nworkers > 1000 || mib < 1 || npages < OWN_AT + 16 * (size_t)(nworkers + 2))
		test_die("usage: cowshare [NWORKERS [MIB]] (MIB large enough for the workers' pages)");
	pid_t *kids = calloc((size_t)nworkers + 1, sizeof(*kids));
	unsigned char *mem = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!kids || mem == MAP_FAILED || pipe(rdy) < 0 || pipe(res) < 0)
		test_die("setup: %s", strerror(errno));
	test_fill(mem, npages * PG, SHARED_SEED);
	for (long i = 1; i <= nworkers; i++) {
		pid_t k = fork();
		if (k < 0)
			test_die("fork of worker %ld: %s", i, strerror(errno));
		if (k == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != root)
				_exit(1);
			worker(i, mem, npages, root);
		}
		kids[i] = k;
	}
	close(rdy[1]);
	close(res[1]);
	write_own(0, mem, npages);
	for (long got = 0; got < nworkers + 1;) {
		char b[64];
		ssize_t n = read(rdy[0], b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			test_die("only %ld of %ld workers (and the grandchild) got ready", got, nworkers + 1);
		got += n;
	}
	close(rdy[0]);
	test_ready();
	test_wait();

	for (long i = 1; i <= nworkers; i++)
		if (kill(kids[i], SIGUSR1) < 0)
			fail("SIGUSR1 to worker %ld (pid %d): %s", i, kids[i], strerror(errno));
	const char *why = check_all(0, mem, npages, root_parent);
	if (why)
		fail("%s", why);
	collect(nworkers, kids);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* predump_madv: five private anonymous mappings, each one VMA, filled
 * with a pattern. SIGUSR2 (tests/t_predump.py, between a pre-dump and the
 * final dump): each whole mapping gets one madvise (MADV_DONTFORK,
 * WIPEONFORK, DONTDUMP, HUGEPAGE, NOHUGEPAGE), which changes its VmFlags
 * and nothing /proc/PID/maps shows, and its first page is rewritten;
 * prints STEP 1. SIGUSR1: each mapping has its flag over all of it (or
 * none, without SIGUSR2), its pages what was last written, a forked
 * child sees the WIPEONFORK one zeroed; then PASS.
 *
 * stasis-test: zdtm:predump_madv
 */
#include "zdtmtst.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL
#define PAGES 8 /* per mapping */
#define SEED(i, p) ((i) * 1000 + (p) + 1) /* page p of mapping i; p = PAGES: rewritten */

static const struct {
	int advice;
	const char *flag; /* as VmFlags shows it */
} adv[] = {
	{ MADV_DONTFORK, "dc" }, { MADV_WIPEONFORK, "wf" }, { MADV_DONTDUMP, "dd" },
	{ MADV_HUGEPAGE, "hg" },  { MADV_NOHUGEPAGE, "nh" },
};
#define N (sizeof(adv) / sizeof(adv[0]))

static volatile sig_atomic_t asked;

static void on_usr2(int sig)
{
	(void)sig;
	asked = 1;
}

/* The smaps entry that covers addr: whether flag is in its VmFlags, and
 * its range. -1: no entry. */
static int entry(const void *addr, const char *flag, unsigned long *rs, unsigned long *re)
{
	char line[512];
	unsigned long a = (unsigned long)addr, s, e;
	int in = 0, found = -1;
	FILE *f = fopen("/proc/self/smaps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = a >= s && a < e;
			if (in)
				*rs = s, *re = e;
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			char pat[8];
			snprintf(pat, sizeof(pat), " %s", flag);
			found = strstr(line + 8, pat) != NULL;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* Mapping i is one VMA, with (want 1) or without (0) its flag. */
static void check_map(char *m, size_t i, int want)
{
	unsigned long s = 0, e = 0;
	check(entry(m, adv[i].flag, &s, &e) == want, "mapping %zu: VmFlag %s %s", i, adv[i].flag,
	      want ? "lost" : "appeared");
	check(s == (unsigned long)m && e == (unsigned long)(m + PAGES * PG), "mapping %zu is %#lx-%#lx, not one VMA",
	      i, s, e);
}

int main(int argc, char **argv)
{
	char *m[N];
	int stepped = 0;
	test_init(argc, argv);
	signal(SIGUSR2, on_usr2);
	/* One mapping, cut into N by PROT_NONE pages: N VMAs that cannot merge. */
	char *all = mmap(NULL, N * (PAGES + 1) * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (all == MAP_FAILED)
		test_die("mmap: %s", strerror(errno));
	for (size_t i = 0; i < N; i++) {
		m[i] = all + i * (PAGES + 1) * PG;
		if (mprotect(m[i] + PAGES * PG, PG, PROT_NONE) < 0)
			test_die("mprotect: %s", strerror(errno));
		for (size_t p = 0; p < PAGES; p++)
			test_fill(m[i] + p * PG, PG, SEED(i, p));
	}
	test_ready();
	while (!test_go) {
		if (asked && !stepped) {
			for (size_t i = 0; i < N; i++) {
				if (madvise(m[i], PAGES * PG, adv[i].advice) < 0)
					test_die("madvise %s: %s", adv[i].flag, strerror(errno));
				test_fill(m[i], PG, SEED(i, PAGES));
				check_map(m[i], i, 1);
			}
			stepped = 1;
			printf("STEP 1\n");
			fflush(stdout);
		}
		usleep(10000);
	}
	for (size_t i = 0; i < N; i++) {
		check_map(m[i], i, stepped);
		check(test_verify(m[i], PG, SEED(i, stepped ? PAGES : 0)) < 0, "mapping %zu: first page wrong", i);
		for (size_t p = 1; p < PAGES; p++)
			check(test_verify(m[i] + p * PG, PG, SEED(i, p)) < 0, "mapping %zu: page %zu wrong", i, p);
	}
	pid_t c = fork();
	if (c == 0) {
		int ok = stepped ? !m[1][0] && !m[1][PG] && !m[1][PAGES * PG - 1] : test_verify(m[1] + PG, PG, SEED(1, 1)) < 0;
		_exit(ok ? 0 : 1);
	}
	int status;
	check(c > 0 && waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child did not see the WIPEONFORK mapping as it should");
	test_done();
}

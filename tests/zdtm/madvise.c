/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* madvise flags on ranges of anonymous memory: MADV_DONTFORK, WIPEONFORK,
 * DONTDUMP, HUGEPAGE, NOHUGEPAGE, each on the middle of a mapping (so the
 * mapping is split). After restore smaps shows each flag on its range
 * only, and a forked child sees the wiped range zeroed.
 *
 * stasis-test: zdtm:madvise
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define PG 4096
static const struct {
	int advice;
	const char *flag; /* as VmFlags shows it */
} adv[] = {
	{ MADV_DONTFORK, "dc" }, { MADV_WIPEONFORK, "wf" }, { MADV_DONTDUMP, "dd" },
	{ MADV_HUGEPAGE, "hg" },  { MADV_NOHUGEPAGE, "nh" },
};
#define N (sizeof(adv) / sizeof(adv[0]))

/* Whether the smaps entry that covers addr has flag in its VmFlags. */
static int has_flag(const void *addr, const char *flag)
{
	char line[512];
	unsigned long a = (unsigned long)addr, s, e;
	int in = 0, found = -1;
	FILE *f = fopen("/proc/self/smaps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = a >= s && a < e;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			char pat[8];
			snprintf(pat, sizeof(pat), " %s", flag);
			found = strstr(line + 8, pat) != NULL;
		}
	}
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	char *m[N];
	test_init(argc, argv);
	for (size_t i = 0; i < N; i++) {
		m[i] = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m[i] == MAP_FAILED || madvise(m[i] + PG, PG, adv[i].advice) < 0)
			test_die("madvise %s: %s", adv[i].flag, strerror(errno));
		memset(m[i], 0x5a, 3 * PG);
	}

	test_ready();
	test_wait();

	for (size_t i = 0; i < N; i++) {
		check(has_flag(m[i] + PG, adv[i].flag) == 1, "range %zu lost VmFlag %s", i, adv[i].flag);
		check(has_flag(m[i], adv[i].flag) == 0 && has_flag(m[i] + 2 * PG, adv[i].flag) == 0,
		      "VmFlag %s spread past its range %zu", adv[i].flag, i);
		check(m[i][PG] == 0x5a, "range %zu lost its content", i);
	}
	pid_t c = fork();
	if (c == 0)
		_exit(m[1][PG] == 0 && m[1][0] == 0x5a ? 0 : 1);
	int status;
	check(c > 0 && waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child did not see the WIPEONFORK range zeroed");
	test_done();
}

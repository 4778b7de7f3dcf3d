/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-process settings: child subreaper, transparent huge pages disabled,
 * oom_score_adj, securebits. Each must read back the same after restore.
 *
 * stasis-test: zdtm:prctl
 */
#include <errno.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "zdtmtst.h"

#define BITS (SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_CAP_AMBIENT_RAISE)

static int oom_adj(void)
{
	int v = -5000;
	FILE *f = fopen("/proc/self/oom_score_adj", "re");
	if (f && fscanf(f, "%d", &v) != 1)
		v = -5000;
	if (f)
		fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	int sub = 0;
	test_init(argc, argv);
	FILE *f = fopen("/proc/self/oom_score_adj", "we");
	if (!f || fprintf(f, "%d\n", 345) < 0 || fclose(f) != 0)
		test_die("oom_score_adj: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 || prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
		test_die("prctl: %s", strerror(errno));
	bool secure = prctl(PR_SET_SECUREBITS, BITS, 0, 0, 0) == 0;
	if (!secure)
		test_msg("securebits not set (%s): not checked", strerror(errno));

	test_ready();
	test_wait();

	check(prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0) == 0 && sub == 1, "no longer a child subreaper");
	check(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP no longer disabled (%d)",
	      prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	check(oom_adj() == 345, "oom_score_adj is %d, expected 345", oom_adj());
	if (secure)
		check(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) == BITS, "securebits %#x, expected %#x",
		      prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), BITS);
	test_done();
}

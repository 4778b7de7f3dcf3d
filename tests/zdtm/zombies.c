/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Zombies of every ending: exit 7, killed by SIGKILL, by SIGTERM, by
 * SIGSEGV without a core (RLIMIT_CORE=0: no core bit), and by SIGQUIT
 * with a core dumped (a small one: the core bit, WCOREDUMP, set). After
 * restore the parent reaps each with the exact status it had.
 *
 * stasis-test: zdtm:zombies
 * stasis-test: zdtm:zombies:2-iterations iterations=2 asan=no
 */
#include "zdtmtst.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define NZ 5

static pid_t spawn(int how)
{
	pid_t pid = fork();
	if (pid < 0)
		test_die("fork: %s", strerror(errno));
	if (pid)
		return pid;
	struct rlimit core = { how == 4 ? 65536 : 0, how == 4 ? 65536 : 0 };
	setrlimit(RLIMIT_CORE, &core);
	/* A shell's background job starts with SIGQUIT (and SIGINT) ignored,
	 * which the child would inherit: the zombie it must become is a
	 * death by the signal, whatever started the test. */
	signal(SIGUSR1, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	switch (how) {
	case 0:
		_exit(7);
	case 1:
		raise(SIGKILL);
		break;
	case 2:
		raise(SIGTERM);
		break;
	case 3:
		raise(SIGSEGV);
		break;
	default:
		raise(SIGQUIT);
	}
	_exit(99);
}

int main(int argc, char **argv)
{
	pid_t z[NZ];
	int want[NZ];

	test_init(argc, argv);
	for (int i = 0; i < NZ; i++) {
		z[i] = spawn(i);
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		while (waitid(P_PID, (id_t)z[i], &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
		/* The status wait gives, read without reaping. */
		want[i] = si.si_code == CLD_EXITED ? si.si_status << 8
						   : si.si_status | (si.si_code == CLD_DUMPED ? 0x80 : 0);
	}
	check(want[4] & 0x80, "setup: SIGQUIT left no core (status %#x); is core_pattern a file?", want[4]);
	unlink("core");

	test_ready();
	test_wait();

	for (int i = 0; i < NZ; i++) {
		int st = -1;
		pid_t r = waitpid(z[i], &st, WNOHANG);
		check(r == z[i], "zombie %d could not be reaped: %s", z[i], r < 0 ? strerror(errno) : "not dead");
		check(r != z[i] || st == want[i], "zombie %d: status %#x, expected %#x%s", z[i], st, want[i],
		      WCOREDUMP(want[i]) && !WCOREDUMP(st) ? " (core bit lost)" : "");
	}
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A process and a child that shares its memory and signal handlers
 * without being a thread: clone(CLONE_VM|CLONE_SIGHAND|SIGCHLD) on a
 * stack of its own. They talk through plain variables. After restore they
 * still share both (kcmp); a word one writes the other reads at once; a
 * handler the child installs is ours; the child's stack (a canary and a
 * counter on it) is intact; the child exits with the status we expect.
 *
 * The child runs no libc code that needs a thread of its own (it shares
 * our TLS): raw syscalls and sigaction only.
 *
 * stasis-test: zdtm:shared_vm
 */
#include "zdtmtst.h"

#include <errno.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK (256 << 10)
#define CANARY 0x5eed5eed5eedULL

enum { NONE, ECHO, HANDLER, QUIT };

static volatile int cmd, ack;         /* we set cmd, the child answers in ack */
static volatile unsigned long word, echo;
static volatile unsigned long child_ticks, child_bad;
static volatile sig_atomic_t got_usr2;

static void on_usr2(int sig)
{
	(void)sig;
	got_usr2 = 1;
}

static void nap(void)
{
	struct timespec ts = { 0, 1000 * 1000 };
	syscall(SYS_nanosleep, &ts, NULL);
}

static void do_cmd(int c)
{
	if (c == ECHO)
		echo = word + 1;
	if (c == HANDLER) {
		struct sigaction sa = { .sa_handler = on_usr2 };
		if (sigaction(SIGUSR2, &sa, NULL) < 0)
			child_bad = 2;
	}
	cmd = NONE;
	__atomic_store_n(&ack, c, __ATOMIC_SEQ_CST);
	if (c == QUIT)
		syscall(SYS_exit, child_bad ? 3 : 7);
}

/* Its own stack holds a canary and a counter it checks each round. */
static int vm_child(void *arg)
{
	(void)arg;
	volatile unsigned long canary = CANARY, mine = 0;
	for (;;) {
		if (canary != CANARY || mine != child_ticks)
			child_bad = 1;
		mine++;
		child_ticks = mine;
		int c = __atomic_load_n(&cmd, __ATOMIC_SEQ_CST);
		if (c != NONE)
			do_cmd(c);
		nap();
	}
	return 0;
}

static bool ask(int c)
{
	ack = NONE;
	__atomic_store_n(&cmd, c, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 60 * 1000; i++) {
		if (__atomic_load_n(&ack, __ATOMIC_SEQ_CST) == c)
			return true;
		nap();
	}
	fail("the child did not answer command %d", c);
	return false;
}

static void check_shared(pid_t child)
{
	pid_t me = getpid();
	check(syscall(SYS_kcmp, me, child, KCMP_VM, 0, 0) == 0, "child %d has memory of its own", child);
	check(syscall(SYS_kcmp, me, child, KCMP_SIGHAND, 0, 0) == 0, "child %d has signal handlers of its own", child);
	unsigned long t = child_ticks;
	for (int i = 0; i < 60 * 1000 && child_ticks == t; i++)
		nap();
	check(child_ticks != t, "the child does not run");
	word = 41;
	check(ask(ECHO) && echo == 42, "the child did not see our write (echo %lu)", echo);
	check(ask(HANDLER), "no handler from the child");
	struct sigaction now;
	check(sigaction(SIGUSR2, NULL, &now) == 0 && now.sa_handler == on_usr2,
	      "the handler the child installed is not ours");
	raise(SIGUSR2);
	check(got_usr2, "SIGUSR2 did not run the child's handler in us");
	check(!child_bad, "the child found its stack changed (%lu)", child_bad);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *stack = malloc(STACK);
	pid_t child = stack ? clone(vm_child, stack + STACK, CLONE_VM | CLONE_SIGHAND | SIGCHLD, NULL) : -1;
	if (child < 0)
		test_die("clone: %s", strerror(errno));
	word = 1;
	if (!ask(ECHO) || echo != 2)
		test_die("the child does not answer");
	test_ready();
	test_wait();

	check_shared(child);
	int status = 0;
	if (ask(QUIT) && waitpid(child, &status, 0) == child)
		check(WIFEXITED(status) && WEXITSTATUS(status) == 7, "the child ended with status 0x%x", status);
	else
		fail("cannot reap the child %d: %s", child, strerror(errno));
	test_done();
}

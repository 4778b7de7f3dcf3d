/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Signal state: handlers with flags and masks, ignored signals, the blocked
 * mask, pending blocked signals (shared and thread-directed, queued
 * realtime signals with values), ITIMER_REAL / ITIMER_VIRTUAL with
 * intervals, and a sigaltstack used by an SA_ONSTACK handler.
 *
 * stasis-test: zdtm:signals
 */
#include "zdtmtst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)

static volatile sig_atomic_t usr2_ran, usr2_on_alt, usr2_mask_ok, hup_ran, alrm_count, vtalrm_count;
static char *alt_stack;

static void usr2_action(int sig, siginfo_t *si, void *uc)
{
	char local;
	sigset_t cur;

	(void)uc;
	usr2_ran++;
	usr2_on_alt = &local >= alt_stack && &local < alt_stack + ALT_SIZE;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	usr2_mask_ok = sigismember(&cur, SIGWINCH) && sigismember(&cur, SIGTTIN) && sigismember(&cur, SIGUSR2) &&
		       si->si_signo == sig && si->si_code == SI_TKILL;
}

static void hup_handler(int sig)
{
	(void)sig;
	hup_ran++;
}

static void alrm_handler(int sig)
{
	(void)sig;
	alrm_count++;
}

static void vtalrm_handler(int sig)
{
	(void)sig;
	vtalrm_count++;
}

static unsigned long long sigword(const sigset_t *s)
{
	unsigned long long w;

	memcpy(&w, s, sizeof(w));
	return w;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	int watched[] = { SIGUSR2, SIGHUP, SIGALRM, SIGVTALRM, SIGPIPE, SIGXFSZ, SIGWINCH, SIGTTOU,
			  SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGRTMIN + 2, SIGRTMIN + 5, SIGCHLD };
	int nw = sizeof(watched) / sizeof(watched[0]);
	struct sigaction before[sizeof(watched) / sizeof(watched[0])], sa;
	sigset_t blocked, cur, pend;
	stack_t ss, ss_after;
	struct itimerval real, virt, real_before, virt_before, real_after, virt_after;
	union sigval v;
	double t_ready, elapsed;
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	pid_t pid = getpid();

	test_init(argc, argv);
	alt_stack = malloc(ALT_SIZE);
	ss.ss_sp = alt_stack;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) < 0)
		test_die("sigaltstack: %s", strerror(errno));

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = usr2_action;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGWINCH);
	sigaddset(&sa.sa_mask, SIGTTIN);
	sigaction(SIGUSR2, &sa, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hup_handler;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGRTMIN + 7);
	sigaction(SIGHUP, &sa, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alrm_handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = vtalrm_handler;
	sa.sa_flags = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGVTALRM, &sa, NULL);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGWINCH, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);

	sigemptyset(&blocked);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGQUIT);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGRTMIN + 2);
	sigaddset(&blocked, SIGRTMIN + 5);
	sigaddset(&blocked, SIGUSR1); /* test_wait unblocks it while waiting */
	sigprocmask(SIG_SETMASK, &blocked, NULL);

	/* pending: SIGINT shared (kill), SIGQUIT thread-directed (tgkill),
	 * SIGRTMIN+2 queued twice with values, SIGRTMIN+5 once */
	kill(pid, SIGINT);
	syscall(SYS_tgkill, pid, pid, SIGQUIT);
	v.sival_int = 111;
	sigqueue(pid, SIGRTMIN + 2, v);
	v.sival_int = 222;
	sigqueue(pid, SIGRTMIN + 2, v);
	v.sival_int = 333;
	sigqueue(pid, SIGRTMIN + 5, v);

	real.it_interval = (struct timeval){ 7, 0 };
	real.it_value = (struct timeval){ 5, 0 };
	virt.it_interval = (struct timeval){ 3, 0 };
	virt.it_value = (struct timeval){ 2, 0 };
	if (setitimer(ITIMER_REAL, &real, NULL) || setitimer(ITIMER_VIRTUAL, &virt, NULL))
		test_die("setitimer: %s", strerror(errno));
	getitimer(ITIMER_REAL, &real_before);
	getitimer(ITIMER_VIRTUAL, &virt_before);

	for (int i = 0; i < nw; i++)
		sigaction(watched[i], NULL, &before[i]);
	t_ready = test_now();

	test_ready();
	test_wait();

	elapsed = test_now() - t_ready;
	/* dispositions */
	for (int i = 0; i < nw; i++) {
		struct sigaction now;

		sigaction(watched[i], NULL, &now);
		check(now.sa_handler == before[i].sa_handler, "signal %d: handler %p, was %p", watched[i],
		      (void *)now.sa_handler, (void *)before[i].sa_handler);
		check(now.sa_flags == before[i].sa_flags, "signal %d: sa_flags %#x, was %#x", watched[i], now.sa_flags,
		      before[i].sa_flags);
		check(!memcmp(&now.sa_mask, &before[i].sa_mask, 8), "signal %d: sa_mask changed", watched[i]);
	}
	/* blocked mask (as restored by sigsuspend in test_wait) */
	sigprocmask(SIG_BLOCK, NULL, &cur);
	check(!memcmp(&cur, &blocked, 8), "blocked mask %#llx, expected %#llx", sigword(&cur),
	      sigword(&blocked));
	/* pending */
	sigpending(&pend);
	check(sigismember(&pend, SIGINT) && sigismember(&pend, SIGQUIT) && sigismember(&pend, SIGRTMIN + 2) &&
	      sigismember(&pend, SIGRTMIN + 5), "pending set %#llx lacks a signal", sigword(&pend));
	check(!sigismember(&pend, SIGTERM), "SIGTERM pending");
	{
		struct { int sig, code, val; } want[] = {
			{ SIGINT, SI_USER, 0 }, { SIGQUIT, SI_TKILL, 0 }, { SIGRTMIN + 2, SI_QUEUE, 111 },
			{ SIGRTMIN + 2, SI_QUEUE, 222 }, { SIGRTMIN + 5, SI_QUEUE, 333 },
		};
		for (int i = 0; i < 5; i++) {
			sigset_t one;
			int r;

			sigemptyset(&one);
			sigaddset(&one, want[i].sig);
			memset(&si, 0, sizeof(si));
			r = sigtimedwait(&one, &si, &zero);
			if (r != want[i].sig) {
				fail("sigtimedwait for pending signal %d (#%d) returned %d (%s)", want[i].sig, i, r,
				     strerror(errno));
				continue;
			}
			/* tgkill gives SI_TKILL or SI_USER depending on the kernel */
			check(si.si_code == want[i].code || (want[i].code == SI_TKILL && si.si_code == SI_USER),
			      "signal %d: si_code %d, expected %d", r, si.si_code, want[i].code);
			check(si.si_pid == pid, "signal %d: si_pid %d, expected %d", r, si.si_pid, pid);
			check(si.si_uid == getuid(), "signal %d: si_uid %d", r, si.si_uid);
			if (want[i].code == SI_QUEUE)
				check(si.si_value.sival_int == want[i].val, "signal %d: value %d, expected %d", r,
				      si.si_value.sival_int, want[i].val);
		}
		sigpending(&pend);
		check(sigisemptyset(&pend), "signals still pending after draining: %#llx", sigword(&pend));
	}
	/* timers */
	getitimer(ITIMER_REAL, &real_after);
	getitimer(ITIMER_VIRTUAL, &virt_after);
	check(alrm_count == 0 && vtalrm_count == 0, "timer fired (SIGALRM %d, SIGVTALRM %d)", (int)alrm_count,
	      (int)vtalrm_count);
	check(!memcmp(&real_after.it_interval, &real_before.it_interval, sizeof(struct timeval)),
	      "ITIMER_REAL interval %.6f, was %.6f", tv_s(real_after.it_interval), tv_s(real_before.it_interval));
	check(!memcmp(&virt_after.it_interval, &virt_before.it_interval, sizeof(struct timeval)),
	      "ITIMER_VIRTUAL interval %.6f, was %.6f", tv_s(virt_after.it_interval), tv_s(virt_before.it_interval));
	check(tv_s(real_after.it_value) > 0 && tv_s(real_after.it_value) <= tv_s(real_before.it_value) + 0.001 &&
	      tv_s(real_after.it_value) >= tv_s(real_before.it_value) - elapsed - 0.05,
	      "ITIMER_REAL remaining %.6f s (was %.6f, %.3f s elapsed)", tv_s(real_after.it_value),
	      tv_s(real_before.it_value), elapsed);
	/* reading a CPU timer rounds up by up to a tick: allow 10 ms */
	check(tv_s(virt_after.it_value) > 0 && tv_s(virt_after.it_value) <= tv_s(virt_before.it_value) + 0.01,
	      "ITIMER_VIRTUAL remaining %.6f s (was %.6f)", tv_s(virt_after.it_value), tv_s(virt_before.it_value));
	check(tv_s(virt_after.it_value) > tv_s(virt_before.it_value) - 0.5,
	      "ITIMER_VIRTUAL remaining %.6f s, was %.6f (more than 0.5 s of CPU used?)", tv_s(virt_after.it_value),
	      tv_s(virt_before.it_value));
	/* sigaltstack and the handlers still work as set up */
	sigaltstack(NULL, &ss_after);
	check(ss_after.ss_sp == ss.ss_sp && ss_after.ss_size == ss.ss_size && ss_after.ss_flags == 0,
	      "sigaltstack %p/%zu/%d, was %p/%zu/0", ss_after.ss_sp, ss_after.ss_size, ss_after.ss_flags, ss.ss_sp,
	      ss.ss_size);
	raise(SIGUSR2);
	check(usr2_ran == 1, "SIGUSR2 handler ran %d times", (int)usr2_ran);
	check(usr2_on_alt, "SA_ONSTACK handler not on the alternate stack");
	check(usr2_mask_ok, "SIGUSR2 handler: wrong mask or siginfo");
	raise(SIGHUP);
	check(hup_ran == 1, "SIGHUP handler ran %d times", (int)hup_ran);
	sigaction(SIGHUP, NULL, &sa);
	check(sa.sa_handler == SIG_DFL, "SA_RESETHAND did not reset SIGHUP");
	test_done();
}

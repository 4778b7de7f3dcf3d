/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/interrupt.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static const int signals[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
static volatile sig_atomic_t pending;
static volatile sig_atomic_t forward_to;

static void on_signal(int sig)
{
	int saved = errno;
	if (!pending)
		pending = sig;
	if (forward_to > 0)
		kill((pid_t)forward_to, sig);
	errno = saved;
}

static void install(void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		sigaction(signals[i], &sa, NULL);
}

void interrupt_arm(void)
{
	install(on_signal);
}

void interrupt_ignore(void)
{
	install(SIG_IGN);
}

int interrupt_pending(void)
{
	return pending;
}

int interrupt_check(void)
{
	return pending ? -EINTR : 0;
}

void interrupt_forward(pid_t pid)
{
	forward_to = pid;
}

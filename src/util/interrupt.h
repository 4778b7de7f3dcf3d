/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deferred termination signals. A dump must never stop in the middle of a
 * remote system call, so SIGINT, SIGTERM, SIGHUP and SIGPIPE only set a
 * flag; the dump looks at it at points where stopping is safe and rolls
 * back from there (DESIGN.md §5a). Nothing jumps out of a handler. */
#pragma once

#include <sys/types.h>

/* Installs the handlers (SA_RESTART: slow calls carry on). Idempotent. */
void interrupt_arm(void);
/* The signal that came since interrupt_arm, or 0. */
int interrupt_pending(void);
/* -EINTR (not logged) when a signal came: for `if ((r = interrupt_check()) < 0)`. */
int interrupt_check(void);
/* A signal that comes from now on is passed on to pid too (a child doing
 * the work in a container's namespaces); 0 stops that. */
void interrupt_forward(pid_t pid);
/* Ignores the four signals (the guardian, which must outlive them). */
void interrupt_ignore(void);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stopping threads with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT), waiting
 * for their stops, and letting them go. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define SEIZE_OPTS_DUMP 1
#define SEIZE_OPTS_RESTORE 2

/* Seizes and interrupts one thread and waits until it is in a ptrace stop.
 * Signals that were being delivered at that moment are passed on (they run
 * their handler before the stop): the stop is always a clean event stop. */
int seize_thread(pid_t tid, int which);
/* The two halves, for a frozen cgroup: seize and interrupt every thread
 * while frozen, thaw, then wait for each stop. */
int seize_start(pid_t tid, int which);
int seize_wait(pid_t tid);
/* Waits for tid's next stop; returns the wait status. -ESRCH if it died. */
int wait_stop(pid_t tid, int *ret_status);
bool status_is_syscall_stop(int status);
bool status_is_event(int status, int event);
/* Seizes every thread of pid until the thread list stops changing. */
int seize_all(pid_t pid, int which, pid_t **ret_tids, size_t *ret_n);
void detach_thread(pid_t tid);
/* The thread is killed when we exit (and stays stopped until then). */
int seize_set_exitkill(pid_t tid);
/* The seize of pid failed with r: logs why in words a user can act on (a
 * tracer already attached, named by pid and command; missing privilege)
 * and returns the error to pass on. */
int seize_refused(pid_t pid, int r);
/* The threads of pid, as /proc/PID/task lists them. */
int list_tids(pid_t pid, pid_t **ret, size_t *ret_n);

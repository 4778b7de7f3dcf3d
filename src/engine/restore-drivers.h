/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-process phase of a tree's restore (memory finished, then the
 * body: files, task, signals, threads, timers, creds, registers) run by
 * several drivers at once, one thread each, up to the core count
 * (STASIS_DRIVERS=N overrides; 1: one process after another, in tree
 * order, as before). Restore only; for restore.c.
 *
 * ptrace requests come only from a process's tracer thread, and the tree
 * was made by ours, the main one. A process for another driver is handed
 * over stopped: parked in a pause() loop of its scratch area (every signal
 * blocked, as it has them while we work), detached without a signal, and
 * seized again (PTRACE_SEIZE + PTRACE_INTERRUPT, which its parent never
 * sees) by the driver, which puts its registers back (orig_rax -1: the
 * kernel must not restart the pause()). Each driver then traces it until
 * the tree is let go or killed. The remote layer needs no particular
 * stop: every call sets all registers and resumes from whatever ptrace
 * stop the thread is in (PTRACE_CONT to the int3 of a one-stop call,
 * PTRACE_SYSCALL otherwise), so the interrupt's event stop does as well
 * as the syscall-exit stop sync_stub (restore-tree.c) leaves a new stub in.
 *
 * What the bodies share, and how it stays as it was one after another:
 *   - processes sharing memory, an fd table, fs info or signal handlers
 *     (share.h) are one chain, restored by one driver in tree order, so
 *     "the last sharer does it" and the SIGTRAP fix-up (the int3 of a
 *     remote call resets SIGTRAP's action in the handlers' table) still
 *     come last in their table;
 *   - the fds (the table of descriptions made, the one transport the
 *     stubs share, a description opened by its first holder) are
 *     restored in tree order: process i's files step waits for those of
 *     every process before it (drivers_files_begin/end);
 *   - the first failure stops the others (before their next process, in
 *     a wait for the files turn, the page fill cancelled); the threads
 *     stay until tree_kill has killed what they trace. */
#pragma once

#include <stddef.h>

struct restore_ctx;
struct rproc;

/* Every live process of the tree through restore_one (restore-int.h);
 * returns when all drivers have stopped: 0, or the first failure. The
 * drivers stay (c->drv) until drivers_detach or drivers_end. */
int drivers_run(struct restore_ctx *c);
/* Around the files step of process idx: waits for the turn (-ECANCELED
 * when another driver failed), and passes it on. No-ops with no drivers. */
int drivers_files_begin(struct restore_ctx *c, size_t idx);
void drivers_files_end(struct restore_ctx *c, size_t idx);
/* The restore succeeded: every thread of the tree let go by its tracer,
 * children before their parents. */
void drivers_detach(struct restore_ctx *c);
/* The threads ended (after drivers_detach, or after tree_kill). */
void drivers_end(struct restore_ctx *c);

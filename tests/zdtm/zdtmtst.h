/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers for the ZDTM-style workloads.
 *
 * Protocol: the runner starts a workload with cwd = a fresh directory,
 * stdout and stderr appended to a log file there, stdin a pipe. The
 * workload sets up its state, calls test_ready() ("READY"), waits for
 * SIGUSR1 (test_wait*), then checks its state and calls test_done(), which
 * prints "PASS" (exit 0) or "FAIL: <first problem>" (exit 1). A workload
 * must also pass when it is signalled without being dumped. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern volatile sig_atomic_t test_go;

/* Installs the SIGUSR1 handler (no SA_RESTART) and makes stdout unbuffered. */
void test_init(int argc, char **argv);
/* Prints READY (flushed). */
void test_ready(void);
/* Waits for SIGUSR1 with sigsuspend; the blocked mask outside the wait is
 * the caller's, SIGUSR1 is kept blocked between waits. */
void test_wait(void);
/* Waits for SIGUSR1 with pause() in a loop (SIGUSR1 left unblocked). */
void test_wait_pause(void);

/* Records a failure (the first one is what FAIL reports; all are logged). */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records a failure unless cond. */
#define check(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)
int test_failures(void);
/* Prints a message to the log without failing. */
void test_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Fatal setup error: prints "FAIL: setup: ..." and exits 1. */
void test_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints PASS or FAIL and exits. */
void test_done(void) __attribute__((noreturn));

/* Deterministic pattern helpers. */
uint64_t test_mix64(uint64_t x);
void test_fill(void *buf, size_t len, uint64_t seed);
/* Returns the offset of the first differing byte, or -1 when equal. */
long test_verify(const void *buf, size_t len, uint64_t seed);

/* Finds the /proc/self/maps line covering addr; copies its perms ("rw-p")
 * into perms[5]. Returns 0, or -1 when no mapping covers addr. */
int test_map_perms(const void *addr, char perms[5]);

double test_now(void); /* CLOCK_MONOTONIC seconds */

/* Sockets. Sends one message, msg, with fd in SCM_RIGHTS (dies on error). */
void test_send_fd(int sock, const char *msg, int fd);
/* Writes pat[0, limit) until the socket takes no more (non-blocking for
 * the while); returns how much it took. */
size_t test_fill_socket(int s, const uint8_t *pat, size_t limit);
/* Reads n bytes and checks them against test_fill's pattern of seed:
 * NULL, or what went wrong. */
const char *test_drain(int s, size_t n, uint64_t seed);
/* Writes 4 bytes out, reads 4 and compares them with in: NULL, or what
 * went wrong. */
const char *test_ping(int s, const char *out, const char *in);

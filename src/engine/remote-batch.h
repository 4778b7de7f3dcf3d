/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Batched remote system calls (restore only). A remote call is a ptrace
 * round trip (~40 us, DESIGN.md §7) and a restore makes a hundred of them
 * per process; most do not depend on each other's results (MAP_FIXED
 * mmaps, mprotects, rt_sigaction, prlimit...). A batch writes the calls
 * into the scratch area with a loop of a few instructions that makes them
 * one after the other and traps when done or at the first failing call:
 * one round trip for the lot.
 *
 * The loop needs a scratch area that is mapped and executable (the
 * restore's stubs); elsewhere the calls of a batch go one by one
 * (remote_syscall), with the same results. Only calls that leave the
 * scratch area alone: no munmap/mremap/MAP_FIXED over it, no execve, no
 * clone. The dump keeps single calls (a thread let go mid-call must spin
 * on its trap page). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/remote.h"

#define RBATCH_MAX 128
#define RBATCH_DATA (16u << 10)

#define RBATCH_NONE ((size_t)-1) /* rbatch.failed: the batch itself failed */
#define RB_MAY_FAIL 1u /* a failure is the caller's to judge: the batch goes on */

struct rbatch_call {
	long nr;
	uint64_t a[6];
	long ret;       /* after rbatch_run: the result, or -ECANCELED if not made */
	uint32_t flags; /* RB_* */
	uint32_t tag;   /* the caller's, to name the call in a message */
};

struct rbatch {
	struct remote *r;
	pid_t tid;
	size_t n;
	size_t failed;   /* after rbatch_run < 0: the index of the failing call */
	size_t data_len; /* bytes used in data */
	struct rbatch_call calls[RBATCH_MAX];
	uint8_t data[RBATCH_DATA]; /* copied to the task with the calls */
};

void rbatch_begin(struct rbatch *b, struct remote *r, pid_t tid);
/* Whether n more calls with len more bytes of data fit (else run first). */
bool rbatch_room(const struct rbatch *b, size_t n, size_t len);
/* Makes room for n calls with len bytes of data: runs the batch first if
 * they do not fit. 0, or rbatch_run's failure. */
int rbatch_reserve(struct rbatch *b, size_t n, size_t len);
/* Adds a call; returns its index. The batch must have room. */
size_t rbatch_add(struct rbatch *b, uint32_t tag, uint32_t flags, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		  uint64_t a3, uint64_t a4, uint64_t a5);
/* Copies len bytes into the batch's data; returns their address in the
 * task (valid while the batch runs), to pass as an argument. */
uint64_t rbatch_data(struct rbatch *b, const void *buf, size_t len);
/* Makes the calls. 0 when all succeeded (or failed with RB_MAY_FAIL);
 * else the failing call's result (-errno), b->failed its index, the calls
 * after it not made. A failure of the mechanism itself (the task died,
 * a fault) is -errno with b->failed == RBATCH_NONE. The batch is empty
 * after (n == 0), its calls still there to read. */
int rbatch_run(struct rbatch *b);
/* After rbatch_run failed: the failing call's tag, or none where the
 * batch itself failed (no call to blame). */
static inline uint32_t rbatch_failed_tag(const struct rbatch *b, uint32_t none)
{
	return b->failed == RBATCH_NONE ? none : b->calls[b->failed].tag;
}

#define rbatch_call(b, tag, flags, nr, ...) rbatch_call_n(b, tag, flags, nr, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define rbatch_call_n(b, tag, flags, nr, a, c, d, e, f, g, ...) \
	rbatch_add(b, tag, flags, nr, RS_A(a), RS_A(c), RS_A(d), RS_A(e), RS_A(f), RS_A(g))

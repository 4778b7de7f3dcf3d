/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-thread state: registers (general, segment bases, XSAVE), signal
 * mask, private pending signals, clear_child_tid, robust list, rseq,
 * sigaltstack and seccomp filters. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "engine/remote.h"
#include "engine/syscalls.h"
#include "image/json.h"

#define XSTATE_MAX 16384
#define MAX_PENDING 1024
#define MAX_FILTERS 64
#define MAX_FILTER_INSNS 4096

struct seccomp_blob {
	uint16_t len; /* instructions */
	void *insns;  /* struct sock_filter[len] */
};

struct thread_rec {
	pid_t tid;
	char comm[16]; /* thread name (PR_SET_NAME is per thread) */
	struct user_regs_struct regs;
	uint8_t *xstate;
	size_t xstate_len;
	uint64_t sigmask;
	uint64_t clear_tid;
	uint64_t robust_head, robust_len;
	struct rseq_config rseq; /* rseq_abi_pointer 0: not registered */
	uint64_t ss_sp, ss_size;
	int ss_flags;
	siginfo_t *pending;
	size_t npending;
	struct seccomp_blob *filters; /* oldest first */
	size_t nfilters;
};

void thread_rec_free(struct thread_rec *t);

/* Pending signal queues (a thread's own, or the process's shared one). */
int pending_dump(pid_t tid, bool shared, siginfo_t **ret, size_t *ret_n);
/* Puts the queue under key, as an array of hex siginfo. */
void pending_to_json(struct json_builder *b, const char *key, const siginfo_t *si, size_t n);
int pending_from_json(const json_t *j, const char *key, siginfo_t **ret, size_t *ret_n);

/* Reads what ptrace gives without running code in the thread. The raw
 * registers are returned for putting back after a --leave-running dump. */
int thread_dump_ptrace(pid_t tid, struct thread_rec *t);
/* Reads what only the thread itself can tell (remote syscalls). */
int thread_dump_remote(struct remote *r, struct thread_rec *t);
/* Rewinds a syscall interrupted by our stop so that it runs again once
 * the thread resumes. image: for the image (restart_syscall's state is
 * not carried over, so the original call is re-issued). */
void regs_rewind_syscall(struct user_regs_struct *regs, bool image);

/* Fills b, the thread's object; an error stays in the builder. */
void thread_to_json(const struct thread_rec *t, struct json_builder *b);
int thread_from_json(const json_t *j, struct thread_rec *t);

/* Restore: state set by remote syscalls in the thread itself. */
int thread_restore_remote(struct remote *r, const struct thread_rec *t);
int thread_restore_seccomp(struct remote *r, const struct thread_rec *t);
int thread_restore_pending(struct remote *r, pid_t pid, const struct thread_rec *t);
/* Restore: registers and mask, the last step before detaching. */
int thread_restore_regs(const struct thread_rec *t);
/* The XSAVE layout size of this CPU (for the manifest's compatibility check). */
uint32_t xsave_size(void);
uint64_t xsave_features(void);

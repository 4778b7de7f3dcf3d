/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Remote system calls: a seized thread is made to execute one `syscall`
 * instruction with registers set by us (DESIGN.md §2.3). We step it with
 * PTRACE_SYSCALL from syscall entry to exit, so nothing but the syscall
 * instruction itself has to exist in the task, and a call that unmaps the
 * code it runs from still returns to us. Results are raw: >= 0 or -errno. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* A dumped thread as it must look whenever it is not running one of our
 * calls: its own registers (a system call it was in rewound so that it
 * runs again) and its own signal mask. The dump keeps these in memory it
 * shares with its guardian (guard.h), so that a detached thread is always
 * runnable, and one that was in the middle of a call can be put back. */
struct remote_thread {
	pid_t tid;
	uint32_t flags; /* RT_* */
	uint64_t mask;
	struct user_regs_struct regs;
};
#define RT_MASK_KNOWN 1u /* mask is the thread's own: block all during calls */
#define RT_BORROWED 2u   /* the registers are a call's, not regs */
#define RT_BLOCKED 4u    /* the mask is ours (everything blocked) */

struct remote {
	pid_t pid;
	int mem_fd;           /* /proc/pid/mem, read-write */
	uint64_t syscall_ip;  /* address of a 0f 05 (syscall) instruction */
	uint64_t scratch;     /* our scratch mapping in the task, 0 if none */
	uint64_t scratch_len;
	/* Dump: our own page "syscall; jmp ." (remote_map_trap), used as
	 * syscall_ip once mapped: a thread let go in the middle of a call
	 * spins there instead of running on in the vdso, and its guardian
	 * can put it back. vdso_ip: the vdso's syscall, for unmapping it. */
	uint64_t trap, vdso_ip;
	/* Dump: where the trap page and the scratch area go (a gap chosen by
	 * the dump, MAP_FIXED_NOREPLACE), set before the calls that map them.
	 * A dumper killed after such a call ran but before it read the result
	 * leaves a mapping that only these tell its guardian of. 0: anywhere. */
	uint64_t trap_at, scratch_at;
	/* Dump, before the trap page exists: a "syscall; ret" (gadget) and a
	 * "jmp ." (spin) found in the process's code. A call through the
	 * gadget runs with the stack pointer on a word holding spin, so a
	 * thread let go in mid-call spins there too. 0: not found. */
	uint64_t gadget, spin;
	uint64_t esc_at, esc_word; /* the stack word holding spin meanwhile, and what it held */
	/* Dump: each call in a thread listed here restores the thread's
	 * registers and mask as soon as the call returns (NULL: restore). */
	struct remote_thread *threads;
	size_t nthreads;
	uint64_t calls, unsafe_ns; /* calls made; time spent in the vdso window */
	uint64_t trips; /* times the task was run and stopped for us (remote-batch.h) */
	/* Set by remote_syscall when the call made a new thread (clone). */
	pid_t new_tid;
	/* Signals that came for delivery while a call ran with them unblocked
	 * (the first call of a dump, made under the thread's own mask): kept
	 * back from delivery and queued again by remote_requeue_signals. */
	siginfo_t stash[16];
	pid_t stash_tid[16];
	size_t nstash;
};

#define SCRATCH_LEN (256u << 10)
#define TRAP_LEN 4096u

long remote_syscall6(struct remote *r, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		     uint64_t a4, uint64_t a5);
#define RS_A(x) ((uint64_t)(x))
#define remote_syscall(r, tid, nr, ...) remote_syscall_n(r, tid, nr, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define remote_syscall_n(r, tid, nr, a, b, c, d, e, f, ...) \
	remote_syscall6(r, tid, nr, RS_A(a), RS_A(b), RS_A(c), RS_A(d), RS_A(e), RS_A(f))

/* Runs the task from regs->rip (regs set as given) until it stops at an
 * int3 whose next instruction is stop_ip; regs receives its registers
 * there. One ptrace round trip: for code of ours in the scratch area
 * (remote-batch.h). A fault or other trap is -EFAULT. */
int remote_run_code(struct remote *r, pid_t tid, struct user_regs_struct *regs, uint64_t stop_ip);

/* Memory of the task (through /proc/pid/mem, so protections don't matter). */
int remote_write(struct remote *r, uint64_t addr, const void *buf, size_t len);
int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len);

/* Finds a syscall instruction (0f 05) in [start, end) of the task. */
int remote_find_syscall(struct remote *r, uint64_t start, uint64_t end);
/* Maps the scratch area (anywhere, or at `at` if nonzero). */
int remote_map_scratch(struct remote *r, pid_t tid, uint64_t at, bool exec);
int remote_unmap_scratch(struct remote *r, pid_t tid);
/* Looks for the gadget and spin (struct remote) in [start, end) of the
 * task's code; returns 1 once both are known. */
int remote_find_escape(struct remote *r, uint64_t start, uint64_t end);
/* Puts back the stack word a call through the gadget used (guardian). */
void remote_escape_done(struct remote *r);
/* Maps the trap page (see struct remote) and makes it syscall_ip; unmaps
 * it again with the vdso's syscall. */
int remote_map_trap(struct remote *r, pid_t tid);
int remote_unmap_trap(struct remote *r, pid_t tid);

/* Queues the kept-back signals again, each by its own thread to itself;
 * the threads must block all signals and the scratch must be mapped. */
int remote_requeue_signals(struct remote *r);

/* Opens PATH inside the task (path copied to scratch). Returns the fd. */
long remote_open(struct remote *r, pid_t tid, const char *path, int flags, int mode);

/* Regs helpers. */
int regs_get(pid_t tid, struct user_regs_struct *ret);
int regs_set(pid_t tid, const struct user_regs_struct *regs);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "engine/seize.h"
#include "util/cleanup.h"
#include "util/inject.h"
#include "util/log.h"
#include "util/util.h"

int regs_get(pid_t tid, struct user_regs_struct *ret)
{
	return ptrace(PTRACE_GETREGS, tid, 0, ret) < 0 ? -errno : 0;
}

int regs_set(pid_t tid, const struct user_regs_struct *regs)
{
	return ptrace(PTRACE_SETREGS, tid, 0, regs) < 0 ? -errno : 0;
}

/* The kernel keeps one instance of a standard signal, and of a POSIX
 * timer's signal (counting overruns instead): so does the stash. */
static bool stash_has(const struct remote *r, pid_t tid, const siginfo_t *si)
{
	for (size_t i = 0; i < r->nstash; i++) {
		const siginfo_t *o = &r->stash[i];
		if (r->stash_tid[i] != tid || o->si_signo != si->si_signo)
			continue;
		if (si->si_signo < 32 || (si->si_code == SI_TIMER && o->si_code == SI_TIMER && o->si_timerid == si->si_timerid))
			return true;
	}
	return false;
}

/* A stop that is not the one we wait for: a clone's event, or a signal.
 * Signals are blocked while we work, but for the first call of a dump: a
 * signal the thread's own mask lets through is kept back (resuming with 0
 * holds off its delivery) and queued again later. A synchronous one is a
 * fault of the call itself. Returns 0 to resume, or -errno. */
static int other_stop(struct remote *r, pid_t tid, int status, int *nsig)
{
	if (status_is_event(status, PTRACE_EVENT_CLONE)) {
		unsigned long msg = 0;
		if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) == 0)
			r->new_tid = (pid_t)msg;
		return 0;
	}
	if (status >> 16)
		return 0;
	int sig = WSTOPSIG(status);
	bool sync = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGTRAP || sig == SIGFPE || sig == SIGSYS;
	log_debug("tid %d: signal %d during remote syscall", tid, sig);
	if (sync || r->nstash == sizeof(r->stash) / sizeof(r->stash[0]))
		return -EFAULT;
	/* A timer faster than our ptrace round trip would hold the call off forever. */
	if (++*nsig > 256)
		return log_error_errno(-EAGAIN, "tid %d: signals arrive faster than a call can be made in the thread",
				       tid);
	if (ptrace(PTRACE_GETSIGINFO, tid, 0, &r->stash[r->nstash]) < 0)
		return -errno;
	if (!stash_has(r, tid, &r->stash[r->nstash]))
		r->stash_tid[r->nstash++] = tid;
	return 0;
}

/* Resumes to the next syscall stop, passing over ptrace events (a clone
 * made by the call reports PTRACE_EVENT_CLONE first) and signals. */
static int step_to_syscall_stop(struct remote *r, pid_t tid)
{
	int status, ret, nsig = 0;
	if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0)
		return -errno;
	for (;;) {
		ret = wait_stop(tid, &status);
		if (ret < 0)
			return ret;
		if (status_is_syscall_stop(status))
			return 0;
		if ((ret = other_stop(r, tid, status, &nsig)) < 0)
			return ret;
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0)
			return -errno;
	}
}

static int run_to_trap(struct remote *r, pid_t tid, struct user_regs_struct *regs, uint64_t stop_ip)
{
	int status, ret, nsig = 0;
	if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
		return -errno;
	for (;;) {
		if ((ret = wait_stop(tid, &status)) < 0)
			return ret;
		/* int3 stops with SIGTRAP, the instruction after it in rip. */
		if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP && !(status >> 16)) {
			if ((ret = regs_get(tid, regs)) < 0)
				return ret;
			if (regs->rip == stop_ip)
				return 0;
		}
		if ((ret = other_stop(r, tid, status, &nsig)) < 0)
			return ret;
		if (ptrace(PTRACE_CONT, tid, 0, 0) < 0)
			return -errno;
	}
}

/* The SIGTRAP of int3 is forced: where it is blocked (all are, while we
 * work) the kernel unblocks it in the thread, and resets its action to
 * the default (signals_restore_trap sets it again, last). The mask is put
 * back here. */
int remote_run_code(struct remote *r, pid_t tid, struct user_regs_struct *regs, uint64_t stop_ip)
{
	uint64_t mask;
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(mask), &mask) < 0)
		return -errno;
	int ret = regs_set(tid, regs);
	if (ret < 0)
		return ret;
	r->trips++;
	ret = run_to_trap(r, tid, regs, stop_ip);
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask) < 0 && ret >= 0)
		ret = -errno;
	return ret;
}

/* Restore: the scratch area holds "syscall; int3" (remote_map_scratch).
 * A call that leaves it in place and makes no new task or program can
 * stop at that int3 (PTRACE_CONT): one stop instead of the two of
 * PTRACE_SYSCALL (entry, exit). The others keep the two stops, which need
 * no code after the syscall instruction; so does setting SIGTRAP's action
 * (see remote_run_code). */
static bool one_stop(const struct remote *r, long nr, uint64_t a0)
{
	if (!r->scratch || r->syscall_ip != r->scratch || r->threads)
		return false;
	switch (nr) {
	case SYS_execve: case SYS_execveat: case SYS_clone: case SYS_clone3: case SYS_fork: case SYS_vfork:
	case SYS_exit: case SYS_exit_group: case SYS_rt_sigreturn: case SYS_munmap: case SYS_mremap:
	case SYS_mmap: case SYS_brk: case SYS_madvise: case SYS_shmat: case SYS_shmdt:
		return false;
	case SYS_rt_sigaction:
		return a0 != SIGTRAP;
	default:
		return true;
	}
}

/* The one-stop call: "syscall; int3" at the scratch area. */
static int run_one_stop(struct remote *r, pid_t tid, struct user_regs_struct *regs)
{
	regs->rip = r->scratch;
	return remote_run_code(r, tid, regs, r->scratch + 3);
}

static struct remote_thread *find_thread(const struct remote *r, pid_t tid)
{
	for (size_t i = 0; i < r->nthreads; i++)
		if (r->threads[i].tid == tid)
			return &r->threads[i];
	return NULL;
}

/* Runs the call set up in regs; regs receives the registers after it. */
static int run_call(struct remote *r, pid_t tid, struct user_regs_struct *regs)
{
	int ret = regs_set(tid, regs);
	r->trips++;
	if (ret >= 0)
		ret = step_to_syscall_stop(r, tid); /* entry */
	if (ret >= 0)
		ret = step_to_syscall_stop(r, tid); /* exit */
	return ret < 0 ? ret : regs_get(tid, regs);
}

/* A dumped thread gets its own registers and mask back as soon as the call
 * returns, so that if we die between calls the kernel's detach lets it run
 * on as if nothing happened. During the call every signal is blocked (a
 * handler must not run on our registers); if we die then, it finishes the
 * call in the trap page and spins there for the guardian. The flags say
 * which of the two is ours at any moment. */
static int guarded_call(struct remote *r, struct remote_thread *t, struct user_regs_struct *regs)
{
	static const uint64_t all = ~0ULL;
	bool vdso = regs->rip != r->trap && regs->rip != r->gadget; /* no way back if we die */
	uint64_t t0 = vdso ? now_ns() : 0;
	if (t->flags & RT_MASK_KNOWN) {
		t->flags |= RT_BLOCKED;
		if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(all), &all) < 0)
			return -errno;
	}
	t->flags |= RT_BORROWED;
	int ret = run_call(r, t->tid, regs);
	if (regs_set(t->tid, &t->regs) == 0)
		t->flags &= ~RT_BORROWED;
	if ((t->flags & RT_BLOCKED) && ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->mask), &t->mask) == 0)
		t->flags &= ~RT_BLOCKED;
	if (vdso)
		r->unsafe_ns += now_ns() - t0;
	return ret;
}

/* Not through the trap page (before it exists, and to unmap it): through
 * the gadget, returning into the spin. The word the stack pointer is set
 * to is put back right after the call (by the guardian if we die): every
 * other thread is stopped, none sees it meanwhile. */
static void escape_via_gadget(struct remote *r, struct user_regs_struct *regs)
{
	uint64_t sp = ((regs->rsp - 256) & ~15ULL) - 8, old;
	if ((r->trap && r->syscall_ip == r->trap) || !r->gadget || !r->spin ||
	    remote_read(r, sp, &old, sizeof(old)) < 0)
		return;
	r->esc_word = old;
	r->esc_at = sp;
	if (remote_write(r, sp, &r->spin, sizeof(r->spin)) < 0) {
		r->esc_at = 0;
		return;
	}
	regs->rip = r->gadget;
	regs->rsp = sp;
}

void remote_escape_done(struct remote *r)
{
	uint64_t now;
	if (!r->esc_at)
		return;
	/* Not our word there any more: the thread ran on its own registers
	 * (its dumper died before they were ours) and its stack grew over
	 * it; what is there now is live, the old word long dead. */
	if (remote_read(r, r->esc_at, &now, sizeof(now)) == 0 && now != r->spin)
		r->esc_at = 0;
	else if (remote_write(r, r->esc_at, &r->esc_word, sizeof(r->esc_word)) == 0)
		r->esc_at = 0;
}

long remote_syscall6(struct remote *r, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		     uint64_t a4, uint64_t a5)
{
	struct remote_thread *t = find_thread(r, tid);
	struct user_regs_struct regs;
	int ret;

	if (t)
		regs = t->regs;
	else if ((ret = regs_get(tid, &regs)) < 0)
		return ret;
	regs.rip = r->syscall_ip;
	regs.rax = (uint64_t)nr;
	/* orig_rax = -1: the kernel must not apply syscall-restart logic to
	 * the state we are about to replace. */
	regs.orig_rax = (uint64_t)-1;
	regs.rdi = a0;
	regs.rsi = a1;
	regs.rdx = a2;
	regs.r10 = a3;
	regs.r8 = a4;
	regs.r9 = a5;
	if (t)
		escape_via_gadget(r, &regs);
	r->calls++;
	if (!t && one_stop(r, nr, a0))
		ret = run_one_stop(r, tid, &regs);
	else
		ret = t ? guarded_call(r, t, &regs) : run_call(r, tid, &regs);
	remote_escape_done(r);
	return ret < 0 ? ret : (long)regs.rax;
}

int remote_requeue_signals(struct remote *r)
{
	uint64_t buf = r->scratch + 8192;
	while (r->nstash > 0) {
		size_t i = r->nstash - 1;
		int e = remote_write(r, buf, &r->stash[i], sizeof(r->stash[i]));
		if (e < 0)
			return e;
		long ret = remote_syscall(r, r->stash_tid[i], SYS_rt_tgsigqueueinfo, r->pid, r->stash_tid[i],
					  r->stash[i].si_signo, buf);
		if (ret < 0)
			return (int)ret;
		r->nstash = i;
	}
	return 0;
}

int remote_write(struct remote *r, uint64_t addr, const void *buf, size_t len)
{
	return pwrite_all(r->mem_fd, buf, len, (off_t)addr);
}

int remote_read(struct remote *r, uint64_t addr, void *buf, size_t len)
{
	return pread_exact(r->mem_fd, buf, len, (off_t)addr);
}

/* Any `syscall` (0f 05) will do, even inside another instruction: the
 * thread is sent straight to it and stopped as the call returns. Read in
 * chunks that overlap by one byte, so a pair across two is found. */
int remote_find_syscall(struct remote *r, uint64_t start, uint64_t end)
{
	const size_t chunk = 1u << 20;
	if (end <= start)
		return -EINVAL;
	_cleanup_free_ uint8_t *buf = malloc(chunk + 1);
	if (!buf)
		return -ENOMEM;
	for (uint64_t at = start; at + 1 < end; at += chunk) {
		size_t len = end - at < chunk + 1 ? end - at : chunk + 1;
		int ret = remote_read(r, at, buf, len);
		if (ret < 0)
			return ret;
		for (size_t i = 0; i + 1 < len; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
				r->syscall_ip = r->vdso_ip = at + i;
				return 0;
			}
	}
	return -ENOENT;
}

int remote_map_scratch(struct remote *r, pid_t tid, uint64_t at, bool exec)
{
	at = at ? at : r->scratch_at;
	int prot = PROT_READ | PROT_WRITE | (exec ? PROT_EXEC : 0);
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0);
	long a = remote_syscall(r, tid, SYS_mmap, at, SCRATCH_LEN, prot, flags, -1, 0);
	if (a < 0 && a > -4096) {
		r->scratch_at = 0; /* nothing mapped */
		return (int)a;
	}
	if (at && (uint64_t)a != at)
		return -EEXIST;
	(void)inject_pause("remote:scratch-mapped"); /* a test kills the dumper here */
	r->scratch = (uint64_t)a;
	r->scratch_len = SCRATCH_LEN;
	if (exec) {
		/* syscall; int3 -- our own syscall instruction from now on. */
		static const uint8_t code[] = { 0x0f, 0x05, 0xcc };
		int ret = remote_write(r, r->scratch, code, sizeof(code));
		if (ret < 0)
			return ret;
		r->syscall_ip = r->scratch;
	}
	return 0;
}

int remote_unmap_scratch(struct remote *r, pid_t tid)
{
	if (!r->scratch)
		return 0;
	long ret = remote_syscall(r, tid, SYS_munmap, r->scratch, r->scratch_len);
	if (ret < 0)
		return (int)ret;
	r->scratch = r->scratch_at = 0;
	return 0;
}

int remote_find_escape(struct remote *r, uint64_t start, uint64_t end)
{
	static const uint8_t gadget[] = { 0x0f, 0x05, 0xc3 }, spin[] = { 0xeb, 0xfe };
	/* Small reads: both are usually a few hundred KiB into libc's text,
	 * and each page read from /proc/PID/mem costs a page-table walk. */
	const size_t chunk = 64u << 10;
	_cleanup_free_ uint8_t *buf = malloc(chunk + 2);
	if (!buf)
		return -ENOMEM;
	for (uint64_t at = start; at < end && (!r->gadget || !r->spin); at += chunk) {
		size_t len = end - at < chunk + 2 ? end - at : chunk + 2;
		if (remote_read(r, at, buf, len) < 0)
			return 0;
		uint8_t *g = r->gadget ? NULL : memmem(buf, len, gadget, sizeof(gadget));
		uint8_t *j = r->spin ? NULL : memmem(buf, len, spin, sizeof(spin));
		if (g)
			r->gadget = at + (uint64_t)(g - buf);
		if (j)
			r->spin = at + (uint64_t)(j - buf);
	}
	return r->gadget && r->spin;
}

int remote_map_trap(struct remote *r, pid_t tid)
{
	static const uint8_t code[] = { 0x0f, 0x05, 0xeb, 0xfe }; /* syscall; jmp . */
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (r->trap_at ? MAP_FIXED_NOREPLACE : 0);
	long a = remote_syscall(r, tid, SYS_mmap, r->trap_at, TRAP_LEN, PROT_READ | PROT_EXEC, flags, -1, 0);
	if (a < 0 && a > -4096) {
		r->trap_at = 0; /* nothing mapped */
		return (int)a;
	}
	(void)inject_pause("remote:trap-mapped"); /* a test kills the dumper here */
	r->trap = (uint64_t)a; /* known before it is used: the guardian unmaps it */
	int ret = remote_write(r, r->trap, code, sizeof(code)); /* mem ignores PROT_WRITE */
	if (ret < 0)
		return ret;
	r->vdso_ip = r->syscall_ip;
	r->syscall_ip = r->trap;
	return 0;
}

int remote_unmap_trap(struct remote *r, pid_t tid)
{
	if (!r->trap)
		return 0;
	if (r->vdso_ip)
		r->syscall_ip = r->vdso_ip;
	long ret = remote_syscall(r, tid, SYS_munmap, r->trap, TRAP_LEN);
	if (ret < 0)
		return (int)ret;
	r->trap = r->trap_at = 0;
	return 0;
}

/* Scratch layout: [0,64) code, [4K, 8K) strings, [8K, ...) data. */
long remote_open(struct remote *r, pid_t tid, const char *path, int flags, int mode)
{
	size_t l = strlen(path) + 1;
	if (l > 4096)
		return -ENAMETOOLONG;
	int ret = remote_write(r, r->scratch + 4096, path, l);
	if (ret < 0)
		return ret;
	return remote_syscall(r, tid, SYS_openat, AT_FDCWD, r->scratch + 4096, flags, mode);
}

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

/* Resumes to the next syscall stop, passing over ptrace events (a clone
 * made by the call reports PTRACE_EVENT_CLONE first). */
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
		if (status_is_event(status, PTRACE_EVENT_CLONE)) {
			unsigned long msg = 0;
			if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) == 0)
				r->new_tid = (pid_t)msg;
		} else if (!(status >> 16)) {
			/* Signals are blocked while we work, but for the first call
			 * of a dump: a signal the thread's own mask lets through is
			 * kept back (resuming with 0 holds off its delivery) and
			 * queued again later. A synchronous one is a fault of the
			 * call itself. */
			int sig = WSTOPSIG(status);
			bool sync = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGTRAP || sig == SIGFPE ||
				    sig == SIGSYS;
			log_debug("tid %d: signal %d during remote syscall", tid, sig);
			if (sync || r->nstash == sizeof(r->stash) / sizeof(r->stash[0]))
				return -EFAULT;
			/* A timer faster than our ptrace round trip would hold the
			 * call off forever. */
			if (++nsig > 256)
				return log_error_errno(-EAGAIN, "tid %d: signals arrive faster than a call can be made in "
						       "the thread", tid);
			if (ptrace(PTRACE_GETSIGINFO, tid, 0, &r->stash[r->nstash]) < 0)
				return -errno;
			if (!stash_has(r, tid, &r->stash[r->nstash]))
				r->stash_tid[r->nstash++] = tid;
		}
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0)
			return -errno;
	}
}

long remote_syscall6(struct remote *r, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		     uint64_t a4, uint64_t a5)
{
	struct user_regs_struct regs;
	int ret;

	ret = regs_get(tid, &regs);
	if (ret < 0)
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
	ret = regs_set(tid, &regs);
	if (ret < 0)
		return ret;
	ret = step_to_syscall_stop(r, tid); /* entry */
	if (ret < 0)
		return ret;
	ret = step_to_syscall_stop(r, tid); /* exit */
	if (ret < 0)
		return ret;
	ret = regs_get(tid, &regs);
	if (ret < 0)
		return ret;
	return (long)regs.rax;
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

int remote_find_syscall(struct remote *r, uint64_t vdso_start, uint64_t vdso_end)
{
	size_t len = vdso_end - vdso_start;
	if (len == 0 || len > (1u << 20))
		return -EINVAL;
	_cleanup_free_ uint8_t *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	int ret = remote_read(r, vdso_start, buf, len);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i + 1 < len; i++)
		if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
			r->syscall_ip = vdso_start + i;
			return 0;
		}
	return -ENOENT;
}

int remote_map_scratch(struct remote *r, pid_t tid, uint64_t at, bool exec)
{
	int prot = PROT_READ | PROT_WRITE | (exec ? PROT_EXEC : 0);
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0);
	long a = remote_syscall(r, tid, SYS_mmap, at, SCRATCH_LEN, prot, flags, -1, 0);
	if (a < 0 && a > -4096)
		return (int)a;
	if (at && (uint64_t)a != at)
		return -EEXIST;
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
	r->scratch = 0;
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

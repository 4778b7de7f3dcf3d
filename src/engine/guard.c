/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/proc.h"
#include "engine/seize.h"
#include "engine/sockets.h"
#include "engine/syscalls.h"
#include "engine/thread.h"
#include "util/cleanup.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/util.h"

/* Untouched pages of the mapping cost nothing (MAP_NORESERVE). */
#define GUARD_MAX_THREADS (1u << 18)

static size_t guard_size(void)
{
	return sizeof(struct guard) + GUARD_MAX_THREADS * sizeof(struct remote_thread);
}

static bool needs_put_back(const struct remote *r)
{
	bool any = r->trap || r->scratch || r->esc_at || r->trap_at || r->scratch_at;
	for (size_t k = 0; k < r->nthreads; k++)
		any |= (r->threads[k].flags & (RT_BORROWED | RT_BLOCKED)) != 0;
	return any;
}

/* The kernel lets the threads go as the dumper exits, a moment after the
 * pipe tells us: until then they are still traced (EPERM). */
static int seize_again(pid_t pid, pid_t **ret, size_t *ret_n)
{
	int r = -EPERM;
	for (int i = 0; i < 500 && r == -EPERM; i++) {
		r = seize_all(pid, SEIZE_OPTS_DUMP, ret, ret_n);
		if (r == -EPERM)
			nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return r;
}

/* Where a thread let go in the middle of a call can be that has run
 * nothing but the call: on the borrowed instruction (not run yet) or
 * right after it; in the trap page that is where it spins ("jmp ."), as
 * it does at the spin after the gadget. Past the vdso's instruction (no
 * gadget found) it runs on with our registers: lost. */
static bool only_the_call(const struct remote *r, uint64_t ip)
{
	if (r->spin && ip == r->spin)
		return true; /* went through the gadget: it spins */
	if (r->gadget && (ip == r->gadget || ip == r->gadget + 2))
		return true;
	return (r->trap && (ip == r->trap || ip == r->trap + 2)) ||
	       (r->vdso_ip && (ip == r->vdso_ip || ip == r->vdso_ip + 2)) || ip == r->syscall_ip ||
	       ip == r->syscall_ip + 2;
}

/* Whether a call made now would end in a spin if its thread were let go:
 * through our trap page, or through the gadget. */
static bool call_has_way_back(const struct remote *r)
{
	return (r->trap && r->syscall_ip == r->trap) || (r->gadget && r->spin);
}

/* A thread caught in a call gets its own registers back, and every
 * thread whose mask was ours its own mask. */
static void put_back_thread(const struct remote *r, struct remote_thread *t)
{
	struct user_regs_struct now;
	if ((t->flags & RT_BORROWED) && regs_get(t->tid, &now) == 0) {
		if (only_the_call(r, now.rip) && regs_set(t->tid, &t->regs) == 0)
			t->flags &= ~RT_BORROWED;
		else if (!only_the_call(r, now.rip) && call_has_way_back(r))
			/* Marked borrowed just before our registers went in (or
			 * just after its own came back): it runs its own code. */
			t->flags &= ~RT_BORROWED;
		else
			log_warn("tid %d was let go in the middle of a call (at %#llx) and may not survive", t->tid,
				 (unsigned long long)now.rip);
	}
	if ((t->flags & RT_BLOCKED) && ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->mask), &t->mask) == 0)
		t->flags &= ~RT_BLOCKED;
}

/* The main thread has run since the dumper died: what its calls put back
 * is what it is doing now (its system call rewound), with its real mask,
 * read after a first call as the dump does. Then our pages go. */
static int unmap_ours(struct remote *r)
{
	struct remote_thread *t = &r->threads[0]; /* the main thread, tid == pid */
	uint64_t mask;
	if (!r->nthreads || (t->flags & RT_BORROWED))
		return -EBUSY;
	int e = regs_get(t->tid, &t->regs);
	if (e < 0)
		return e;
	regs_rewind_syscall(&t->regs, false);
	t->flags &= ~RT_MASK_KNOWN;
	r->nstash = 0;
	long ret = remote_syscall(r, t->tid, SYS_getpid, 0);
	if (ret < 0)
		return (int)ret;
	if (ptrace(PTRACE_GETSIGMASK, t->tid, sizeof(mask), &mask) < 0)
		return -errno;
	t->mask = mask;
	t->flags |= RT_MASK_KNOWN;
	if (r->scratch && (e = remote_requeue_signals(r)) < 0)
		return e;
	if ((e = remote_unmap_scratch(r, t->tid)) < 0)
		return e;
	return remote_unmap_trap(r, t->tid);
}

static bool mapped_at(const struct vma *v, size_t n, uint64_t at, uint64_t len, uint32_t prot)
{
	for (size_t i = 0; i < n; i++)
		if (at && v[i].start == at)
			return v[i].end == at + len && v[i].prot == prot && !v[i].shared && !v[i].ino && !v[i].path[0];
	return false;
}

/* A call of ours that mapped the trap page or the scratch area may have
 * run without the dumper reading its result. Where the dump said they
 * would go (a gap of its choosing), what is there, exactly as we map it,
 * is ours; anything else is not, and nothing is left pending. */
static void adopt_pending(struct remote *r)
{
	_cleanup_free_ char *buf = NULL;
	struct vma *v = NULL;
	size_t len, n = 0;
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", r->pid);
	int dfd = (r->trap_at && !r->trap) || (r->scratch_at && !r->scratch) ? open(path, O_PATH | O_CLOEXEC) : -1;
	if (dfd >= 0 && proc_read(dfd, "maps", &buf, &len) >= 0 && proc_parse_smaps(buf, len, &v, &n) >= 0) {
		if (!r->trap && mapped_at(v, n, r->trap_at, TRAP_LEN, PROT_READ | PROT_EXEC))
			r->trap = r->trap_at;
		if (!r->scratch && mapped_at(v, n, r->scratch_at, SCRATCH_LEN, PROT_READ | PROT_WRITE)) {
			r->scratch = r->scratch_at;
			r->scratch_len = SCRATCH_LEN;
		}
		vmas_free(v, n);
	}
	if (dfd >= 0)
		close(dfd);
	r->trap_at = r->trap ? r->trap_at : 0;
	r->scratch_at = r->scratch ? r->scratch_at : 0;
}

static int put_back(struct guard_proc *p)
{
	struct remote *r = &p->rem;
	_cleanup_free_ pid_t *tids = NULL;
	size_t n = 0;
	char path[64];
	if (!needs_put_back(r))
		return 0;
	int e = seize_again(p->pid, &tids, &n);
	if (e == -ESRCH)
		return log_warn_errno(e, "pid %d died while the dump was killed", p->pid);
	if (e < 0)
		return log_warn_errno(e, "pid %d: cannot seize it again to put it back: %m", p->pid);
	for (size_t k = 0; k < r->nthreads; k++)
		put_back_thread(r, &r->threads[k]);
	adopt_pending(r);
	snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
	r->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (r->mem_fd >= 0)
		remote_escape_done(r);
	if (r->mem_fd < 0 || (e = unmap_ours(r)) < 0)
		log_warn_errno(r->mem_fd < 0 ? -errno : e, "pid %d: cannot remove the dump's pages: %m", p->pid);
	if (r->mem_fd >= 0)
		close(r->mem_fd);
	for (size_t k = 0; k < n; k++)
		detach_thread(tids[k]);
	return needs_put_back(r) ? -EIO : 0;
}

/* Read once: the dumper may be changing them as it dies. */
static void unlock(struct guard *g, bool with_image)
{
	char live[NETLOCK_NAME_MAX], img[NETLOCK_NAME_MAX];
	memcpy(live, g->netlock, sizeof(live));
	memcpy(img, g->netlock_image, sizeof(img));
	live[sizeof(live) - 1] = img[sizeof(img) - 1] = 0;
	if (live[0] && netlock_remove(g->netlock_ns, live) < 0)
		log_warn("cannot remove the network lock (nftables table inet %s); remove it with 'nft delete table "
			 "inet %s'", live, live);
	if (with_image && img[0] && netlock_remove(g->netlock_ns, img) < 0)
		log_warn("cannot remove the network lock (nftables table inet %s); remove it with 'nft delete table "
			 "inet %s'", img, img);
}

static void recover(struct guard *g, struct image *img, int phase)
{
	size_t n = __atomic_load_n(&g->nprocs, __ATOMIC_ACQUIRE);
	pid_t root = n ? g->procs[0].pid : 0;
	bool ok = true;
	unlock(g, phase != GUARD_KILLING);
	if (phase == GUARD_KILLING) {
		for (size_t i = 0; i < n; i++)
			kill(g->procs[i].pid, SIGKILL);
		log_error("the dump of pid %d was killed after the image was complete; its guardian killed the tree", root);
		return;
	}
	/* Connections first: a process let go must not find them in repair mode. */
	for (size_t i = 0; i < n; i++)
		sk_tcp_recover(g->procs[i].pid, &g->tcp_reuse);
	if (g->fz.frozen && freezer_set(&g->fz, false) < 0)
		ok = false;
	for (size_t i = 0; i < n; i++)
		ok &= put_back(&g->procs[i]) >= 0;
	image_journal_undo(img, &g->journal);
	if (ok)
		log_error("the dump of pid %d was killed; its guardian left the processes as they were and removed the "
			  "partial image", root);
	else
		log_error("the dump of pid %d was killed; its guardian could not put everything back (see above)", root);
}

static _Noreturn void guardian_main(struct guard *g, struct image *img, int done)
{
	interrupt_ignore(); /* a Ctrl-C or timeout's signal is for the dumper */
	(void)setsid();
	(void)prctl(PR_SET_NAME, "stasis-guard");
	struct pollfd p = { done, POLLIN, 0 };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	int phase = __atomic_load_n(&g->phase, __ATOMIC_ACQUIRE);
	if (phase != GUARD_DONE)
		recover(g, img, phase);
	_exit(0);
}

/* Our child, reaped by guard_end (one fork: a double fork to make it an
 * orphan cost a second fork and a wait for the middle one, ~3 ms of a
 * small dump); if we die it goes to the subreaper like any orphan. In a
 * container's pid namespace our parent's (sibling), which reaps it. */
static pid_t spawn(struct guard *g, bool sibling)
{
	pid_t pid = sibling ? (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL) : fork();
	if (pid > 0) {
		g->guardian = pid;
		g->ours = !sibling;
	}
	return pid;
}

int guard_start(struct image *img, bool sibling, struct guard **ret)
{
	int fds[2];
	struct guard *g = mmap(NULL, guard_size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);
	if (g == MAP_FAILED)
		return log_error_errno(-errno, "cannot map the dump's shared state: %m");
	if (pipe2(fds, O_CLOEXEC) < 0) {
		int r = log_error_errno(-errno, "cannot start the dump's guardian: %m");
		munmap(g, guard_size());
		return r;
	}
	fflush(NULL);
	pid_t pid = spawn(g, sibling);
	if (pid == 0) {
		close(fds[1]);
		guardian_main(g, img, fds[0]);
	}
	close(fds[0]);
	if (pid < 0) {
		int r = log_error_errno(-errno, "cannot start the dump's guardian: %m");
		close(fds[1]);
		munmap(g, guard_size());
		return r;
	}
	g->done_fd = fds[1];
	image_set_journal(img, &g->journal);
	sk_tcp_reuse_log(&g->tcp_reuse);
	*ret = g;
	return 0;
}

int guard_add(struct guard *g, pid_t pid, const pid_t *tids, size_t ntids, struct remote **ret)
{
	if (g->nprocs >= MAX_TREE || ntids > GUARD_MAX_THREADS - g->nthreads)
		return log_error_errno(-E2BIG, "pid %d: the tree has more than %u threads", pid, GUARD_MAX_THREADS);
	struct guard_proc *p = &g->procs[g->nprocs];
	struct remote_thread *t = &g->threads[g->nthreads];
	for (size_t k = 0; k < ntids; k++)
		t[k] = (struct remote_thread){ .tid = tids[k] };
	p->pid = pid;
	p->rem = (struct remote){ .pid = pid, .mem_fd = -1, .threads = t, .nthreads = ntids };
	g->nthreads += ntids;
	__atomic_store_n(&g->nprocs, g->nprocs + 1, __ATOMIC_RELEASE);
	*ret = &p->rem;
	return 0;
}

void guard_set_phase(struct guard *g, enum guard_phase phase)
{
	__atomic_store_n(&g->phase, (int)phase, __ATOMIC_RELEASE);
}

void guard_set_netlock(struct guard *g, const struct netlock *l)
{
	g->netlock_ns = l->ns_pid;
	__atomic_store_n(&g->netlock[0], 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g->netlock_image[0], 0, __ATOMIC_RELEASE);
	memcpy(g->netlock + 1, l->table + 1, sizeof(g->netlock) - 1);
	memcpy(g->netlock_image + 1, l->image_table + 1, sizeof(g->netlock_image) - 1);
	__atomic_store_n(&g->netlock[0], l->table[0], __ATOMIC_RELEASE);
	__atomic_store_n(&g->netlock_image[0], l->image_table[0], __ATOMIC_RELEASE);
}

void guard_end(struct guard *g)
{
	if (!g)
		return;
	guard_set_phase(g, GUARD_DONE);
	sk_tcp_reuse_log(NULL);
	close(g->done_fd);
	if (g->ours) {
		while (waitpid(g->guardian, NULL, 0) < 0 && errno == EINTR)
			;
		munmap(g, guard_size());
		return;
	}
	int pfd = sys_pidfd_open(g->guardian, 0);
	if (pfd >= 0) {
		struct pollfd p = { pfd, POLLIN, 0 };
		while (poll(&p, 1, 5000) < 0 && errno == EINTR)
			;
		close(pfd);
	}
	munmap(g, guard_size());
}

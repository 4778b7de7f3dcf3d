/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dump driver: freeze, look, copy, write, let go (or kill). Every
 * step after the freeze is undone by dump_release() on any failure, so the
 * process carries on as if nothing happened. */
#include "engine/dump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

#include "engine/guard.h"
#include "engine/ipc.h"
#include "engine/netlock.h"
#include "engine/predump.h"
#include "engine/process.h"
#include "engine/seize.h"
#include "engine/share.h"
#include "engine/signals.h"
#include "engine/sockets.h"
#include "engine/task.h"
#include "engine/thread.h"
#include "engine/tree.h"
#include "engine/tty.h"
#include "image/image.h"
#include "util/cleanup.h"
#include "util/inject.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/util.h"

/* When the tree was seized (dump_process): the -v lines below say how
 * far into the freeze each step ends, to see where frozen time goes. */
static uint64_t frozen_since;

static void phase(const char *what, pid_t pid)
{
	log_debug("pid %d: %s after %.1f ms frozen", pid, what, (double)(now_ns() - frozen_since) / 1e6);
}

/* One process of the tree; zombies have only their node. */
struct dump_ctx {
	struct tree_node *node;
	pid_t pid;
	int procfd, pidfd;
	pid_t *tids; /* node->tids */
	size_t ntids;
	struct process_rec p; /* p.threads[i] is tids[i] */
	struct remote *rem;   /* in the guard's shared memory; rem->threads[i] is tids[i] */
	struct proc_stat stat;
	unsigned sk_flags;
};

static void ctx_free(struct dump_ctx *c)
{
	process_rec_free(&c->p);
	if (c->rem && c->rem->mem_fd >= 0)
		close(c->rem->mem_fd);
	if (c->procfd >= 0)
		close(c->procfd);
	if (c->pidfd >= 0)
		close(c->pidfd);
}

/* Puts every thread back as it was (the detach is tree_detach's). Each
 * remote call already put back its thread's registers and mask; this is
 * for a call that failed half way, and for our pages. */
static void dump_release(struct dump_ctx *c)
{
	struct remote *r = c->rem;
	sk_leave_repair(&c->p.files); /* before any thaw: the process may write at once */
	if (!r)
		return;
	if (r->scratch && remote_requeue_signals(r) < 0)
		log_warn("pid %d: signals that came during the dump are lost", c->pid);
	if (r->scratch && remote_unmap_scratch(r, c->pid) < 0)
		log_warn("pid %d: could not remove the scratch mapping", c->pid);
	if (r->trap && remote_unmap_trap(r, c->pid) < 0)
		log_warn("pid %d: could not remove the trap page", c->pid);
	for (size_t i = 0; i < r->nthreads; i++) {
		struct remote_thread *t = &r->threads[i];
		if ((t->flags & RT_BORROWED) && regs_set(t->tid, &t->regs) < 0)
			log_warn("tid %d: could not put registers back", t->tid);
		if ((t->flags & RT_BLOCKED) && ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->mask), &t->mask) < 0)
			log_warn("tid %d: could not put signal mask back", t->tid);
	}
	log_debug("pid %d: %llu remote calls, %llu us of them through the vdso", c->pid, (unsigned long long)r->calls,
		  (unsigned long long)(r->unsafe_ns / 1000));
}

static int collect(struct dump_ctx *c)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	struct proc_status st;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d", c->pid);
	c->procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	c->pidfd = sys_pidfd_open(c->pid, 0);
	if (c->procfd < 0 || c->pidfd < 0)
		return log_error_errno(-errno, "pid %d: cannot open it: %m", c->pid);
	if ((r = proc_read(c->procfd, "stat", &buf, &len)) < 0 || (r = proc_parse_stat(buf, len, &c->stat)) < 0)
		return log_error_errno(r, "pid %d: cannot read stat: %m", c->pid);
	free(buf);
	buf = NULL;
	if ((r = proc_read(c->procfd, "status", &buf, &len)) < 0 || (r = proc_parse_status(buf, len, &st)) < 0)
		return log_error_errno(r, "pid %d: cannot read status: %m", c->pid);
	if (st.seccomp == 1)
		return log_error_errno(-EOPNOTSUPP, "pid %d: strict seccomp mode cannot be checkpointed", c->pid);
	creds_from_status(&st, &c->p.creds);
	if ((r = task_collect(c->procfd, c->pid, &c->p.task)) < 0 || (r = mm_collect(c->procfd, c->pid, &c->p.mm)) < 0 ||
	    (r = files_collect(c->procfd, c->pid, c->sk_flags, &c->p.files)) < 0 ||
	    (r = timers_collect(c->procfd, c->pid, &c->p.timers)) < 0 ||
	    (r = prctl_collect(c->procfd, c->pid, &c->p.prctl)) < 0)
		return r;
	c->p.threads = calloc(c->ntids, sizeof(*c->p.threads));
	c->p.nthreads = c->ntids;
	if (!c->p.threads)
		return -ENOMEM;
	for (size_t i = 0; i < c->ntids; i++) {
		r = thread_dump_ptrace(c->tids[i], &c->p.threads[i]);
		if (r < 0)
			return log_error_errno(r, "tid %d: cannot read thread state: %m", c->tids[i]);
		/* What the thread gets back after each of our calls: the call
		 * it was in, if any, set to run again. */
		c->rem->threads[i].regs = c->p.threads[i].regs;
		regs_rewind_syscall(&c->rem->threads[i].regs, false);
		regs_rewind_syscall(&c->p.threads[i].regs, true);
	}
	return 0;
}

/* Our trap page and scratch area go where we say before the calls that
 * map them (remote.h): in a gap of the maps read now, the scratch a page
 * above the trap. Without a gap, anywhere (a guardian may miss them). */
static void choose_our_place(struct dump_ctx *c)
{
	_cleanup_free_ char *buf = NULL;
	struct vma *cur = NULL;
	size_t len, n = 0;
	uint64_t at;
	if (proc_read(c->procfd, "maps", &buf, &len) < 0 || proc_parse_smaps(buf, len, &cur, &n) < 0)
		return;
	if (mm_find_gap(&c->p.mm, cur, n, TRAP_LEN + PAGE_SIZE + SCRATCH_LEN, &at) == 0) {
		c->rem->trap_at = at;
		c->rem->scratch_at = at + TRAP_LEN + PAGE_SIZE;
	}
	vmas_free(cur, n);
}

static const struct vma_rec *find_vdso(const struct mm_rec *m)
{
	for (size_t i = 0; i < m->nvmas; i++)
		if (m->vmas[i].kind == VMA_VDSO)
			return &m->vmas[i];
	return NULL;
}

/* Everything that needs the process's own hands (remote syscalls): our
 * trap page and scratch area first (this), then its state. */
static int dump_remote(struct dump_ctx *c)
{
	const struct vma_rec *vdso = find_vdso(&c->p.mm);
	struct remote *rem = c->rem;
	int r;

	rem->mem_fd = openat(c->procfd, "mem", O_RDWR | O_CLOEXEC);
	if (rem->mem_fd < 0)
		return log_error_errno(-errno, "pid %d: cannot open its memory: %m", c->pid);
	if (mm_find_syscall(&c->p.mm, rem) < 0)
		return log_error_errno(-ENOEXEC, "pid %d: no syscall instruction in its vdso or any executable "
				       "mapping, which the dump needs to make calls in it", c->pid);
	if (!vdso || rem->syscall_ip < vdso->start || rem->syscall_ip >= vdso->end)
		log_debug("pid %d: remote calls through %#llx, outside the vdso", c->pid,
			  (unsigned long long)rem->syscall_ip);
	/* The calls before our trap page exists go through the process's own
	 * code, set to end in a "jmp ." if we die meanwhile (remote.c). */
	mm_escape_hint(&c->p.mm, rem);
	for (size_t i = 0; i < c->p.mm.nvmas; i++) {
		const struct vma_rec *v = &c->p.mm.vmas[i];
		if ((v->prot & PROT_EXEC) && (v->kind == VMA_FILE || v->kind == VMA_VDSO) &&
		    remote_find_escape(rem, v->start, v->end) > 0)
			break;
	}
	/* Our trap page first, with the main thread's first call: from then
	 * on a thread let go in mid-call waits there (remote.c). A process
	 * whose policy refuses an executable page keeps using the vdso's
	 * syscall: only a SIGKILL of ours in mid-call costs more then. */
	choose_our_place(c);
	bool trap = (r = remote_map_trap(rem, c->pid)) >= 0;
	if (!trap)
		log_debug("pid %d: no trap page (%s); calls go through the vdso", c->pid, strerror(-r));
	for (size_t i = 0; i < c->ntids; i++) {
		pid_t tid = c->tids[i];
		/* A thread stopped in sigsuspend/ppoll/pselect has a temporary
		 * mask; the kernel puts its real one back as the thread leaves
		 * the stop, i.e. during a first harmless call. Read it then.
		 * From then on every call blocks all signals while it runs (a
		 * handler must not run in the middle of our calls) and puts
		 * the thread's own mask back after (remote.c). */
		long ret = i == 0 && trap ? 0 : remote_syscall(rem, tid, SYS_getpid, 0);
		if (ret < 0)
			return log_error_errno((int)ret, "tid %d: cannot run a call in the thread: %m", tid);
		if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(uint64_t), &c->p.threads[i].sigmask) < 0)
			return log_error_errno(-errno, "tid %d: cannot read signal mask: %m", tid);
		rem->threads[i].mask = c->p.threads[i].sigmask;
		rem->threads[i].flags |= RT_MASK_KNOWN;
	}
	/* brk() takes the process's mmap lock for writing, as the mapping of
	 * our areas does: both before smaps is read beside the rest. */
	long brk = remote_syscall(c->rem, c->pid, SYS_brk, 0);
	if (brk < 0)
		return log_error_errno((int)brk, "pid %d: cannot read brk: %m", c->pid);
	c->p.mm.brk = (uint64_t)brk;
	r = remote_map_scratch(rem, c->pid, 0, false);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot map scratch memory: %m", c->pid);
	if (c->p.mm.tracked && (r = mm_smaps_start(c->procfd, &c->p.mm)) < 0)
		return log_error_errno(r, "pid %d: cannot start reading smaps: %m", c->pid);
	return 0;
}

/* The process's state that only its own calls tell, once our areas are
 * mapped (dump_remote). */
static int dump_remote_state(struct dump_ctx *c)
{
	int r;
	if ((r = remote_requeue_signals(c->rem)) < 0)
		return log_error_errno(r, "pid %d: cannot queue again the signals that came during the dump: %m", c->pid);
	for (size_t i = 0; i < c->ntids; i++)
		if ((r = thread_dump_remote(c->rem, &c->p.threads[i])) < 0)
			return log_error_errno(r, "tid %d: cannot read thread state: %m", c->tids[i]);
	if ((r = signals_dump(c->rem, c->pid, &c->p.sig)) < 0)
		return log_error_errno(r, "pid %d: cannot read signal state: %m", c->pid);
	if ((r = task_dump_remote(c->rem, c->pid, &c->p.task)) < 0)
		return log_error_errno(r, "pid %d: cannot read process state: %m", c->pid);
	if ((r = timers_dump_remote(c->rem, c->pid, &c->p.timers)) < 0)
		return r;
	if ((r = prctl_dump_remote(c->rem, c->pid, &c->p.prctl)) < 0 ||
	    (r = creds_dump_remote(c->rem, c->pid, &c->p.creds)) < 0)
		return log_error_errno(r, "pid %d: cannot read its prctl settings: %m", c->pid);
	return 0;
}

static int write_records(struct image *img, struct dump_ctx *c)
{
	int r = files_dump_data(img, c->procfd, c->pid, &c->p.files);
	return r < 0 ? r : process_write(img, &c->p);
}

/* What restore checks the CPU against: vendor and XSAVE features. */
static void cpu_to_json(struct json_builder *body)
{
	struct json_builder cpu;
	char vendor[13] = { 0 };
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0));
	memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4);
	jb_begin(&cpu);
	jb_str(&cpu, "vendor", vendor);
	jb_x64(&cpu, "xsave_mask", xsave_features());
	jb_i64(&cpu, "xsave_size", xsave_size());
	jb_obj(body, "cpu", &cpu);
}

static int write_manifest(struct image *img, const struct tree *t, uint64_t pages, bool ipcns,
			  const struct dump_opts *o, const struct netlock *lock, const struct predump *pd)
{
	if (o->before_commit) {
		int e = o->before_commit(img, o->arg);
		if (e < 0)
			return e;
	}
	_cleanup_json_ json_t *body = NULL;
	struct json_builder b;
	jb_begin(&b);
	jb_str(&b, "type", o->type ? o->type : "process");
	if (o->container)
		jb_put(&b, "container", json_incref(o->container));
	tree_to_json(t, &b);
	cpu_to_json(&b);
	jb_u64(&b, "pages", pages);
	if (ipcns)
		jb_bool(&b, "ipcns", true);
	netlock_to_json(lock, !o->leave_running, &b);
	predump_to_json(pd, image_dir(img), &b);
	int r = jb_end(&b, &body);
	if (r < 0)
		return log_error_errno(r, "cannot encode the manifest (%s): %m", jb_key(&b));
	return image_commit(img, body);
}

/* Looks at every process, then links their fds across the tree. Nothing
 * is changed in any process yet: a refusal here costs them nothing. */
static int collect_all(const struct tree *t, struct dump_ctx *v, size_t n, bool root_stdio)
{
	_cleanup_free_ struct files_proc *all = calloc(n, sizeof(*all));
	size_t nall = 0;
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (v[i].node->zombie)
			continue;
		int r = collect(&v[i]);
		if (r < 0)
			return r;
		phase("looked at", v[i].pid);
		all[nall++] = (struct files_proc){ v[i].pid, &v[i].p.files };
	}
	int r = files_link(all, nall, root_stdio);
	if (r >= 0)
		r = tty_check_sessions(t, all, nall);
	/* Locks are per open file description: dups (known now) count once. */
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (!v[i].node->zombie)
			r = locks_collect(v[i].procfd, v[i].pid, &v[i].p.files, &v[i].p.locks);
	return r;
}

/* The parent a process may share pages with: in the tree, not a zombie,
 * dumped before it (tree order). */
static const struct mm_parent *parent_of(const struct dump_ctx *v, size_t n, const struct dump_ctx *c,
					 struct mm_parent *ret)
{
	for (size_t i = 0; i < n && &v[i] != c; i++)
		if (v[i].pid == c->node->ppid && !v[i].node->zombie) {
			*ret = (struct mm_parent){ .procfd = v[i].procfd, .mm = &v[i].p.mm };
			return ret;
		}
	return NULL;
}

/* The tree's resident anonymous memory: about what the dump copies, for
 * its progress on a terminal (one /proc read per process: only there). */
static uint64_t rss_anon(const struct dump_ctx *v, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *buf = NULL;
		size_t len, pos = 0;
		char line[256];
		unsigned long long kb;
		if (v[i].node->zombie || proc_read(v[i].procfd, "status", &buf, &len) < 0)
			continue;
		while (proc_next_line(buf, len, &pos, line, sizeof(line)))
			if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
				sum += kb * 1024;
	}
	return sum;
}

/* The state calls and the copy of the pages. A tracked process's pages
 * are copied by a thread meanwhile: the calls are ptrace round trips
 * that leave our CPU idle (~5 ms of them, most of it reading 62 signal
 * actions), the copy is CPU work. Only with our trap page: calls through
 * the process's own code write a return address on its stack. The calls
 * change none of the memory the copy reads (they use our scratch area). */
static int remote_and_pages(struct image *img, struct dump_ctx *c, const struct mm_parent *par)
{
	struct mm_copy *job = NULL;
	if (c->p.mm.tracked && c->rem->trap && mm_dump_pages_start(img, c->pid, c->procfd, c->rem, &c->p.mm, &job) < 0)
		job = NULL; /* then one after the other */
	int r = dump_remote_state(c);
	phase("remote calls done", c->pid);
	/* Its guard pages: another walk of every page table, left out of
	 * mm_collect() to be made here, while the threads work (mm.c). */
	if (r >= 0 && c->p.mm.tracked)
		r = mm_guards_collect(c->procfd, c->pid, &c->p.mm);
	int e = job ? mm_dump_pages_join(job) : r < 0 ? 0 : mm_dump_pages(img, c->pid, c->procfd, c->rem, &c->p.mm, par);
	return r < 0 ? r : e;
}

static int dump_all(struct image *img, struct tree *t, struct dump_ctx *v, size_t n, uint64_t *ret_pages,
		    const struct dump_opts *o, const struct netlock *lock, struct predump *pd)
{
	bool ipcns = false;
	int r;
	/* Before they are looked at: a tracked process is looked at otherwise
	 * (mm.h). Pages shared with the parent process are saved in full with
	 * pre-dumps: the image chain holds each process's own pages. */
	for (size_t i = 0; i < n; i++)
		if (!v[i].node->zombie)
			predump_mark(pd, v[i].pid, &v[i].p.mm);
	if ((r = inject_fail("dump:after-seize")) < 0 || (r = tree_check(t)) < 0 || (r = share_collect(t)) < 0 || (r = collect_all(t, v, n, o->container != NULL)) < 0 ||
	    (r = ipc_dump(img, t, &ipcns)) < 0)
		return r;
	phase("tree collected", t->v[0].pid);
	progress_start("saving memory", progress_wanted() ? rss_anon(v, n) : 0);
	for (size_t i = 0; i < n; i++) {
		struct dump_ctx *c = &v[i];
		struct mm_parent par;
		if (c->node->zombie)
			continue;
		c->p.mm.no_pages = c->node->share & SHARE_VM;
		if ((r = interrupt_check()) < 0 || (r = dump_remote(c)) < 0)
			break;
		if ((r = remote_and_pages(img, c, pd ? NULL : parent_of(v, n, c, &par))) < 0)
			break;
		phase("pages saved", c->pid);
		if ((r = mm_smaps_join(c->pid, &c->p.mm, c->rem)) < 0 ||
		    (r = predump_track(pd, c->rem, c->pid, c->pidfd, c->procfd, &c->p.mm)) < 0 ||
		    (r = inject_fail("dump:after-memory")) < 0 || (r = write_records(img, c)) < 0)
			break;
		phase("records written", c->pid);
		*ret_pages += c->p.mm.pages;
	}
	progress_end();
	if (r < 0)
		return r;
	/* Last: no TCP connection may have moved since its record was written. */
	for (size_t i = 0; i < n; i++)
		if (!v[i].node->zombie && (r = sk_check_unchanged(v[i].pid, &v[i].p.files)) < 0)
			return r;
	return (r = interrupt_check()) < 0 ? r : write_manifest(img, t, *ret_pages, ipcns, o, lock, pd);
}

/* The contexts, each process's remote state in the guard's memory. */
static int make_ctxs(struct guard *g, const struct tree *t, const struct dump_opts *o, struct dump_ctx **ret)
{
	struct dump_ctx *v = calloc(t->n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*ret = v;
	for (size_t i = 0; i < t->n; i++) {
		v[i] = (struct dump_ctx){ .node = &t->v[i], .pid = t->v[i].pid, .procfd = -1, .pidfd = -1,
					  .tids = t->v[i].tids, .ntids = t->v[i].ntids, .p = { .pid = t->v[i].pid },
					  .sk_flags = (o->tcp_close ? SK_TCP_CLOSE : 0) |
						      (o->unix_close ? SK_UNIX_CLOSE : 0) |
						      (o->unix_reconnect ? SK_UNIX_RECONNECT : 0) |
						      (o->tcp_established ? SK_TCP_ESTABLISHED : 0) };
		if (t->v[i].zombie)
			continue;
		int r = guard_add(g, v[i].pid, v[i].tids, v[i].ntids, &v[i].rem);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --tcp-established: the tree is frozen; its connections' packets are
 * dropped from now on (netlock.h), and the guardian knows the table. */
static int lock_network(struct guard *g, const struct tree *t, struct netlock *lock)
{
	_cleanup_free_ pid_t *pids = calloc(t->n, sizeof(*pids));
	size_t n = 0;
	if (!pids)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].zombie)
			pids[n++] = t->v[i].pid;
	int r = netlock_find(pids, n, &lock->conns, &lock->n);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot list the tree's TCP connections: %m", t->v[0].pid);
	lock->ns_pid = t->v[0].pid;
	/* The guardian knows the name before the table exists: it removes
	 * nothing of anyone else's, and a table made just before we die. */
	char name[NETLOCK_NAME_MAX];
	netlock_own_name(name, sizeof(name));
	struct netlock future = { .ns_pid = lock->ns_pid };
	memcpy(future.table, name, sizeof(name));
	if (lock->n)
		guard_set_netlock(g, &future);
	if ((r = netlock_take(lock)) < 0)
		return r;
	return inject_pause("dump:locked");
}

/* The image is on disk: the lock goes to the image, or (the tree runs
 * on) goes away, before the tree is let go. */
static void unlock_network(struct guard *g, struct netlock *lock, bool keep)
{
	if (keep && netlock_hand_over(lock) < 0)
		keep = false;
	if (!keep)
		(void)netlock_release(lock);
	guard_set_netlock(g, lock);
}

/* The image is complete and on disk: let the tree go, or kill it. */
static void finish(struct guard *g, const struct tree *t, struct dump_ctx *v, pid_t pid, bool leave_running)
{
	if (leave_running) {
		for (size_t i = 0; i < t->n; i++)
			dump_release(&v[i]);
		tree_detach(t);
		return;
	}
	guard_set_phase(g, GUARD_KILLING);
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].zombie && sys_pidfd_send_signal(v[i].pidfd, SIGKILL) < 0)
			log_warn("pid %d: image written but the process could not be killed: %m", t->v[i].pid);
	/* A pid namespace's init ignores SIGKILL from inside it (where a
	 * container's dump runs): it stays stopped, and dies by
	 * PTRACE_O_EXITKILL when we exit. */
	for (size_t k = 0; pid == 1 && k < t->v[0].ntids; k++)
		if (seize_set_exitkill(t->v[0].tids[k]) < 0)
			log_warn("tid %d: image written but it could not be killed: %m", t->v[0].tids[k]);
}

/* A dump is a transaction (DESIGN.md §5a): until finish() the processes
 * are put back exactly as they were on any failure, on SIGINT, SIGTERM,
 * SIGHUP and SIGPIPE (util/interrupt.h: looked at between steps), and by
 * the guardian if we die. */
int dump_process(struct image *img, pid_t pid, const struct dump_opts *o)
{
	struct tree t = { 0 };
	struct dump_ctx *v = NULL;
	struct guard *g = NULL;
	struct netlock lock = { 0 };
	struct predump *pd = NULL;
	uint64_t pages = 0;
	int r;

	if (pid == getpid() || pid < 1 || (pid == 1 && !o->container))
		return log_error_errno(-EINVAL, "refusing to checkpoint pid %d", pid);
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return log_error_errno(-ESRCH, "no process with pid %d", pid);
	if (o->tcp_established)
		netlock_sweep(); /* ~10 ms: only where nftables is ours to use */
	image_set_page_compression(img, o->compress_level);
	if ((r = predump_begin(o->pre_dump, o->parent, &pd)) < 0)
		return r;
	if ((r = guard_start(img, o->container != NULL, &g)) < 0) {
		predump_free(pd);
		return r;
	}
	if ((r = mm_pages_prepare(pid)) < 0) {
		log_error_errno(r, "cannot allocate the memory to copy pages through: %m");
		goto fail;
	}
	predump_warm(pd, img);
	uint64_t t0 = frozen_since = now_ns();
	if ((r = tree_seize(pid, &t, &g->fz)) < 0) {
		r = r == -ESRCH ? log_error_errno(r, "no process with pid %d", pid) : r;
		goto fail;
	}
	phase("seized", pid);
	if ((r = interrupt_check()) < 0 || (r = make_ctxs(g, &t, o, &v)) < 0 ||
	    (o->tcp_established && (r = lock_network(g, &t, &lock)) < 0) ||
	    (r = dump_all(img, &t, v, t.n, &pages, o, &lock, pd)) < 0 || (r = interrupt_check()) < 0)
		goto fail;
	phase("image committed", pid);
	unlock_network(g, &lock, !o->leave_running);
	finish(g, &t, v, pid, o->leave_running);
	phase(o->leave_running ? "tree let go" : "tree killed", pid);
	if (o->stats) {
		o->stats->frozen_ns = now_ns() - t0;
		o->stats->pages_written = pages;
		for (size_t i = 0; i < t.n; i++)
			o->stats->pages_skipped += v[i].p.mm.chain_pages;
		o->stats->bytes_written = pages * PAGE_SIZE;
		o->stats->bytes_compressed = image_compressed_bytes(img);
	}
	log_info("pid %d: checkpoint of %zu processes written to %s (%llu pages)", pid, t.n, image_dir(img),
		 (unsigned long long)pages);
	(void)predump_keep(pd, image_dir(img)); /* failing: the next dump saves all */
	goto out;
fail:
	for (size_t i = 0; v && i < t.n; i++)
		dump_release(&v[i]);
	unlock_network(g, &lock, false);
	tree_detach(&t);
	image_rollback(img);
	if (r == -EINTR && interrupt_pending())
		log_error("dump interrupted by SIG%s; pid %d left running as it was", sigabbrev_np(interrupt_pending()), pid);
out:
	for (size_t i = 0; v && i < t.n; i++)
		ctx_free(&v[i]);
	guard_end(g); /* after: the contexts' remote state is in its memory */
	netlock_free(&lock);
	predump_free(pd);
	free(v);
	tree_free(&t);
	return r;
}

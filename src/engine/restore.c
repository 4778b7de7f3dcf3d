/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restore driver (DESIGN.md §2.4): read and check the whole image,
 * build the tree of stubs under the original pids (restore-tree.c), and
 * turn each stub into its original process through remote syscalls. Only
 * when every process is complete are they let go together. A failure at
 * any point kills every stub, so nothing half-built survives. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/predump.h"
#include "engine/deleted.h"
#include "engine/fdpass.h"
#include "engine/netlock.h"
#include "engine/lazy.h"
#include "engine/mm-fill.h"
#include "engine/proc.h"
#include "engine/restore-drivers.h"
#include "engine/restore-int.h"
#include "engine/seize.h"
#include "engine/share.h"
#include "engine/signals.h"
#include "engine/sockets.h"
#include "engine/task.h"
#include "engine/thread.h"
#include "engine/remote.h"
#include "image/image.h"
#include "util/cleanup.h"
#include "util/inject.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/util.h"

static void ctx_free(struct restore_ctx *c)
{
	drivers_end(c); /* after tree_kill or the detach: nothing left traced */
	for (size_t i = 0; i < c->n; i++) {
		struct rproc *p = &c->procs[i];
		process_rec_free(&p->p);
		free(p->live);
		if (p->rem.mem_fd >= 0)
			close(p->rem.mem_fd);
		if (p->procfd >= 0)
			close(p->procfd);
		if (p->pidfd >= 0)
			close(p->pidfd);
	}
	free(c->procs);
	files_ctx_done(&c->files);
	if (c->files.ctl >= 0)
		close(c->files.ctl);
	if (c->stub_tfd >= 0)
		close(c->stub_tfd);
	tree_free(&c->tree);
}

/* A child's pages shared copy-on-write with its parent come with the fork
 * (restore_mm): the parent's mappings that the child has too are filled
 * before it forks, not lazily; the child's own pages in them are filled
 * eagerly too (mm-cow.c marks those mappings kept), the rest of both lazily. */
static void eager_where_shared(struct restore_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct rproc *p = &c->procs[i];
		if (p->node->zombie || !p->p.mm.parent_pages)
			continue;
		for (size_t j = 0; j < c->n; j++) {
			struct rproc *q = &c->procs[j];
			if (q->node->pid != p->node->ppid || q->node->zombie)
				continue;
			for (size_t a = 0; a < q->p.mm.nvmas; a++)
				for (size_t b = 0; b < p->p.mm.nvmas; b++)
					if (q->p.mm.vmas[a].start == p->p.mm.vmas[b].start &&
					    q->p.mm.vmas[a].end == p->p.mm.vmas[b].end)
						q->p.mm.vmas[a].eager = true;
		}
	}
}

static int load_image(struct restore_ctx *c, const struct restore_opts *o)
{
	const char *type, *dir = image_dir(c->img);
	json_t *cpu;
	uint64_t pages = 0, mpages;
	int r, xs;

	json_t *man = image_manifest(c->img);
	if (json_get_str(man, "type", &type) < 0 || tree_from_json(json_object_get(man, "tree"), &c->tree) < 0)
		return log_error_errno(-EBADMSG, "manifest.json in %s: missing or bad type/tree", dir);
	if (!streq(type, "process") && !o->adopt) /* containers: rt_restore() */
		return log_error_errno(-EOPNOTSUPP, "image type '%s' cannot be restored by this version", type);
	cpu = json_object_get(man, "cpu");
	if (json_get_int(cpu, "xsave_size", &xs) < 0)
		return log_error_errno(-EBADMSG, "manifest.json in %s: missing cpu description", dir);
	if ((uint32_t)xs != xsave_size())
		return log_error_errno(-EOPNOTSUPP, "image was made on a CPU with another register state size (%d, "
				       "here %u); restore on a CPU of the same kind", xs, xsave_size());
	c->procs = calloc(c->tree.n, sizeof(*c->procs));
	if (!c->procs)
		return -ENOMEM;
	/* The root stub's execve runs while we read the records. */
	c->procs[0] = (struct rproc){ .node = &c->tree.v[0], .procfd = -1, .pidfd = -1, .rem = { .mem_fd = -1 } };
	c->n = 1;
	if (!o->adopt && (r = tree_spawn_root(c, o)) < 0)
		return r;
	for (size_t i = 0; i < c->tree.n; i++) {
		struct rproc *p = &c->procs[i];
		*p = (struct rproc){ .node = &c->tree.v[i], .procfd = -1, .pidfd = -1, .rem = { .mem_fd = -1 } };
		c->n = i + 1;
		if (p->node->zombie)
			continue;
		if ((r = process_read(c->img, p->node->pid, &p->p)) < 0 || (r = mm_check_restorable(&p->p.mm, o->fsroot)) < 0)
			return r;
		if (p->p.nthreads != p->node->ntids)
			return log_error_errno(-EBADMSG, "core-%d.json: thread list differs from the manifest",
					       p->node->pid);
		pages += p->p.mm.pages;
		if (o->lazy && (r = lazy_refuse_compressed(c->img, p->node->pid)) < 0)
			return r;
		/* One with its parent's memory (CLONE_VM) restores no memory. */
		p->lazy = o->lazy && !(p->node->share & SHARE_VM) && lazy_possible(c->img, p->node->pid);
		if (o->lazy && !p->lazy && !(p->node->share & SHARE_VM))
			log_warn("pid %d: the image has no block checksums of its pages (an older stasis made it): "
				 "restored eagerly", p->node->pid);
	}
	eager_where_shared(c);
	if (o->stats)
		o->stats->pages = pages;
	/* Nothing unchecked: the manifest's count is the records' sum. */
	if (json_get_u64(man, "pages", &mpages) < 0 || mpages != pages)
		return log_error_errno(-EBADMSG, "manifest.json in %s: \"pages\" is not the %" PRIu64
				       " pages its processes saved", dir, pages);
	return 0;
}

static int clone_threads(const struct restore_ctx *c, struct rproc *rp)
{
	const uint64_t flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	struct remote *r = &rp->rem;
	pid_t pid = rp->node->pid;
	for (size_t i = 1; i < rp->p.nthreads; i++) {
		pid_t tid = rp->p.threads[i].tid;
		int status, e;
		long ret = restore_clone(r, pid, flags, r->scratch + SCRATCH_LEN - 65536, 32768, tid);
		if (ret == -EEXIST)
			return restore_check_pid_free(tid, c->adopted) < 0 ? -EBUSY
				: log_error_errno(-EAGAIN, "tid %d was taken while the tree was made; try again", tid);
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot create thread %d: %m", pid, tid);
		/* The new thread is traced from birth and stops before running. */
		if ((e = wait_stop(tid, &status)) < 0)
			return log_error_errno(e, "thread %d did not stop after creation: %m", tid);
		rp->live[rp->nlive++] = tid;
		uint64_t all = ~0ULL;
		if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(all), &all) < 0)
			return -errno;
	}
	return 0;
}

/* PR_SET_MM_MAP names the executable only for a caller with CAP_SYS_ADMIN
 * or CAP_CHECKPOINT_RESTORE, which a stub in a container has only when
 * the container's own configuration grants it. */
static bool can_set_exe(struct rproc *rp)
{
	_cleanup_free_ char *buf = NULL;
	struct proc_status st;
	size_t len;
	if (proc_read(rp->procfd, "status", &buf, &len) < 0 || proc_parse_status(buf, len, &st) < 0)
		return false;
	return st.cap_eff & ((1ULL << CAP_SYS_ADMIN) | (1ULL << CAP_CHECKPOINT_RESTORE));
}

/* Else the stub executes the file itself, and we take it at the exit of
 * that execve, before the program's first instruction: a syscall
 * instruction written at its entry point maps a new scratch area. */
static int exec_exe(struct rproc *rp)
{
	struct remote *r = &rp->rem;
	pid_t pid = rp->node->pid;
	const char *exe = rp->p.mm.exe;
	uint64_t argv[2] = { r->scratch + 4096, 0 };
	static const uint8_t insn[] = { 0x0f, 0x05 };
	struct user_regs_struct regs;
	if (path_deleted(exe))
		return log_error_errno(-EOPNOTSUPP, "pid %d: its executable %s was deleted (or is a memfd), and the "
				       "stub here lacks CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE to name it; cannot "
				       "restore it without them", pid, exe);
	int e = remote_write(r, r->scratch + 4096, exe, strlen(exe) + 1);
	if (e < 0 || (e = remote_write(r, r->scratch + 8192, argv, sizeof(argv))) < 0)
		return e;
	long ret = remote_syscall(r, pid, SYS_execve, r->scratch + 4096, r->scratch + 8192, r->scratch + 8200);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot execute %s, its executable: %m", pid, exe);
	/* A new address space: /proc/PID/mem must be opened again. */
	close(r->mem_fd);
	r->mem_fd = openat(rp->procfd, "mem", O_RDWR | O_CLOEXEC);
	if (r->mem_fd < 0 || (e = regs_get(pid, &regs)) < 0 || (e = remote_write(r, regs.rip, insn, sizeof(insn))) < 0)
		return log_error_errno(r->mem_fd < 0 ? -errno : e, "pid %d: cannot take over after execve: %m", pid);
	r->syscall_ip = regs.rip;
	r->scratch = 0;
	if ((e = rproc_map_scratch(rp)) < 0)
		return log_error_errno(e, "pid %d: cannot map scratch memory after execve: %m", pid);
	log_debug("pid %d: executed %s", pid, exe);
	return 0;
}

/* The threads' rseq areas are written by the kernel as we register them
 * (thread_restore_remote), before the tree runs. */
static int restore_lazy(struct restore_ctx *c, struct rproc *rp)
{
	_cleanup_free_ uint64_t *addr = calloc(rp->p.nthreads + 1, sizeof(*addr));
	struct touched tp = { addr, 0 };
	if (!addr)
		return -ENOMEM;
	for (size_t i = 0; i < rp->p.nthreads; i++)
		if (rp->p.threads[i].rseq.rseq_abi_pointer)
			addr[tp.n++] = rp->p.threads[i].rseq.rseq_abi_pointer;
	return lazy_restore_pages(&rp->rem, rp->node->pid, rp->pidfd, c->img, &rp->p.mm, &tp, c->files.ctl,
				  FDPASS_STUB_FD, c->lazy_sock);
}

int restore_mm(struct restore_ctx *c, struct rproc *rp, const struct rproc *parent, const struct rproc *maker)
{
	struct remote *r = &rp->rem;
	struct mm_rec *m = &rp->p.mm;
	pid_t pid = rp->node->pid;
	/* A child has its parent's exe (fork keeps it, and the kernel refuses
	 * to set it again while it is mapped); executing it again would throw
	 * away the memory it inherited. One made by a sibling's stub
	 * (share.h) has the sibling's memory: its pages shared with the
	 * parent are copied from there. */
	bool forked = parent && maker == parent;
	bool exe_inherited = maker && streq(maker->p.mm.exe, m->exe);
	bool need_exec = !exe_inherited && !can_set_exe(rp);
	bool inherit = forked && !need_exec;
	int e;

	/* Pages from elsewhere than its page file (the lazy filler, parent
	 * images, its parent's memory copied): every mapping that may hold
	 * pages is writable meanwhile, as it always was. */
	bool all = rp->lazy || m->chain_pages || (parent && !inherit && m->parent_pages);
	if ((e = mm_load_refs(c->img, pid, m, parent ? &parent->p.mm : NULL, inherit)) < 0 ||
	    (e = mm_mark_filled(c->img, m, pid, all)) < 0 || (need_exec && (e = exec_exe(rp)) < 0) ||
	    (e = mm_clear_stub(r, pid, m, rp->procfd)) < 0 ||
	    (e = mm_restore_vmas(r, pid, m, &c->files, FDPASS_STUB_FD)) < 0 ||
	    (e = mm_restore_kept(r, pid, rp->procfd, m)) < 0 ||
	    (rp->lazy && m->chain_pages &&
	     (e = log_error_errno(-EOPNOTSUPP, "pid %d: an incremental image (--parent) cannot be restored --lazy", pid)) < 0))
		return e;
	rp->mm_pending = true;
	rp->mm_parent = parent;
	rp->mm_exe_set = exe_inherited || need_exec;
	rp->mm_copied = parent && !inherit;
	int uffd = -1;
	if (c->fill && rp->fill_checks && fill_uffd_wanted(m) &&
	    (e = fill_uffd_make(r, pid, rp->pidfd, c->files.ctl, FDPASS_STUB_FD, m, &uffd)) < 0)
		return e;
	if (c->fill && !rp->lazy)
		return fill_submit(c->fill, c->img, r, m, uffd, &rp->fill);
	if ((e = rp->lazy ? restore_lazy(c, rp) : mm_restore_pages(r, pid, c->img, m, c->files.ctl, FDPASS_STUB_FD)) < 0 ||
	    (e = predump_restore_chain(r, c->img, m)) < 0)
		return e;
	return 0;
}

int restore_mm_done(struct restore_ctx *c, struct rproc *rp)
{
	const struct rproc *parent = rp->mm_parent;
	struct mm_rec *m = &rp->p.mm;
	pid_t pid = rp->node->pid;
	int e;
	if (!rp->mm_pending)
		return 0;
	rp->mm_pending = false;
	if ((rp->fill && (e = fill_wait(c->fill, rp->fill)) < 0) ||
	    (parent && (e = mm_copy_refs(&rp->rem, m, parent->rem.mem_fd)) < 0) ||
	    (!rp->lazy && (e = mm_thp_restore(&rp->rem, pid, m)) < 0) || (e = inject_fail("restore:after-mm")) < 0 ||
	    (e = mm_restore_finish(&rp->rem, pid, m, rp->mm_exe_set)) < 0)
		return e;
	log_debug("pid %d: memory restored (%" PRIu64 " pages shared with its parent%s)", pid, m->parent_pages,
		  m->parent_pages && rp->mm_copied ? ", copied" : "");
	return 0;
}

/* Its cwd if deleted, its fds and their locks. A shared fd table (and the
 * locks it owns) is filled by its last sharer. */
static int restore_files(struct restore_ctx *c, struct rproc *rp)
{
	struct process_rec *p = &rp->p;
	size_t idx = (size_t)(rp - c->procs);
	pid_t pid = rp->node->pid;
	int e;
	if (path_deleted(p->task.cwd) &&
	    (e = deleted_restore_cwd(&c->files, &rp->rem, pid, FDPASS_STUB_FD, p->task.cwd)) < 0)
		return e;
	if (!share_restores_files(&c->tree, idx))
		return 0;
	bool root = share_files_owner(&c->tree, idx) == 0;
	if ((e = files_restore(&c->files, &rp->rem, pid, &p->files, FDPASS_STUB_FD, rp->pidfd, root)) < 0 ||
	    (e = locks_restore(&rp->rem, pid, &p->locks)) < 0)
		return e;
	return 0;
}

/* Tests: STASIS_INJECT_FAIL=restore:body:N fails process N of the tree
 * (tree order) once its threads exist, on whichever driver has it. */
static int inject_body(size_t idx)
{
	char point[48];
	snprintf(point, sizeof(point), "restore:body:%zu", idx);
	return inject_fail(point);
}

/* Turns one stub into its process; it stays stopped until all are done. */
static int restore_body(struct restore_ctx *c, struct rproc *rp)
{
	struct remote *r = &rp->rem;
	struct process_rec *p = &rp->p;
	pid_t pid = rp->node->pid;
	int e;

	if (rp == c->procs && c->stub_file) {
		/* Through the container's own view, so that an overlay removes it
		 * properly; it is not mapped any more. */
		long ret = remote_write(r, r->scratch + 4096, c->stub_file, strlen(c->stub_file) + 1);
		if (ret >= 0)
			ret = remote_syscall(r, pid, SYS_unlinkat, AT_FDCWD, r->scratch + 4096, 0);
		if (ret < 0)
			log_warn("cannot remove the stub %s from the container: %s", c->stub_file, strerror((int)-ret));
	}
	/* The fds in tree order (restore-drivers.h): a description made or
	 * opened by an earlier process is in the table of things made. */
	size_t idx = (size_t)(rp - c->procs);
	bool table = share_restores_files(&c->tree, idx);
	if ((e = drivers_files_begin(c, idx)) < 0 || (e = restore_files(c, rp)) < 0)
		return e;
	drivers_files_end(c, idx);
	if ((e = task_restore(r, pid, &p->task)) < 0 || (e = prctl_restore(r, pid, rp->procfd, &p->prctl)) < 0 ||
	    (e = signals_restore(r, pid, &p->sig)) < 0 || (e = clone_threads(c, rp)) < 0 ||
	    (e = inject_body(idx)) < 0 || (table && (e = files_restore_owners(&c->files, r, pid, &p->files)) < 0) ||
	    (e = timers_restore(r, pid, &p->timers)) < 0 || (e = inject_fail("restore:after-threads")) < 0)
		return e;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct thread_rec *t = &p->threads[i];
		if ((e = thread_restore_remote(r, t)) < 0 || (e = task_restore_nnp(r, t->tid, &p->task)) < 0 ||
		    (e = thread_restore_seccomp(r, t)) < 0 || (e = thread_restore_pending(r, pid, t)) < 0)
			return e;
	}
	if ((e = signals_restore_pending(r, pid, &p->sig)) < 0)
		return e;
	for (size_t i = 0; i < p->nthreads; i++)
		if ((e = creds_restore(r, p->threads[i].tid, &p->creds)) < 0)
			return e;
	if ((e = task_restore_pdeathsig(r, pid, &p->task, rp == c->procs)) < 0 ||
	    (e = signals_restore_trap(r, pid, &p->sig)) < 0)
		return e;
	/* Processes sharing one address space share the scratch: the last removes it. */
	if (share_restores_mm_last(&c->tree, idx) && (e = remote_unmap_scratch(r, pid)) < 0)
		return log_error_errno(e, "pid %d: cannot remove scratch memory: %m", pid);
	for (size_t i = 0; i < p->nthreads; i++)
		if ((e = thread_restore_regs(&p->threads[i])) < 0)
			return e;
	return 0;
}

int restore_one(struct restore_ctx *c, struct rproc *rp)
{
	uint64_t t0 = now_ns(), calls = rp->rem.calls, trips = rp->rem.trips;
	int e = restore_mm_done(c, rp);
	if (e < 0 || (e = restore_body(c, rp)) < 0)
		return e;
	log_debug("pid %d: restored with %llu remote calls in %llu round trips (%llu and %llu of them, %.2f ms, "
		  "after the tree was made)", rp->node->pid, (unsigned long long)rp->rem.calls,
		  (unsigned long long)rp->rem.trips, (unsigned long long)(rp->rem.calls - calls),
		  (unsigned long long)(rp->rem.trips - trips), (double)(now_ns() - t0) / 1e6);
	return 0;
}

static void *verify_main(void *arg)
{
	struct restore_ctx *c = arg;
	char name[IMAGE_NAME_MAX];
	for (size_t i = 0; i < c->n && c->verify_result >= 0; i++) {
		/* lazy: block by block, by the filler; fill_checks: by the worker */
		if (c->procs[i].node->zombie || c->procs[i].lazy || c->procs[i].fill_checks)
			continue;
		c->verify_result = image_verify_file(c->img, image_name_pages(name, c->procs[i].node->pid));
	}
	return NULL;
}

static int verify_start(struct restore_ctx *c)
{
	bool any = false;
	for (size_t i = 0; i < c->n; i++)
		any |= !c->procs[i].node->zombie && !c->procs[i].lazy && !c->procs[i].fill_checks;
	if (!any) /* no thread for nothing (plan_fill) */
		return 0;
	int r = -pthread_create(&c->verifier, NULL, verify_main, c);
	c->verifying = r == 0;
	return r;
}

static int verify_join(struct restore_ctx *c)
{
	if (!c->verifying)
		return 0;
	pthread_join(c->verifier, NULL);
	c->verifying = false;
	return c->verify_result;
}

/* An adopted stub's fds 0-2 are what its runtime gave the container
 * (log pipes, a terminal): the tree's external fds get those. */
static int take_stub_stdio(struct restore_ctx *c, struct inherit_fd inh[3])
{
	c->files.ninh = 0; /* the runtime's, not --inherit-fd (process images only) */
	for (int fd = 0; fd < 3; fd++) {
		int ours = fdpass_take(c->procs[0].pidfd, fd);
		if (ours < 0 && ours != -EBADF)
			return log_error_errno(ours, "cannot take fd %d of the container's stub: %m", fd);
		inh[c->files.ninh++] = (struct inherit_fd){ fd, ours };
	}
	c->files.inh = inh;
	return 0;
}

/* Which page files the workers checksum as they read them (the rest
 * the verifier reads); decided before either starts. */
static void plan_fill(struct restore_ctx *c)
{
	char name[IMAGE_NAME_MAX];
	bool eager = false;
	c->fill_threads = fill_threads_wanted(c->n);
	for (size_t i = 0; c->fill_threads && i < c->n; i++) {
		struct rproc *p = &c->procs[i];
		p->fill_checks = !p->node->zombie && !p->lazy && !(p->node->share & SHARE_VM) &&
				 !image_compressed(c->img, image_name_pages(name, p->node->pid));
		eager |= !p->node->zombie && !p->lazy && !(p->node->share & SHARE_VM);
	}
	/* A lazy restore stays one thread: a thread on the other core makes
	 * every munmap of ours wait for it (TLB shootdown), and competes with
	 * the tree's making for the cores. */
	if (!eager)
		c->fill_threads = 0;
	log_debug("%u threads fill memory", c->fill_threads);
}

static int restore_all(struct restore_ctx *c, const struct restore_opts *o)
{
	struct inherit_fd inh[3] = { { 0, -1 }, { 1, -1 }, { 2, -1 } };
	if (!o->lazy)
		progress_start("restoring memory", o->stats ? o->stats->pages * PAGE_SIZE : 0);
	int r = c->fill_threads ? fill_pool_start(c->fill_threads, &c->fill) : 0;
	if (r >= 0)
		r = tree_create(c, o);
	if (r >= 0)
		log_debug("%zu processes created", c->n);
	if (r >= 0 && o->adopt)
		r = take_stub_stdio(c, inh);
	/* Each process's memory is complete before anything else of it;
	 * several processes at once (restore-drivers.h). */
	if (r >= 0)
		r = drivers_run(c);
	/* On failure the jobs left stop: their processes are killed next. */
	fill_pool_stop(c->fill, r < 0);
	c->fill = NULL;
	progress_end();
	for (int k = 0; o->adopt && k < 3; k++) /* the made table holds copies */
		if (inh[k].our_fd >= 0)
			close(inh[k].our_fd);
	return r < 0 ? r : 0;
}

/* Processes that were stopped by a signal stop again as we let them
 * go, and their parents see it (waitpid WUNTRACED). Always SIGSTOP: the
 * kernel drops SIGTSTP, SIGTTIN and SIGTTOU in an orphaned process
 * group, which the restored root's may be. */
static void stop_again(const struct restore_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct rproc *p = &c->procs[i];
		if (!p->node->stop_sig || p->exited)
			continue;
		if (sys_pidfd_send_signal(p->pidfd, SIGSTOP) < 0)
			log_warn("pid %d: was stopped at dump time but cannot be stopped again: %m", p->node->pid);
	}
}

/* --tcp-established: the image's connections stay locked (a table of
 * ours, before any socket is made) until the tree runs; the dump's table,
 * which kept them locked until now, goes when the restore succeeds. */
static int lock_network(struct restore_ctx *c, const struct restore_opts *o, struct netlock *lock)
{
	int r = netlock_from_json(json_object_get(image_manifest(c->img), "netlock"), lock);
	if (r < 0)
		return log_error_errno(r, "manifest.json in %s: bad \"netlock\" record", image_dir(c->img));
	if (!o->tcp_established || (r = netlock_take(lock)) < 0)
		return r;
	return inject_pause("restore:locked");
}

static void unlock_network(struct netlock *lock, bool ok)
{
	if (!ok)
		lock->image_table[0] = 0; /* a second try finds the peers waiting */
	(void)netlock_release(lock);
	netlock_free(lock);
}

int restore_process(struct image *img, const struct restore_opts *o, pid_t *ret_pid)
{
	struct restore_ctx c = { .img = img, .stub_tfd = -1, .root_sync = -1, .files = { .ctl = -1 },
				 .lazy_sock = o->lazy ? o->lazy_sock : -1 };
	_cleanup_close_ int ctl = -1;
	_cleanup_free_ struct files_proc *all = NULL;
	struct files_inflight inflight = { 0 };
	struct netlock lock = { 0 };
	if (o->tcp_established)
		netlock_sweep();
	struct image *parent = NULL;
	/* Before the records: the root stub is started as soon as the tree is read. */
	int r = o->adopt ? 0 : fdpass_open(&ctl, &c.stub_tfd);
	if (r >= 0)
		r = load_image(&c, o);
	log_debug("records of %zu processes read and checked", c.n);
	/* A missing or changed parent image is refused before the tree is
	 * made (the root stub, started already, is killed at out). */
	if (r >= 0 && (r = predump_open_parent(img, &parent)) >= 0)
		image_free(parent);
	if (r < 0 || (r = lock_network(&c, o, &lock)) < 0)
		goto out;
	all = calloc(c.n, sizeof(*all));
	if (!all) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < c.n; i++)
		all[i] = (struct files_proc){ c.procs[i].node->pid, &c.procs[i].p.files };
	/* The kinds find the fds in flight among the tree's (files.h). */
	if ((r = files_inflight_open(all, c.n, false, &inflight)) < 0)
		goto out;
	c.files = (struct files_ctx){ .img = c.img, .ctl = -1, .inh = o->inherit, .ninh = o->ninherit,
				      .all = inflight.all, .nall = inflight.n, .fsroot = o->fsroot };
	c.adopted = o->adopt;
	c.stub_file = o->stub_file;
	if (o->adopt && o->ctl >= 0) /* the runtime started the stub with the other end */
		r = (c.files.ctl = fcntl(o->ctl, F_DUPFD_CLOEXEC, 3)) < 0 ? -errno : 0;
	else if (o->adopt)
		r = 0; /* connected by tree_create */
	else
		c.files.ctl = TAKE_FD(ctl);
	plan_fill(&c);
	if (r < 0 || (r = sk_check_restore(all, c.n, o->tcp_established)) < 0 || (r = verify_start(&c)) < 0)
		goto out;
	r = restore_all(&c, o);
	if (r >= 0) /* every socket exists now: both ends of a connection */
		r = sk_restore_finish(&c.files);
	int v = verify_join(&c);
	if (r >= 0 && v < 0)
		r = v; /* damaged page data: never let the processes run with it */
	if (r >= 0 && o->lazy && (r = lazy_go(o->lazy_sock)) < 0)
		log_error_errno(r, "the lazy filler is gone; the restored processes are killed: %m");
	if (r < 0) {
		tree_kill(&c);
		goto out;
	}
	unlock_network(&lock, true);
	stop_again(&c);
	/* Children first: a parent that runs may wait for them at once. */
	drivers_detach(&c);
	if (o->stats) {
		uint64_t calls = 0, trips = 0;
		for (size_t i = 0; i < c.n; i++)
			calls += c.procs[i].rem.calls, trips += c.procs[i].rem.trips;
		o->stats->resume_ns = now_ns() - o->stats->t0_ns;
		log_debug("the tree runs (%.1f ms after the start, %" PRIu64 " remote syscalls in %" PRIu64
			  " round trips)", (double)o->stats->resume_ns / 1e6, calls, trips);
	}

	*ret_pid = c.procs[0].node->pid;
	log_info("restored %zu processes, root pid %d", c.n, *ret_pid);
out:
	tree_unspawn_root(&c); /* started, but the tree was never made */
	unlock_network(&lock, r >= 0);
	verify_join(&c);
	ctx_free(&c);
	files_inflight_close(&inflight, false);
	return r;
}

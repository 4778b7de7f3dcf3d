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
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "engine/process.h"
#include "engine/rec.h"
#include "engine/seize.h"
#include "engine/signals.h"
#include "engine/task.h"
#include "engine/thread.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

struct dump_ctx {
	pid_t pid;
	int procfd, pidfd;
	pid_t *tids;
	size_t ntids;
	struct process_rec p; /* p.threads[i] is tids[i] */
	struct user_regs_struct *orig_regs; /* as seized, for letting go */
	bool *touched;
	struct remote rem;
	struct image *img;
	struct proc_stat stat;
};

static void ctx_free(struct dump_ctx *c)
{
	process_rec_free(&c->p);
	free(c->orig_regs);
	free(c->touched);
	free(c->tids);
	image_free(c->img);
	if (c->rem.mem_fd >= 0)
		close(c->rem.mem_fd);
	if (c->procfd >= 0)
		close(c->procfd);
	if (c->pidfd >= 0)
		close(c->pidfd);
}

/* Puts every thread back as it was and detaches. */
static void dump_release(struct dump_ctx *c)
{
	if (c->rem.scratch && remote_requeue_signals(&c->rem) < 0)
		log_warn("pid %d: signals that came during the dump are lost", c->pid);
	if (c->rem.scratch && remote_unmap_scratch(&c->rem, c->pid) < 0)
		log_warn("pid %d: could not remove the scratch mapping", c->pid);
	for (size_t i = 0; i < c->ntids; i++) {
		pid_t tid = c->tids[i];
		if (c->touched && c->touched[i]) {
			struct user_regs_struct regs = c->orig_regs[i];
			regs_rewind_syscall(&regs, false);
			if (regs_set(tid, &regs) < 0)
				log_warn("tid %d: could not put registers back", tid);
			if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(uint64_t), &c->p.threads[i].sigmask) < 0)
				log_warn("tid %d: could not put signal mask back", tid);
		}
		detach_thread(tid);
	}
}

static int collect(struct dump_ctx *c)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	struct proc_status st;
	int r;

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
	    (r = files_collect(c->procfd, c->pid, &c->p.files)) < 0 ||
	    (r = locks_collect(c->procfd, c->pid, &c->p.files, &c->p.locks)) < 0 ||
	    (r = timers_collect(c->procfd, c->pid, &c->p.timers)) < 0)
		return r;
	c->p.threads = calloc(c->ntids, sizeof(*c->p.threads));
	c->p.nthreads = c->ntids;
	c->orig_regs = calloc(c->ntids, sizeof(*c->orig_regs));
	c->touched = calloc(c->ntids, sizeof(*c->touched));
	if (!c->p.threads || !c->orig_regs || !c->touched)
		return -ENOMEM;
	for (size_t i = 0; i < c->ntids; i++) {
		r = thread_dump_ptrace(c->tids[i], &c->p.threads[i]);
		if (r < 0)
			return log_error_errno(r, "tid %d: cannot read thread state: %m", c->tids[i]);
		c->orig_regs[i] = c->p.threads[i].regs;
		regs_rewind_syscall(&c->p.threads[i].regs, true);
	}
	return 0;
}

static const struct vma_rec *find_vdso(const struct mm_rec *m)
{
	for (size_t i = 0; i < m->nvmas; i++)
		if (m->vmas[i].kind == VMA_VDSO)
			return &m->vmas[i];
	return NULL;
}

/* Everything that needs the process's own hands (remote syscalls). */
static int dump_remote(struct dump_ctx *c)
{
	const struct vma_rec *vdso = find_vdso(&c->p.mm);
	uint64_t all = ~0ULL;
	int r;

	c->rem.mem_fd = openat(c->procfd, "mem", O_RDWR | O_CLOEXEC);
	if (c->rem.mem_fd < 0)
		return log_error_errno(-errno, "pid %d: cannot open its memory: %m", c->pid);
	if (!vdso || remote_find_syscall(&c->rem, vdso->start, vdso->end) < 0)
		return log_error_errno(-ENOEXEC, "pid %d: no vdso with a syscall instruction found", c->pid);
	for (size_t i = 0; i < c->ntids; i++) {
		pid_t tid = c->tids[i];
		/* A thread stopped in sigsuspend/ppoll/pselect has a temporary
		 * mask; the kernel puts its real one back as the thread leaves
		 * the stop, i.e. during a first harmless call. Read it then. */
		c->touched[i] = true;
		long ret = remote_syscall(&c->rem, tid, SYS_getpid, 0);
		if (ret < 0)
			return log_error_errno((int)ret, "tid %d: cannot run a call in the thread: %m", tid);
		if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(uint64_t), &c->p.threads[i].sigmask) < 0)
			return log_error_errno(-errno, "tid %d: cannot read signal mask: %m", tid);
		/* Block everything while we borrow the thread: a signal must
		 * not run a handler in the middle of our calls. */
		if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(all), &all) < 0)
			return log_error_errno(-errno, "tid %d: cannot block signals: %m", tid);
	}
	r = remote_map_scratch(&c->rem, c->pid, 0, false);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot map scratch memory: %m", c->pid);
	if ((r = remote_requeue_signals(&c->rem)) < 0)
		return log_error_errno(r, "pid %d: cannot queue again the signals that came during the dump: %m", c->pid);
	for (size_t i = 0; i < c->ntids; i++)
		if ((r = thread_dump_remote(&c->rem, &c->p.threads[i])) < 0)
			return log_error_errno(r, "tid %d: cannot read thread state: %m", c->tids[i]);
	if ((r = signals_dump(&c->rem, c->pid, &c->p.sig)) < 0)
		return log_error_errno(r, "pid %d: cannot read signal state: %m", c->pid);
	if ((r = task_dump_remote(&c->rem, c->pid, &c->p.task)) < 0)
		return log_error_errno(r, "pid %d: cannot read process state: %m", c->pid);
	if ((r = timers_dump_remote(&c->rem, c->pid, &c->p.timers)) < 0)
		return r;
	long brk = remote_syscall(&c->rem, c->pid, SYS_brk, 0);
	if (brk < 0)
		return log_error_errno((int)brk, "pid %d: cannot read brk: %m", c->pid);
	c->p.mm.brk = (uint64_t)brk;
	return 0;
}

static int write_records(struct dump_ctx *c)
{
	int r = files_dump_data(c->img, c->procfd, c->pid, &c->p.files);
	return r < 0 ? r : process_write(c->img, &c->p);
}

static int write_manifest(struct dump_ctx *c)
{
	_cleanup_json_ json_t *body = json_object();
	json_t *tree = json_array(), *proc = json_object(), *tids = json_array(), *cpu = json_object();
	char vendor[13] = { 0 };
	unsigned a, b, cc, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d) : "a"(0));
	memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &cc, 4);
	int r = 0;
	for (size_t i = 0; i < c->ntids; i++)
		r |= json_array_append_new(tids, json_integer(c->tids[i]));
	r |= json_object_set_new(proc, "pid", json_integer(c->pid));
	r |= json_object_set_new(proc, "ppid", json_integer(c->stat.ppid));
	r |= json_object_set_new(proc, "pgid", json_integer(c->stat.pgrp));
	r |= json_object_set_new(proc, "sid", json_integer(c->stat.session));
	r |= json_set_str(proc, "comm", c->p.task.comm);
	r |= json_object_set_new(proc, "threads", tids);
	r |= json_array_append_new(tree, proc);
	r |= json_set_str(cpu, "vendor", vendor);
	r |= json_set_x64(cpu, "xsave_mask", xsave_features());
	r |= json_object_set_new(cpu, "xsave_size", json_integer(xsave_size()));
	r |= json_set_str(body, "type", "process");
	r |= json_object_set_new(body, "tree", tree);
	r |= json_object_set_new(body, "cpu", cpu);
	r |= json_set_u64(body, "pages", c->p.mm.pages);
	if (r)
		return -ENOMEM;
	return image_commit(c->img, body);
}

int dump_process(pid_t pid, const char *dir, const struct dump_opts *o)
{
	struct dump_ctx c = { .pid = pid, .procfd = -1, .pidfd = -1, .p = { .pid = pid },
			      .rem = { .pid = pid, .mem_fd = -1 } };
	char path[64];
	int r;

	if (pid == getpid() || pid <= 1)
		return log_error_errno(-EINVAL, "refusing to checkpoint pid %d", pid);
	snprintf(path, sizeof(path), "/proc/%d", pid);
	c.procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	c.pidfd = sys_pidfd_open(pid, 0);
	if (c.procfd < 0 || c.pidfd < 0) {
		r = log_error_errno(-errno, "no process with pid %d: %m", pid);
		goto out;
	}
	if ((r = image_create(dir, &c.img)) < 0)
		goto out;
	r = seize_all(pid, SEIZE_OPTS_DUMP, &c.tids, &c.ntids);
	if (r < 0) {
		log_error_errno(r, "cannot freeze pid %d: %m", pid);
		image_discard(TAKE_PTR(c.img));
		goto out;
	}
	if ((r = inject_fail("dump:after-seize")) < 0 || (r = collect(&c)) < 0 || (r = dump_remote(&c)) < 0 ||
	    (r = mm_dump_pages(c.img, pid, c.procfd, &c.rem, &c.p.mm)) < 0 || (r = inject_fail("dump:after-memory")) < 0 ||
	    (r = write_records(&c)) < 0 || (r = write_manifest(&c)) < 0) {
		dump_release(&c);
		image_discard(TAKE_PTR(c.img));
		goto out;
	}
	if (o->leave_running) {
		dump_release(&c);
	} else if (sys_pidfd_send_signal(c.pidfd, SIGKILL) < 0) {
		r = log_error_errno(-errno, "pid %d: image written but the process could not be killed: %m", pid);
		dump_release(&c);
	}
	log_info("pid %d: checkpoint written to %s (%zu threads, %llu pages)", pid, dir, c.ntids,
		 (unsigned long long)c.p.mm.pages);
out:
	ctx_free(&c);
	return r;
}

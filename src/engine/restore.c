/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restore driver (DESIGN.md §2.4): read and check the whole image,
 * start the stub under the original pid, seize it, and turn it into the
 * original process through remote syscalls. A failure at any point kills
 * the stub, so nothing half-built survives. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "engine/dump.h"
#include "engine/process.h"
#include "engine/rec.h"
#include "engine/seize.h"
#include "engine/signals.h"
#include "engine/task.h"
#include "engine/thread.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

struct restore_ctx {
	pid_t pid;
	struct image *img;
	struct process_rec p;
	struct remote rem;
	int procfd;
	bool spawned; /* the stub exists: a failure must kill it */
	/* The page file is read by the process itself, not by us: its
	 * checksum is verified by a thread alongside the restore. */
	pthread_t verifier;
	bool verifying;
	int verify_result;
	pid_t *live; /* threads that exist and are seized */
	size_t nlive;
};

static void ctx_free(struct restore_ctx *c)
{
	process_rec_free(&c->p);
	free(c->live);
	image_free(c->img);
	if (c->rem.mem_fd >= 0)
		close(c->rem.mem_fd);
	if (c->procfd >= 0)
		close(c->procfd);
}

static int load_image(struct restore_ctx *c, const char *dir)
{
	const char *type;
	json_t *tree, *cpu;
	int r, pid, xs;

	if ((r = image_open(dir, &c->img)) < 0)
		return r;
	json_t *man = image_manifest(c->img);
	if (json_get_str(man, "type", &type) < 0 || json_get_array(man, "tree", 1, &tree) < 0 ||
	    json_array_size(tree) != 1 || json_get_int(json_array_get(tree, 0), "pid", &pid) < 0 || pid <= 1)
		return log_error_errno(-EBADMSG, "manifest.json in %s: missing or bad type/tree", dir);
	if (!streq(type, "process"))
		return log_error_errno(-EOPNOTSUPP, "image type '%s' cannot be restored by this version", type);
	c->pid = pid;
	cpu = json_object_get(man, "cpu");
	if (json_get_int(cpu, "xsave_size", &xs) < 0)
		return log_error_errno(-EBADMSG, "manifest.json in %s: missing cpu description", dir);
	if ((uint32_t)xs != xsave_size())
		return log_error_errno(-EOPNOTSUPP, "image was made on a CPU with another register state size (%d, "
				       "here %u); restore on a CPU of the same kind", xs, xsave_size());
	return process_read(c->img, c->pid, &c->p);
}

/* A pid held by a zombie is freed once its parent reaps it; init here
 * reaps late (DESIGN.md §7), so wait a little for that. */
static int check_pid_free(pid_t pid)
{
	char path[64], state = 0, comm[64] = "?";
	for (int i = 0; i < 50; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		_cleanup_fclose_ FILE *f = fopen(path, "re");
		if (!f)
			return 0;
		if (fscanf(f, "%*d (%63[^)]) %c", comm, &state) != 2)
			return 0;
		if (state != 'Z')
			break;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (state == 'Z')
		return log_error_errno(-EBUSY, "pid %d is still held by an unreaped zombie (%s); its parent has to "
				       "reap it before the restore", pid, comm);
	return log_error_errno(-EBUSY, "pid %d is in use by another process (%s); stop it or restore elsewhere "
			       "(--pidns is not supported yet)", pid, comm);
}

/* Child side: become the stub. Only async-signal-safe calls here. */
static void stub_child(const struct restore_opts *o, int sync_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Keep 0-2 and the fds named by --inherit-fd; close the rest at exec. */
	syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
	for (size_t i = 0; i < o->ninherit; i++)
		fcntl(o->inherit[i].our_fd, F_SETFD, 0);
	char *argv[] = { (char *)"stasis-stub", NULL }, *envp[] = { NULL };
	execve(o->stub_path, argv, envp);
	int e = errno;
	(void)!write(sync_fd, &e, sizeof(e));
	_exit(127);
}

static int spawn_stub(struct restore_ctx *c, const struct restore_opts *o)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t want = c->pid;
	struct clone_args_v2 a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)&want, .set_tid_size = 1 };
	long pid = sys_clone3(&a);
	if (pid == 0) {
		close(p[0]);
		stub_child(o, p[1]);
	}
	int e = errno;
	close(p[1]);
	c->spawned = pid > 0;
	if (pid < 0) {
		close(p[0]);
		if (e == EEXIST)
			return check_pid_free(c->pid) < 0 ? -EBUSY : -EAGAIN;
		return log_error_errno(-e, "cannot create a process with pid %d: %m", c->pid);
	}
	int err = 0;
	ssize_t n = read(p[0], &err, sizeof(err));
	close(p[0]);
	if (n > 0) {
		waitpid((pid_t)pid, NULL, 0);
		c->spawned = false;
		return log_error_errno(-err, "cannot start the restore stub %s: %m", o->stub_path);
	}
	return 0;
}

/* Brings the freshly seized stub to a syscall-exit stop, the state every
 * remote syscall starts from, and finds its syscall instruction. */
static int sync_stub(struct restore_ctx *c)
{
	struct user_regs_struct regs;
	int status, r;
	for (int i = 0; i < 16; i++) {
		if ((r = regs_get(c->pid, &regs)) < 0)
			return r;
		uint16_t insn = 0;
		if (remote_read(&c->rem, regs.rip - 2, &insn, 2) == 0 && insn == 0x050f) {
			c->rem.syscall_ip = regs.rip - 2;
			return 0;
		}
		if (ptrace(PTRACE_SYSCALL, c->pid, 0, 0) < 0)
			return -errno;
		if ((r = wait_stop(c->pid, &status)) < 0)
			return r;
		if (status_is_syscall_stop(status)) {
			/* Entry of the stub's pause(): skip it (orig_rax = -1) and
			 * go on to its exit stop, where remote calls start. */
			if ((r = regs_get(c->pid, &regs)) < 0)
				return r;
			regs.orig_rax = (uint64_t)-1;
			if ((r = regs_set(c->pid, &regs)) < 0)
				return r;
			if (ptrace(PTRACE_SYSCALL, c->pid, 0, 0) < 0)
				return -errno;
			if ((r = wait_stop(c->pid, &status)) < 0)
				return r;
		}
	}
	return -ETIMEDOUT;
}

static int start_stub(struct restore_ctx *c, const struct restore_opts *o)
{
	char path[64];
	int r;
	for (int tries = 0;; tries++) {
		if ((r = check_pid_free(c->pid)) < 0)
			return r;
		r = spawn_stub(c, o);
		if (r != -EAGAIN || tries > 3)
			break;
	}
	if (r < 0)
		return r;
	c->live = calloc(c->p.nthreads, sizeof(pid_t));
	if (!c->live)
		return -ENOMEM;
	if ((r = seize_thread(c->pid, SEIZE_OPTS_RESTORE)) < 0)
		return log_error_errno(r, "cannot seize the restore stub (pid %d): %m", c->pid);
	c->live[c->nlive++] = c->pid;
	snprintf(path, sizeof(path), "/proc/%d", c->pid);
	c->procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	c->rem.mem_fd = openat(c->procfd, "mem", O_RDWR | O_CLOEXEC);
	if (c->procfd < 0 || c->rem.mem_fd < 0)
		return log_error_errno(-errno, "cannot open /proc/%d: %m", c->pid);
	uint64_t all = ~0ULL;
	if (ptrace(PTRACE_SETSIGMASK, c->pid, sizeof(all), &all) < 0)
		return -errno;
	if ((r = sync_stub(c)) < 0)
		return log_error_errno(r, "the restore stub (pid %d) did not reach its wait loop: %m", c->pid);
	return 0;
}

static int map_scratch(struct restore_ctx *c)
{
	_cleanup_free_ char *buf = NULL;
	struct vma *cur;
	size_t len, n;
	uint64_t at;
	int r = proc_read(c->procfd, "maps", &buf, &len);
	if (r < 0 || (r = proc_parse_smaps(buf, len, &cur, &n)) < 0)
		return r;
	r = mm_find_gap(&c->p.mm, cur, n, SCRATCH_LEN, &at);
	vmas_free(cur, n);
	if (r < 0)
		return r;
	return remote_map_scratch(&c->rem, c->pid, at, true);
}

static int clone_threads(struct restore_ctx *c)
{
	const uint64_t flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	for (size_t i = 1; i < c->p.nthreads; i++) {
		pid_t tid = c->p.threads[i].tid;
		struct clone_args_v2 a = { .flags = flags, .stack = c->rem.scratch + SCRATCH_LEN - 65536,
					   .stack_size = 32768, .set_tid = c->rem.scratch + 12288, .set_tid_size = 1 };
		int status, r = remote_write(&c->rem, c->rem.scratch + 12288, &tid, sizeof(tid));
		if (r < 0 || (r = remote_write(&c->rem, c->rem.scratch + 8192, &a, sizeof(a))) < 0)
			return r;
		c->rem.new_tid = 0;
		long ret = remote_syscall(&c->rem, c->pid, SYS_clone3, c->rem.scratch + 8192, sizeof(a));
		if (ret < 0)
			return log_error_errno((int)ret, "pid %d: cannot create thread %d: %m%s", c->pid, tid,
					       ret == -EEXIST ? " (tid in use)" : "");
		/* The new thread is traced from birth and stops before running. */
		if ((r = wait_stop(tid, &status)) < 0)
			return log_error_errno(r, "thread %d did not stop after creation: %m", tid);
		c->live[c->nlive++] = tid;
		uint64_t all = ~0ULL;
		if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(all), &all) < 0)
			return -errno;
	}
	return 0;
}

static int restore_body(struct restore_ctx *c, const struct restore_opts *o)
{
	struct remote *r = &c->rem;
	pid_t pid = c->pid;
	int e;

	log_debug("pid %d: stub seized", pid);
	if ((e = map_scratch(c)) < 0)
		return log_error_errno(e, "pid %d: cannot map scratch memory: %m", pid);
	if ((e = mm_clear_stub(r, pid, &c->p.mm, c->procfd)) < 0 || (e = mm_restore_vmas(r, pid, &c->p.mm)) < 0 ||
	    (e = mm_restore_pages(r, pid, c->img, &c->p.mm)) < 0 || (e = inject_fail("restore:after-mm")) < 0 ||
	    (e = mm_restore_finish(r, pid, &c->p.mm)) < 0)
		return e;
	log_debug("pid %d: memory restored", pid);
	if ((e = files_restore(r, pid, c->img, &c->p.files, o->inherit, o->ninherit, c->procfd)) < 0 ||
	    (e = locks_restore(r, pid, &c->p.locks)) < 0 ||
	    (e = task_restore(r, pid, &c->p.task)) < 0 || (e = signals_restore(r, pid, &c->p.sig)) < 0 ||
	    (e = clone_threads(c)) < 0 || (e = timers_restore(r, pid, &c->p.timers)) < 0 ||
	    (e = inject_fail("restore:after-threads")) < 0)
		return e;
	for (size_t i = 0; i < c->p.nthreads; i++) {
		const struct thread_rec *t = &c->p.threads[i];
		if ((e = thread_restore_remote(r, t)) < 0 || (e = task_restore_nnp(r, t->tid, &c->p.task)) < 0 ||
		    (e = thread_restore_seccomp(r, t)) < 0 || (e = thread_restore_pending(r, pid, t)) < 0)
			return e;
	}
	if ((e = signals_restore_pending(r, pid, &c->p.sig)) < 0)
		return e;
	for (size_t i = 0; i < c->p.nthreads; i++)
		if ((e = creds_restore(r, c->p.threads[i].tid, &c->p.creds)) < 0)
			return e;
	if ((e = task_restore_pdeathsig(r, pid, &c->p.task)) < 0)
		return e;
	if ((e = remote_unmap_scratch(r, pid)) < 0)
		return log_error_errno(e, "pid %d: cannot remove scratch memory: %m", pid);
	for (size_t i = 0; i < c->p.nthreads; i++)
		if ((e = thread_restore_regs(&c->p.threads[i])) < 0)
			return e;
	return 0;
}

static void *verify_main(void *arg)
{
	struct restore_ctx *c = arg;
	char name[64];
	snprintf(name, sizeof(name), "pages-%d.img", c->pid);
	c->verify_result = image_verify_file(c->img, name);
	return NULL;
}

static int verify_start(struct restore_ctx *c)
{
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

static void kill_stub(struct restore_ctx *c)
{
	kill(c->pid, SIGKILL);
	/* Threads we trace must be reaped by us before the leader reports. */
	for (size_t i = 1; i < c->nlive; i++)
		waitpid(c->live[i], NULL, __WALL);
	waitpid(c->pid, NULL, __WALL);
}

int restore_process(const char *dir, const struct restore_opts *o, pid_t *ret_pid)
{
	struct restore_ctx c = { .procfd = -1, .rem = { .mem_fd = -1 } };
	/* The process opens its page file by path, after it may have left
	 * our cwd: give it an absolute one. */
	_cleanup_free_ char *abs = realpath(dir, NULL);
	int r = load_image(&c, abs ? abs : dir);
	if (r < 0)
		goto out;
	c.rem.pid = c.pid;
	if ((r = mm_check_restorable(&c.p.mm)) < 0 || (r = verify_start(&c)) < 0)
		goto out;
	if ((r = start_stub(&c, o)) < 0) {
		if (c.spawned)
			kill_stub(&c);
		goto out;
	}
	r = restore_body(&c, o);
	int v = verify_join(&c);
	if (r >= 0 && v < 0)
		r = v; /* damaged page data: never let the process run with it */
	if (r < 0) {
		kill_stub(&c);
		goto out;
	}
	for (size_t i = 0; i < c.nlive; i++)
		detach_thread(c.live[i]);
	*ret_pid = c.pid;
out:
	verify_join(&c);
	ctx_free(&c);
	return r;
}

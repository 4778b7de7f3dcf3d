/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Building the tree on restore (DESIGN.md §2.4): the root stub is started
 * by us under its pid (clone3 set_tid); every other process is forked by
 * its parent's stub with a remote clone3, so it is a real child of its
 * real parent. Sessions and groups are made as the processes are (a
 * leader first, then the processes that inherit or join its group), and
 * zombies are children that exit at once with their saved status. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "engine/clone-vm.h"
#include "engine/fdpass.h"
#include "engine/ipc.h"
#include "engine/restore-int.h"
#include "engine/seize.h"
#include "engine/share.h"
#include "engine/syscalls.h"
#include "engine/tty.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* A pid held by a zombie is freed once its parent reaps it; init here
 * reaps late (DESIGN.md §7), so wait a little for that. In a container,
 * whatever holds it was started by its runtime (our own helpers stay
 * above the image's pids), and --pidns is not for containers. */
int restore_check_pid_free(pid_t pid, bool container)
{
	char path[64];
	struct proc_stat st = { .comm = "?" };
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	/* Up to 5 s, from 1 ms doubling to 100 ms: a parent that reaps at
	 * once costs a millisecond, not a tenth of a second. */
	uint64_t end = now_ns() + 5000000000ull;
	for (long ns = 1000000;; ns = ns < 50000000 ? ns * 2 : 100000000) {
		_cleanup_free_ char *buf = NULL;
		size_t len;
		if (proc_read(AT_FDCWD, path, &buf, &len) < 0 || proc_parse_stat(buf, len, &st) < 0)
			return 0; /* gone */
		if (st.state != 'Z' || now_ns() > end)
			break;
		nanosleep(&(struct timespec){ 0, ns }, NULL);
	}
	if (st.state == 'Z')
		return log_error_errno(-EBUSY, "pid %d is still held by an unreaped zombie (%s); its parent has to "
				       "reap it before the restore", pid, st.comm);
	if (container)
		return log_error_errno(-EBUSY, "pid %d, which the image needs, is held in the new container by '%s' "
				       "(child of pid %d), which its runtime started", pid, st.comm, st.ppid);
	return log_error_errno(-EBUSY, "pid %d is in use by another process (%s); stop it, or restore with "
			       "--pidns into a new pid namespace", pid, st.comm);
}

/* The root stub is started as soon as its pid is known (tree_spawn_root)
 * and runs its execve while we read the image's records; start_root
 * waits for it. One restore at a time per process: static. */
static struct stub_start {
	const char *path;
	int tfd, sync_fd; /* the transport; the pipe's write end (CLOEXEC) */
	uint64_t mask;    /* our signal mask before the clone: the stub's */
	char stack[16384] __attribute__((aligned(16)));
} S;

/* Child side: become the stub. It runs in our memory, alongside us,
 * until its execve (clone3_vm): raw system calls only. */
static void stub_child(void *arg)
{
	struct stub_start *s = arg;
	raw_syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0);
	/* Every signal at its default action, as a new process has it: an
	 * ignored one (SIGHUP under nohup, SIGQUIT and SIGINT in a shell's
	 * background job) would survive the exec and, since the restore
	 * sets only the handlers that are not the default, end up in the
	 * restored tree and in the signal a zombie is made to die of. */
	struct k_sigaction dfl = { 0 }; /* SIG_DFL */
	for (int sig = 1; sig < NSIG; sig++)
		raw_syscall(SYS_rt_sigaction, sig, (long)&dfl, 0, 8); /* SIGKILL, SIGSTOP: EINVAL, fine */
	/* Nothing of ours but the transport: every fd the process gets, its
	 * external ones included, comes through it. The pipe closes at the
	 * execve, which tells us it is done. */
	int sync_fd = (int)raw_syscall(SYS_fcntl, s->sync_fd, F_DUPFD_CLOEXEC, FDPASS_STUB_FD + 1, 0);
	long e = raw_syscall(SYS_dup2, s->tfd, FDPASS_STUB_FD, 0, 0);
	if (e >= 0) {
		raw_syscall(SYS_close_range, 0, FDPASS_STUB_FD - 1, 0, 0);
		raw_syscall(SYS_close_range, FDPASS_STUB_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC, 0);
		raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&s->mask, 0, 8);
		char *argv[] = { (char *)"stasis-stub", NULL }, *envp[] = { NULL };
		e = raw_syscall(SYS_execve, (long)s->path, (long)argv, (long)envp, 0);
	}
	int err = (int)-e;
	raw_syscall(SYS_write, sync_fd, (long)&err, sizeof(err), 0);
	raw_syscall(SYS_exit, 127, 0, 0, 0);
}

static int spawn_root(struct restore_ctx *c, const struct restore_opts *o)
{
	int p[2];
	sigset_t all, old;
	pid_t want = c->procs[0].node->pid;
	struct clone_args_v2 a = { .flags = ipc_image_owns_ns(c->img) ? CLONE_NEWIPC : 0, .exit_signal = SIGCHLD,
				   .set_tid = (uint64_t)&want, .set_tid_size = 1 };
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	S.path = o->stub_path, S.tfd = c->stub_tfd, S.sync_fd = p[1];
	/* No handler of ours may run in the child before it resets them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	memcpy(&S.mask, &old, sizeof(S.mask));
	long pid = clone3_vm(&a, S.stack, sizeof(S.stack), stub_child, &S);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		if (pid == -EEXIST)
			return restore_check_pid_free(want, false) < 0 ? -EBUSY : -EAGAIN;
		return log_error_errno((int)pid, "cannot create a process with pid %d: %m", want);
	}
	c->root_sync = p[0];
	return 0;
}

int tree_spawn_root(struct restore_ctx *c, const struct restore_opts *o)
{
	pid_t pid = c->procs[0].node->pid;
	int r;
	for (int tries = 0;; tries++) {
		if ((r = restore_check_pid_free(pid, false)) < 0)
			return r;
		r = spawn_root(c, o);
		if (r != -EAGAIN || tries > 3)
			return r;
	}
}

/* The root stub's execve is done (or failed: it has exited). */
static int wait_root(struct restore_ctx *c, const struct restore_opts *o)
{
	pid_t pid = c->procs[0].node->pid;
	int err = 0;
	ssize_t n;
	while ((n = read(c->root_sync, &err, sizeof(err))) < 0 && errno == EINTR)
		;
	close(c->root_sync);
	c->root_sync = -1;
	if (n != 0) {
		waitpid(pid, NULL, 0);
		return log_error_errno(n > 0 ? -err : -EIO, "cannot start the restore stub %s: %m", o->stub_path);
	}
	return 0;
}

void tree_unspawn_root(struct restore_ctx *c)
{
	if (c->root_sync < 0)
		return;
	kill(c->procs[0].node->pid, SIGKILL);
	waitpid(c->procs[0].node->pid, NULL, 0);
	close(c->root_sync);
	c->root_sync = -1;
}

/* Brings the freshly seized stub to a syscall-exit stop, the state every
 * remote syscall starts from, and finds its syscall instruction. */
static int sync_stub(struct rproc *p)
{
	struct user_regs_struct regs;
	pid_t pid = p->node->pid;
	int status, r;
	for (int i = 0; i < 16; i++) {
		if ((r = regs_get(pid, &regs)) < 0)
			return r;
		uint16_t insn = 0;
		if (remote_read(&p->rem, regs.rip - 2, &insn, 2) == 0 && insn == 0x050f) {
			p->rem.syscall_ip = regs.rip - 2;
			return 0;
		}
		if (ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0)
			return -errno;
		if ((r = wait_stop(pid, &status)) < 0)
			return r;
		if (status_is_syscall_stop(status)) {
			/* Entry of the stub's pause(): skip it (orig_rax = -1) and
			 * go on to its exit stop, where remote calls start. */
			if ((r = regs_get(pid, &regs)) < 0)
				return r;
			regs.orig_rax = (uint64_t)-1;
			if ((r = regs_set(pid, &regs)) < 0)
				return r;
			if (ptrace(PTRACE_SYSCALL, pid, 0, 0) < 0)
				return -errno;
			if ((r = wait_stop(pid, &status)) < 0)
				return r;
		}
	}
	return -ETIMEDOUT;
}

/* Opens /proc/PID and the handles every later step uses. */
static int rproc_open(struct rproc *p)
{
	char path[64];
	pid_t pid = p->node->pid;
	if (!p->live) {
		p->live = calloc(p->node->ntids + 1, sizeof(pid_t));
		if (!p->live)
			return -ENOMEM;
		p->live[p->nlive++] = pid;
	}
	snprintf(path, sizeof(path), "/proc/%d", pid);
	p->procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	p->rem.mem_fd = p->procfd < 0 ? -1 : openat(p->procfd, "mem", O_RDWR | O_CLOEXEC);
	p->pidfd = sys_pidfd_open(pid, 0);
	p->rem.pid = pid;
	if (p->procfd < 0 || p->rem.mem_fd < 0 || p->pidfd < 0)
		return log_error_errno(-errno, "cannot open /proc/%d: %m", pid);
	return 0;
}

int rproc_map_scratch(struct rproc *p)
{
	_cleanup_free_ char *buf = NULL;
	struct vma *cur;
	size_t len, n;
	uint64_t at;
	int r = proc_read(p->procfd, "maps", &buf, &len);
	if (r < 0 || (r = proc_parse_smaps(buf, len, &cur, &n)) < 0)
		return r;
	r = mm_find_gap(&p->p.mm, cur, n, SCRATCH_LEN, &at);
	vmas_free(cur, n);
	if (r < 0)
		return r;
	return remote_map_scratch(&p->rem, p->node->pid, at, true);
}

static int start_root(struct restore_ctx *c, const struct restore_opts *o)
{
	struct rproc *p = &c->procs[0];
	pid_t pid = p->node->pid;
	int r;
	if (o->adopt) {
		if ((r = rproc_open(p)) < 0)
			return r;
		goto seize;
	}
	if (c->root_sync < 0 && (r = tree_spawn_root(c, o)) < 0)
		return r;
	if ((r = wait_root(c, o)) < 0)
		return r;
	/* Counted as live before the seize: a failure must still kill it. */
	if ((r = rproc_open(p)) < 0)
		return r;
seize:
	if ((r = seize_thread(pid, SEIZE_OPTS_RESTORE)) < 0)
		return log_error_errno(r, "cannot seize the restore stub (pid %d): %m", pid);
	uint64_t all = ~0ULL;
	if (ptrace(PTRACE_SETSIGMASK, pid, sizeof(all), &all) < 0)
		return -errno;
	if ((r = sync_stub(p)) < 0)
		return log_error_errno(r, "the restore stub (pid %d) did not reach its wait loop: %m", pid);
	return 0;
}

/* The parent's stub forks the child under its pid; we trace it from
 * birth (PTRACE_O_TRACEFORK), and it starts as a copy of the stub with
 * the parent's scratch, which it replaces by its own. A child sharing a
 * table or fs info with a sibling instead is made by that sibling's stub
 * with CLONE_PARENT (share.h): maker is then the sibling. */
static int fork_child(struct restore_ctx *c, struct rproc *maker, struct rproc *p)
{
	struct remote *r = &maker->rem;
	pid_t pid = p->node->pid, ppid = maker->node->pid;
	int status, e;
	long ret = restore_clone(r, ppid, share_clone_flags(p->node), 0, 0, pid);
	if (ret == -EEXIST) {
		e = restore_check_pid_free(pid, c->adopted);
		return e < 0 ? e : log_error_errno(-EAGAIN, "pid %d was taken while the tree was made; try again", pid);
	}
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot fork pid %d: %m", ppid, pid);
	/* It exists: a failure from here on must kill it too. */
	p->live = calloc(p->node->ntids + 1, sizeof(pid_t));
	if (!p->live) {
		kill(pid, SIGKILL);
		return -ENOMEM;
	}
	p->live[p->nlive++] = pid;
	if ((e = wait_stop(pid, &status)) < 0)
		return log_error_errno(e, "pid %d did not stop after its creation: %m", pid);
	p->rem = (struct remote){ .syscall_ip = r->syscall_ip, .scratch = r->scratch, .scratch_len = r->scratch_len };
	uint64_t all = ~0ULL;
	if ((e = rproc_open(p)) < 0)
		return e;
	if (ptrace(PTRACE_SETSIGMASK, pid, sizeof(all), &all) < 0)
		return -errno;
	/* A child with its parent's memory (CLONE_VM) uses its scratch too. */
	if (!p->node->zombie && !(p->node->share & SHARE_VM) && (e = rproc_map_scratch(p)) < 0)
		return log_error_errno(e, "pid %d: cannot map scratch memory: %m", pid);
	return 0;
}

/* A leader makes its session or group before it forks anyone. */
static int lead(struct rproc *p)
{
	const struct tree_node *n = p->node;
	long ret = 0;
	/* A container's first process leads its session already. */
	if (n->sid == n->pid && remote_syscall(&p->rem, n->pid, SYS_getsid, 0) == n->pid)
		return 0;
	if (n->sid == n->pid)
		ret = remote_syscall(&p->rem, n->pid, SYS_setsid, 0);
	else if (n->pgid == n->pid)
		ret = remote_syscall(&p->rem, n->pid, SYS_setpgid, 0, 0);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot make its %s: %m", n->pid,
				       n->sid == n->pid ? "session" : "process group");
	return 0;
}

/* A session leader takes its terminal before it forks: a child copies
 * its parent's controlling terminal at fork, never later. */
static int lead_tty(struct restore_ctx *c, struct rproc *p)
{
	const struct tree_node *n = p->node;
	return n->sid == n->pid && !n->zombie ? tty_restore_ctty(&c->files, &p->rem, n->pid) : 0;
}

/* Joins a group led by another process (which exists by now). */
static int join(struct restore_ctx *c, struct rproc *p)
{
	const struct tree_node *n = p->node;
	if (n->sid == n->pid || n->pgid == n->pid || !tree_find(&c->tree, n->pgid))
		return 0;
	long ret = remote_syscall(&p->rem, n->pid, SYS_setpgid, 0, n->pgid);
	if (ret < 0)
		return log_error_errno((int)ret, "pid %d: cannot join process group %d: %m", n->pid, n->pgid);
	return 0;
}

/* A zombie's exit queued SIGCHLD at its parent (blocked while we work),
 * which the parent has seen long ago in the original. */
static void drain_sigchld(struct rproc *parent)
{
	uint64_t set = 1ULL << (SIGCHLD - 1);
	struct timespec zero = { 0, 0 };
	struct remote *r = &parent->rem;
	if (remote_write(r, r->scratch + 8192, &set, sizeof(set)) < 0 ||
	    remote_write(r, r->scratch + 8200, &zero, sizeof(zero)) < 0)
		return;
	remote_syscall(r, parent->node->pid, SYS_rt_sigtimedwait, r->scratch + 8192, 0, r->scratch + 8200, 8);
}

static struct rproc *find_rproc(struct restore_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->procs[i].node->pid == pid)
			return &c->procs[i];
	return NULL;
}

/* A stub started by a runtime that cannot hand it an fd (Docker): it makes
 * a socket on FDPASS_STUB_FD and connects to our listener, an abstract
 * unix socket in its network namespace, which we share. */
static int connect_transport(struct restore_ctx *c)
{
	struct rproc *p = &c->procs[0];
	struct remote *r = &p->rem;
	pid_t pid = p->node->pid;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "stasis-%d-%llx", getpid(),
			 (unsigned long long)now_ns());
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	_cleanup_close_ int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, len) < 0 || listen(lfd, 1) < 0)
		return log_error_errno(-errno, "cannot listen for the container's stub: %m");
	long fd = remote_syscall(r, pid, SYS_socket, AF_UNIX, SOCK_SEQPACKET, 0);
	if (fd >= 0 && fd != FDPASS_STUB_FD) {
		long d = remote_syscall(r, pid, SYS_dup3, fd, FDPASS_STUB_FD, 0);
		remote_syscall(r, pid, SYS_close, fd);
		fd = d;
	}
	int e = fd < 0 ? (int)fd : remote_write(r, r->scratch + 8192, &a, len);
	long ret = e < 0 ? e : remote_syscall(r, pid, SYS_connect, FDPASS_STUB_FD, r->scratch + 8192, len);
	if (ret < 0)
		return log_error_errno((int)ret, "the container's stub cannot connect to us: %m");
	c->files.ctl = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return c->files.ctl < 0 ? log_error_errno(-errno, "cannot accept the container's stub: %m") : 0;
}

int tree_create(struct restore_ctx *c, const struct restore_opts *o)
{
	int e = start_root(c, o);
	if (e < 0)
		return e;
	log_debug("restore stub running as pid %d", c->procs[0].node->pid);
	if ((e = rproc_map_scratch(&c->procs[0])) < 0)
		return log_error_errno(e, "pid %d: cannot map scratch memory: %m", c->procs[0].node->pid);
	if (o->adopt && c->files.ctl < 0 && (e = connect_transport(c)) < 0)
		return e;
	/* Before anyone forks from the root: they are born into its IPC namespace. */
	if ((e = ipc_restore(c->img, c->procs[0].node->pid)) < 0 || (e = lead(&c->procs[0])) < 0 ||
	    (e = lead_tty(c, &c->procs[0])) < 0 || (e = restore_mm(c, &c->procs[0], NULL, NULL)) < 0)
		return e;
	for (size_t i = 1; i < c->n; i++) {
		struct rproc *p = &c->procs[i], *parent = find_rproc(c, p->node->ppid);
		/* Its maker's memory complete before it forks anyone: children
		 * inherit it (and its executable). A process without children
		 * gets its pages meanwhile (restore_all finishes it). The maker
		 * is its parent, or the sibling it shares a table with. */
		struct rproc *maker = find_rproc(c, share_maker(p->node));
		if ((e = restore_mm_done(c, maker)) < 0 || (e = fork_child(c, maker, p)) < 0 || (e = lead(p)) < 0 ||
		    (e = lead_tty(c, p)) < 0)
			return e;
		/* One with its parent's memory (CLONE_VM) has it already. */
		if (!p->node->zombie && !(p->node->share & SHARE_VM) && (e = restore_mm(c, p, parent, maker)) < 0)
			return e;
	}
	for (size_t i = 0; i < c->n; i++)
		if ((e = join(c, &c->procs[i])) < 0)
			return e;
	/* A foreground group must exist before it is made one. */
	for (size_t i = 0; i < c->n; i++) {
		const struct tree_node *n = c->procs[i].node;
		if (n->sid == n->pid && !n->zombie && (e = tty_restore_fg(&c->files, &c->procs[i].rem, n->pid)) < 0)
			return e;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (!c->procs[i].node->zombie)
			continue;
		if ((e = zombie_make(c, &c->procs[i])) < 0)
			return e;
		drain_sigchld(find_rproc(c, c->procs[i].node->ppid));
	}
	return 0;
}

/* The zombies we made stay for their parents to reap; with the parents
 * killed they would go to init, which reaps late here (DESIGN.md §7) and
 * so holds their pids. As a subreaper for the moment (our tree is below
 * us unless a runtime started it), we are who they go to. So do the
 * killed processes that a thread other than their new parent traced (a
 * driver, restore-drivers.h): its wait left them zombies for their
 * parent, which we are once their stub parent is gone. */
static void reap_zombies(const struct restore_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (!c->procs[i].exited && !c->procs[i].nlive)
			continue;
		for (int k = 0; k < 100 && waitpid(c->procs[i].node->pid, NULL, __WALL | WNOHANG) == 0; k++) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
}

void tree_kill(struct restore_ctx *c)
{
	int was = 0;
	bool mine = !c->adopted && prctl(PR_GET_CHILD_SUBREAPER, &was) == 0 &&
		    (was || prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	/* An adopted stub is its pid namespace's init, which no signal from
	 * inside can kill: PTRACE_O_EXITKILL ends it when we exit, and its
	 * runtime removes the container. */
	if (c->adopted && c->n)
		c->procs[0].nlive = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->procs[i].nlive && !c->procs[i].exited)
			kill(c->procs[i].node->pid, SIGKILL);
	/* Threads we trace must be reaped by us before their leader reports. */
	for (size_t i = c->n; i-- > 0;) {
		struct rproc *p = &c->procs[i];
		for (size_t k = p->exited ? p->nlive : 1; k < p->nlive; k++)
			waitpid(p->live[k], NULL, __WALL);
		if (p->nlive && !p->exited)
			waitpid(p->live[0], NULL, __WALL);
	}
	if (mine)
		reap_zombies(c);
	if (mine && !was)
		prctl(PR_SET_CHILD_SUBREAPER, 0);
}

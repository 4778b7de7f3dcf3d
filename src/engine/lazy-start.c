/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lazy filler's start and end, the restoring command's side (lazy.h).
 *
 * The filler is our own binary executed again (LAZY_FILLER_ARG), started
 * by clone3_vm: a fork would cost the command a copy-on-write fault at
 * its next write to each page it had (~0.1 ms each here, DESIGN.md §7),
 * all on the way to the tree running. It gets the socket as fd 3, the
 * shared statistics (a memfd) as fd 4 and our log file as fd 5. A CLOEXEC
 * pipe tells us that its execve is done (or its errno): lazy_go waits for
 * that, so the tree never runs without a filler. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/clone-vm.h"
#include "engine/lazy.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/util.h"

extern char **environ;

enum { FD_SOCK = 3, FD_STATS = 4, FD_LOG = 5, FD_SYNC = 6 };

static pid_t filler_pid;
static int filler_sync = -1;

/* What the child needs while it shares our memory: static. */
static struct filler_start {
	int sock, stats, log, sync;
	uint64_t mask;
	char level[16];
	char *argv[5];
	char stack[16384] __attribute__((aligned(16)));
} FS;

/* fd to want: through a number above every one of ours, so that moving
 * one never overwrites another still to be moved. */
static long move_fd(int fd, int want, int flags)
{
	return fd < 0 ? raw_syscall(SYS_close, want, 0, 0, 0) : raw_syscall(SYS_dup3, fd, want, flags, 0);
}

/* Child side, in our memory until its execve: raw system calls only. */
static void filler_child(void *arg)
{
	struct filler_start *s = arg;
	long e = 0, null = raw_syscall(SYS_open, (long)"/dev/null", O_RDWR | O_CLOEXEC, 0, 0);
	int hi[4] = { s->sock, s->stats, s->log, s->sync }, sync = s->sync; /* where to say why it failed */
	for (int i = 0; i < 4 && e >= 0; i++)
		if (hi[i] >= 0 && (e = hi[i] = (int)raw_syscall(SYS_fcntl, hi[i], F_DUPFD_CLOEXEC, 64, 0)) < 0)
			break;
	if (e >= 0)
		sync = hi[3];
	/* Nobody waits for its output: a caller reading ours to the end
	 * must not wait for the fill. Messages: lazy_fill_main. */
	for (int fd = 0; fd < 3 && e >= 0 && null >= 0; fd++)
		e = raw_syscall(SYS_dup2, null, fd, 0, 0);
	if (e >= 0 && (e = move_fd(hi[0], FD_SOCK, 0)) >= 0 && (e = move_fd(hi[1], FD_STATS, 0)) >= 0 &&
	    (e = move_fd(hi[2], FD_LOG, 0)) >= 0 && (e = move_fd(hi[3], FD_SYNC, O_CLOEXEC)) >= 0) {
		sync = FD_SYNC;
		raw_syscall(SYS_close_range, FD_SYNC + 1, ~0U, 0, 0);
		raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&s->mask, 0, 8);
		e = raw_syscall(SYS_execve, (long)"/proc/self/exe", (long)s->argv, (long)environ, 0);
	}
	int err = (int)-e;
	raw_syscall(SYS_write, sync, (long)&err, sizeof(err), 0);
	raw_syscall(SYS_exit, 127, 0, 0, 0);
}

/* The statistics the filler reports to, on a memfd it maps too. */
static int share_stats(struct restore_opts *o)
{
	int fd = memfd_create("stasis-stats", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, sizeof(*o->stats)) < 0) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return e;
	}
	void *p = mmap(NULL, sizeof(*o->stats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	memcpy(p, o->stats, sizeof(*o->stats));
	stats_free(o->stats, sizeof(*o->stats));
	o->stats = p;
	return fd;
}

static int spawn_filler(int sock, int stats)
{
	int p[2];
	sigset_t all, old;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	FS = (struct filler_start){ .sock = sock, .stats = stats, .log = log_file_fd(), .sync = p[1] };
	snprintf(FS.level, sizeof(FS.level), "%d", log_get_level());
	FS.argv[0] = (char *)"stasis", FS.argv[1] = (char *)LAZY_FILLER_ARG, FS.argv[2] = FS.level;
	FS.argv[3] = (char *)(FS.log >= 0 ? "log" : "-");
	struct clone_args_v2 a = { .exit_signal = SIGCHLD };
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	memcpy(&FS.mask, &old, sizeof(FS.mask));
	long pid = clone3_vm(&a, FS.stack, sizeof(FS.stack), filler_child, &FS);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return (int)pid;
	}
	filler_pid = (pid_t)pid;
	filler_sync = p[0];
	return 0;
}

int lazy_start(struct restore_opts *o)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return log_error_errno(-errno, "cannot make the lazy filler's socket: %m");
	int stats = share_stats(o), e = stats;
	if (stats >= 0) {
		e = spawn_filler(sv[1], stats);
		close(stats);
	}
	close(sv[1]);
	if (e < 0) {
		close(sv[0]);
		return log_error_errno(e, "cannot start the lazy filler: %m");
	}
	o->lazy_sock = sv[0];
	o->stats->lazy_state = LAZY_FILLING;
	return 0;
}

/* Its execve is done: it holds the other end of the socket. */
static int filler_started(void)
{
	int err = 0;
	ssize_t n;
	if (filler_sync < 0)
		return 0;
	while ((n = read(filler_sync, &err, sizeof(err))) < 0 && errno == EINTR)
		;
	close(filler_sync);
	filler_sync = -1;
	if (n == 0)
		return 0;
	return log_error_errno(n > 0 ? -err : -EIO, "cannot start the lazy filler (stasis executed again): %m");
}

int lazy_go(int sock)
{
	struct lazy_msg msg = { .kind = LAZY_GO };
	int e = filler_started();
	if (e < 0)
		return e;
	return send(sock, &msg, sizeof(msg), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int wait_filler(struct restore_stats *st)
{
	uint64_t shown = 0;
	int status = 0;
	st->attached = 1;
	progress_start("filling memory", st->lazy_bytes);
	for (;;) {
		pid_t w = waitpid(filler_pid, &status, WNOHANG);
		if (w == filler_pid || (w < 0 && errno != EINTR))
			break;
		uint64_t d = __atomic_load_n(&st->lazy_done, __ATOMIC_RELAXED);
		progress_add(d - shown);
		shown = d;
		usleep(20000);
	}
	progress_end();
	filler_pid = 0;
	if (st->lazy_state == LAZY_FAILED)
		return log_error_errno(-EBADMSG, "%s", st->msg);
	if (st->lazy_state != LAZY_DONE)
		return log_error_errno(-EIO, "the lazy filler ended before every page was in (status %d); the "
				       "restored processes were killed if it found damage", status);
	return 0;
}

int lazy_finish(struct restore_opts *o, bool ok)
{
	if (!o->lazy || o->lazy_sock < 0)
		return 0;
	close(o->lazy_sock);
	o->lazy_sock = -1;
	if (filler_sync >= 0) { /* the restore failed before lazy_go */
		close(filler_sync);
		filler_sync = -1;
	}
	if (!ok || !o->wait_lazy) {
		if (!ok) /* it quits at the end of its socket */
			waitpid(filler_pid, NULL, 0);
		if (!ok && o->stats->lazy_state == LAZY_FAILED)
			log_error("%s", o->stats->msg);
		return 0;
	}
	return wait_filler(o->stats);
}

/* The filler's side of its start: our binary executed again. */
int lazy_filler_exec_main(int level, bool log)
{
	log_set_level(level);
	if (log && log_open_fd(FD_LOG) < 0)
		close(FD_LOG);
	struct restore_stats *st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, FD_STATS, 0);
	close(FD_STATS);
	if (st == MAP_FAILED)
		return 1;
	prctl(PR_SET_NAME, "stasis-filler", 0, 0, 0);
	lazy_fill_main(FD_SOCK, st);
}

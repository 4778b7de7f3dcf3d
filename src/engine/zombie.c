/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Zombies on restore: a child forked by its parent's stub ends the way
 * the original ended, so that its parent reaps the same wait status. By
 * exit_group(code); or killed by its signal, sent by us through its
 * pidfd (SIGKILL included: the stub has no say in it).
 *
 * The core bit of a status (WCOREDUMP, 0x80) is set by the kernel only
 * when it actually wrote a core (coredump.c: the bit follows a dump that
 * succeeded; RLIMIT_CORE below one page writes nothing and sets nothing).
 * So a zombie that had the bit dumps a small core again: into a private
 * directory of ours made its cwd (core_pattern relative), capped by
 * RLIMIT_CORE, and removed at once. With a core_pattern that pipes to a
 * helper or writes elsewhere that would leave traces outside the restore:
 * the bit is then lost, with a warning. A zombie without the bit is made
 * undumpable, so no core is written for it whatever the pattern. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/fdpass.h"
#include "engine/proc.h"
#include "engine/restore-int.h"
#include "engine/syscalls.h"
#include "engine/zombie.h"
#include "util/cleanup.h"
#include "util/log.h"

#define ZOMBIE_ARG 12288 /* in the scratch, above what fdpass uses */
#define CORE_LIMIT (64u << 10)

/* Its name is what its parent's ps shows; it never ran as itself. */
static int set_name(struct rproc *p)
{
	int e = remote_write(&p->rem, p->rem.scratch + ZOMBIE_ARG, p->node->comm, sizeof(p->node->comm));
	if (e >= 0)
		remote_syscall(&p->rem, p->node->pid, SYS_prctl, PR_SET_NAME, p->rem.scratch + ZOMBIE_ARG, 0, 0, 0);
	return e;
}

static long set_core_limit(struct rproc *p, rlim_t limit)
{
	struct rlimit l = { limit, limit };
	int e = remote_write(&p->rem, p->rem.scratch + ZOMBIE_ARG, &l, sizeof(l));
	if (e < 0)
		return e;
	return remote_syscall(&p->rem, p->node->pid, SYS_prlimit64, 0, RLIMIT_CORE, p->rem.scratch + ZOMBIE_ARG, 0);
}

/* A core written by the kernel lands in the dying process's cwd only for
 * a pattern without a directory and not piped to a helper. */
bool zombie_core_bit_kept(void)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (proc_read(AT_FDCWD, "/proc/sys/kernel/core_pattern", &buf, &len) < 0 || len == 0)
		return false;
	return buf[0] != '|' && !memchr(buf, '/', len);
}

/* Removes what the kernel wrote into our directory, and the directory. */
static void core_dir_remove(int dfd, const char *path)
{
	int d = dup(dfd);
	DIR *dir = d < 0 ? NULL : fdopendir(d);
	struct dirent *de;
	while (dir && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, 0);
	if (dir)
		closedir(dir);
	else if (d >= 0)
		close(d);
	if (rmdir(path) < 0)
		log_warn("cannot remove %s, where a restored zombie dumped its core: %m", path);
}

/* Makes our directory the zombie's cwd and lets it dump a small core. */
static int core_setup(struct restore_ctx *c, struct rproc *p, int dfd)
{
	pid_t pid = p->node->pid;
	long fd = fdpass_push(&p->rem, pid, c->files.ctl, FDPASS_STUB_FD, dfd), ret;
	if (fd < 0)
		return (int)fd;
	ret = remote_syscall(&p->rem, pid, SYS_fchdir, fd);
	remote_syscall(&p->rem, pid, SYS_close, fd);
	if (ret >= 0)
		ret = set_core_limit(p, CORE_LIMIT);
	if (ret >= 0)
		ret = remote_syscall(&p->rem, pid, SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
	return ret < 0 ? (int)ret : 0;
}

/* Sends sig and lets it take its course; *ret_status: how it died. */
static int die_by_signal(struct rproc *p, int sig, int *ret_status)
{
	pid_t pid = p->node->pid;
	uint64_t mask = ~0ULL & ~(1ULL << (sig - 1));
	int status, cont = 0;
	if (ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), &mask) < 0 || sys_pidfd_send_signal(p->pidfd, sig) < 0)
		return -errno;
	for (int i = 0; i < 16; i++) {
		/* ESRCH: dying already (SIGKILL), not in a stop any more. */
		if (ptrace(PTRACE_CONT, pid, 0, cont) < 0 && errno != ESRCH)
			return -errno;
		pid_t w;
		while ((w = waitpid(pid, &status, __WALL)) < 0 && errno == EINTR)
			;
		if (w < 0)
			return -errno;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			*ret_status = status;
			return WIFSIGNALED(status) && WTERMSIG(status) == sig ? 0 : -EPROTO;
		}
		/* A signal-delivery stop passes its signal on; events pass. */
		cont = WIFSTOPPED(status) && !(status >> 16) ? WSTOPSIG(status) : 0;
	}
	return -ETIMEDOUT;
}

/* With the core bit when it had it and the kernel lets us set it here. */
static int kill_zombie(struct restore_ctx *c, struct rproc *p, int want)
{
	pid_t pid = p->node->pid;
	char dir[] = "/tmp/stasis-core-XXXXXX";
	_cleanup_close_ int dfd = -1;
	int status = 0, e = 0;
	if (WCOREDUMP(want) && !zombie_core_bit_kept())
		log_warn("zombie %d: its status loses the core-dump bit: the kernel sets it only for a core it "
			 "writes, and core_pattern sends cores outside the restore", pid);
	else if (WCOREDUMP(want) && (!mkdtemp(dir) || (dfd = open(dir, O_DIRECTORY | O_CLOEXEC)) < 0))
		return log_error_errno(-errno, "zombie %d: cannot make a directory for its core: %m", pid);
	if (dfd >= 0 && (e = core_setup(c, p, dfd)) < 0)
		log_warn_errno(e, "zombie %d: its status loses the core-dump bit: cannot let it dump a core: %m", pid);
	if (dfd < 0 || e < 0) {
		set_core_limit(p, 0);
		remote_syscall(&p->rem, pid, SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
	}
	e = die_by_signal(p, WTERMSIG(want), &status);
	if (dfd >= 0)
		core_dir_remove(dfd, dir);
	p->exited = e == 0 || e == -EPROTO; /* reaped by us, its tracer, either way */
	if (e < 0)
		return e == -EPROTO ? log_error_errno(e, "zombie %d did not die by signal %d but with status %#x", pid,
						      WTERMSIG(want), status)
				    : log_error_errno(e, "zombie %d did not die by signal %d: %m", pid, WTERMSIG(want));
	if (WIFSIGNALED(status) && WCOREDUMP(want) && !WCOREDUMP(status) && dfd >= 0)
		log_warn("zombie %d: its status lost the core-dump bit: the kernel wrote no core for it", pid);
	return 0;
}

int zombie_make(struct restore_ctx *c, struct rproc *p)
{
	pid_t pid = p->node->pid;
	int want = p->node->exit_status, e;
	if ((e = set_name(p)) < 0)
		return log_error_errno(e, "zombie %d: cannot name it: %m", pid);
	if (WIFSIGNALED(want))
		return kill_zombie(c, p, want);
	long ret = remote_syscall(&p->rem, pid, SYS_exit_group, WEXITSTATUS(want));
	if (ret != -ESRCH)
		return log_error_errno(-EIO, "zombie %d did not exit", pid);
	p->exited = true; /* and reported to us, its tracer, on the way */
	return 0;
}

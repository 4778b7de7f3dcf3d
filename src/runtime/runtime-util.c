/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/syscalls.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_OUTPUT (64u << 20)

int rt_run(char *const argv[], char **ret_out)
{
	int out[2];
	/* stderr goes to a memfd, read after the exit: reading two pipes one
	 * after the other could block on a full one. */
	_cleanup_close_ int err = memfd_create("rt-run-stderr", MFD_CLOEXEC);
	if (err < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	int fork_errno = errno;
	close(out[1]);
	_cleanup_free_ char *o = NULL, *e = NULL;
	int r1 = pid < 0 ? 0 : read_fd_capped(out[0], MAX_OUTPUT, &o, NULL), status = 0;
	close(out[0]);
	if (pid < 0)
		return -fork_errno;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int r2 = lseek(err, 0, SEEK_SET) < 0 ? -errno : read_fd_capped(err, MAX_OUTPUT, &e, NULL);
	if (r1 < 0 || r2 < 0)
		return r1 < 0 ? r1 : r2;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		size_t l = strlen(e);
		while (l && (e[l - 1] == '\n' || e[l - 1] == ' '))
			e[--l] = 0;
		log_error("%s failed: %s", argv[0], *e ? e : "no message");
		return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT : -EIO;
	}
	if (ret_out)
		*ret_out = TAKE_PTR(o);
	return 0;
}

static int join(pid_t pid, const char *ns, int type)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, type) < 0)
		return log_error_errno(-errno, "cannot join the %s namespace of pid %d: %m", ns, pid);
	return 0;
}

int rt_wait(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) ? -EIO : 0;
	return -EINTR;
}

/* The next pids the kernel hands out in our pid namespace come after
 * ours: a pid given by clone3's set_tid does not move the kernel's cursor
 * (the restored tree's pids do not either), so without this our threads
 * (the page verifier) would take the lowest free pids, which the image may
 * need. ns_last_pid acts on the writer's own pid namespace. */
static int pids_after_us(void)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", getpid());
	_cleanup_close_ int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return -errno;
	return 0;
}

/* In the inner child: our own view of the container's pids, then fn. */
static int run_inner(pid_t above, int (*fn)(void *), void *arg)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return log_error_errno(-errno, "cannot mount /proc for the container's pid namespace: %m");
	int r = above ? pids_after_us() : 0;
	if (r < 0)
		return log_error_errno(r, "cannot set ns_last_pid in the container's pid namespace (our threads "
				       "would take pids up to %d that the image needs): %m", above);
	return fn(arg);
}

/* Forks, into the pid namespace joined, on the first free pid above
 * `above` there (any pid when 0). Pids held there are the runtime's own
 * processes: any free one above the image's does. */
static pid_t fork_above(pid_t above)
{
	if (!above)
		return fork();
	for (pid_t want = above + 1; want <= above + 64; want++) {
		struct clone_args_v2 a = { .exit_signal = SIGCHLD, .set_tid = (uint64_t)&want, .set_tid_size = 1 };
		long pid = sys_clone3(&a);
		if (pid >= 0 || errno != EEXIST)
			return (pid_t)pid;
		log_debug("pid %d of the container is taken; trying the next", want);
	}
	errno = EEXIST;
	return -1;
}

int rt_in_container(pid_t pid, pid_t above, int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t child = fork();
	if (child < 0)
		return log_error_errno(-errno, "cannot fork: %m");
	if (child == 0) {
		/* Joining a pid namespace only places our children in it. */
		if (join(pid, "net", CLONE_NEWNET) < 0 || join(pid, "pid", CLONE_NEWPID) < 0)
			_exit(1);
		pid_t inner = fork_above(above);
		interrupt_forward(inner > 0 ? inner : 0); /* the work is done there */
		if (inner == 0)
			_exit(run_inner(above, fn, arg) < 0 ? 1 : 0);
		if (inner < 0)
			log_error_errno(-errno, "cannot start the restorer in the pid namespace of pid %d on a pid "
					"above %d (those the image needs): %m", pid, above);
		int r = inner < 0 || rt_wait(inner) < 0 ? 1 : 0;
		/* The dump's guardian is our child too (CLONE_PARENT, engine/
		 * guard.h): reap it, or wait while it puts back what a killed
		 * dumper left, before the container's init can be gone. */
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		_exit(r);
	}
	interrupt_forward(child);
	int r = rt_wait(child);
	interrupt_forward(0);
	return r;
}

int rt_copy_file(const char *from, const char *to, mode_t mode)
{
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	char buf[65536];
	if (in < 0 || out < 0)
		return -errno;
	for (ssize_t n; (n = read(in, buf, sizeof(buf))) != 0;) {
		int r = n < 0 ? -errno : write_all(out, buf, (size_t)n);
		if (r < 0)
			return r;
	}
	return fchmod(out, mode) < 0 ? -errno : 0;
}

static const char *const cap_names[] = {
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
	"LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
};

json_t *rt_our_caps(const char *prefix, int max)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long have = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapBnd: %llx", &have) == 1)
			break;
	json_t *a = json_array();
	for (int i = 0; a && i <= max && i < (int)ARRAY_SIZE(cap_names); i++)
		if (have & (1ULL << i)) {
			char name[64];
			snprintf(name, sizeof(name), "%s%s", prefix, cap_names[i]);
			json_array_append_new(a, json_string(name));
		}
	return a;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Processes that share kernel objects without being threads: a child
 * forked with CLONE_FILES (its fd table is ours), one with CLONE_FS (its
 * cwd and umask are ours), and a grandchild sharing the first child's
 * table (so ours too). After restore they still share (kcmp) and act on
 * it: an fd the child opens is ours, a chdir of the other child moves us.
 * With the argument "vfork", we wait in vfork for a child that does not
 * exec until we are signalled, which the dump refuses (fail:vfork).
 *
 * stasis-test: zdtm:shared_tables
 * stasis-test: zdtm:shared_tables:vfork args=vfork dump=no  # dumping it is fail:vfork
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK (256 << 10)

static int cmd[2][2]; /* per child: we write a command byte, it answers */
static int ans[2];

static int same(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) == 0;
}

/* Waits for one command: 'o' opens a file at fd 200, 'c' chdirs to sub,
 * 'q' ends. Answers 'k' each time. */
static void serve(int idx)
{
	char c;
	while (read(cmd[idx][0], &c, 1) == 1) {
		if (c == 'o')
			dup2(open("opened-by-child", O_RDWR | O_CREAT, 0600), 200);
		if (c == 'c' && chdir("sub") < 0)
			c = 'x';
		if (write(ans[1], c == 'x' ? "x" : "k", 1) != 1 || c == 'q')
			_exit(0);
	}
	_exit(1);
}

static int grandchild(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static int child_files(void *arg)
{
	(void)arg;
	char *stack = malloc(STACK);
	if (clone(grandchild, stack + STACK, CLONE_FILES | SIGCHLD, NULL) < 0 || write(ans[1], "g", 1) != 1)
		_exit(2);
	serve(0);
	return 0;
}

static int child_fs(void *arg)
{
	(void)arg;
	serve(1);
	return 0;
}

/* The vfork child: we are blocked until it exits, so it watches for the
 * SIGUSR1 pending at us (raw syscalls only: it runs on our memory). */
static void vfork_child(const char *path)
{
	char buf[2048];
	for (;;) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
		long n = fd < 0 ? -1 : syscall(SYS_read, fd, buf, sizeof(buf) - 1);
		syscall(SYS_close, fd);
		buf[n > 0 ? n : 0] = 0;
		const char *p = strstr(buf, "ShdPnd:");
		if (!p || (strtoull(p + 7, NULL, 16) & (1ULL << (SIGUSR1 - 1))))
			syscall(SYS_exit, 0);
		syscall(SYS_nanosleep, &ts, NULL);
	}
}

static void ask(int idx, char c)
{
	char a = 0;
	if (write(cmd[idx][1], &c, 1) != 1 || read(ans[0], &a, 1) != 1 || a != 'k')
		fail("child %d did not do '%c' (answer '%c')", idx, c, a);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (pipe(cmd[0]) < 0 || pipe(cmd[1]) < 0 || pipe(ans) < 0 || mkdir("sub", 0700) < 0)
		test_die("setup: %s", strerror(errno));
	if (argc > 1 && !strcmp(argv[1], "vfork")) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/status", getpid());
		test_ready();
		pid_t c = vfork();
		if (c == 0)
			vfork_child(path);
		if (c < 0)
			test_die("vfork: %s", strerror(errno));
		test_wait();
		check(waitpid(c, NULL, 0) == c, "cannot reap the vfork child");
		test_done();
	}
	char *s1 = malloc(STACK), *s2 = malloc(STACK);
	pid_t f = clone(child_files, s1 + STACK, CLONE_FILES | SIGCHLD, NULL);
	pid_t s = clone(child_fs, s2 + STACK, CLONE_FS | SIGCHLD, NULL);
	char g = 0;
	/* READY once the grandchild exists: the runner notes the tree then. */
	if (f < 0 || s < 0 || read(ans[0], &g, 1) != 1 || g != 'g')
		test_die("clone: %s", strerror(errno));
	umask(027);

	test_ready();
	test_wait();

	pid_t me = getpid();
	check(same(me, f, KCMP_FILES), "the CLONE_FILES child %d has a table of its own", f);
	check(!same(me, f, KCMP_FS), "the CLONE_FILES child %d shares our fs info", f);
	check(same(me, s, KCMP_FS), "the CLONE_FS child %d has fs info of its own", s);
	check(!same(me, s, KCMP_FILES), "the CLONE_FS child %d shares our fd table", s);
	check(umask(027) == 027, "umask changed");
	ask(0, 'o');
	check(fcntl(200, F_GETFD) >= 0, "the fd the CLONE_FILES child opened is not ours");
	ask(1, 'c');
	char cwd[4096];
	check(getcwd(cwd, sizeof(cwd)) && strlen(cwd) > 4 && !strcmp(cwd + strlen(cwd) - 4, "/sub"),
	      "the CLONE_FS child's chdir did not move us (cwd %s)", cwd);
	ask(0, 'q');
	ask(1, 'q');
	test_done();
}

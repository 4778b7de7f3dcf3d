/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fd tables and fs info shared between siblings, not with their parent:
 *  - a and b: made by us with CLONE_FILES | CLONE_FS, after which we
 *    unshared both, so a and b share a table and fs info with each other
 *    only;
 *  - c and d: c made by us with nothing shared, d made by c with
 *    CLONE_PARENT | CLONE_FILES, so d is our child too and shares c's
 *    table.
 * After restore they still share (kcmp) and act on it: an fd a opens is
 * b's and not ours, a chdir of a moves b and not us, an fd c opens is
 * d's; every one of them is still our child.
 *
 * With the argument "session", a then leads a session of its own, which b
 * (made by a's stub on restore) could not leave: the dump refuses it
 * (fail:share:sibling-session).
 *
 * stasis-test: zdtm:shared_siblings
 * stasis-test: zdtm:shared_siblings:session args=session dump=no  # dumping it is fail:share:sibling-session
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
#include <unistd.h>

#define STACK (256 << 10)
#define N 4

static int cmd[N][2]; /* per child: we write a command byte, it answers */
static int ans[2];
static pid_t us, kids[N];

static int same(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) == 0;
}

/* fd's link ends with name. */
static int is(int fd, const char *name)
{
	char p[64], l[4096];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, l, sizeof(l) - 1);
	l[n > 0 ? n : 0] = 0;
	return n > 0 && strlen(l) >= strlen(name) && !strcmp(l + strlen(l) - strlen(name), name);
}

/* 'o'/'O': open a file at fd 200/201; 'f'/'F': is it there; 'c': chdir
 * to sub; 'w': is the cwd sub; 'p': is our parent the test; 'q': end. */
static char run(char c)
{
	char cwd[4096];
	switch (c) {
	case 'o':
		return dup2(open("opened-by-a", O_RDWR | O_CREAT | O_CLOEXEC, 0600), 200) == 200 ? 'k' : 'x';
	case 'O':
		return dup2(open("opened-by-c", O_RDWR | O_CREAT | O_CLOEXEC, 0600), 201) == 201 ? 'k' : 'x';
	case 'f':
		return is(200, "/opened-by-a") ? 'k' : 'x';
	case 'F':
		return is(201, "/opened-by-c") ? 'k' : 'x';
	case 'c':
		return chdir("sub") == 0 ? 'k' : 'x';
	case 'w':
		return getcwd(cwd, sizeof(cwd)) && strlen(cwd) > 4 && !strcmp(cwd + strlen(cwd) - 4, "/sub") ? 'k' : 'x';
	case 'p':
		return getppid() == us ? 'k' : 'x';
	case 's':
		return setsid() > 0 ? 'k' : 'x';
	}
	return 'k';
}

static void serve(int idx)
{
	char c;
	while (read(cmd[idx][0], &c, 1) == 1) {
		char a = run(c);
		if (write(ans[1], &a, 1) != 1 || c == 'q')
			_exit(0);
	}
	_exit(1);
}

static int child(void *arg)
{
	serve((int)(long)arg);
	return 0;
}

/* c makes d as our child, sharing its table, and tells us its pid. */
static int child_c(void *arg)
{
	(void)arg;
	char *stack = malloc(STACK);
	int d = clone(child, stack + STACK, CLONE_PARENT | CLONE_FILES | SIGCHLD, (void *)3L);
	if (d < 0 || write(ans[1], &d, sizeof(d)) != sizeof(d))
		_exit(2);
	serve(2);
	return 0;
}

static pid_t make(int (*fn)(void *), unsigned long flags, long idx)
{
	char *stack = malloc(STACK);
	pid_t pid = clone(fn, stack + STACK, flags | SIGCHLD, (void *)idx);
	if (pid < 0)
		test_die("clone: %s", strerror(errno));
	return pid;
}

static void ask(int idx, char c)
{
	char a = 0;
	if (write(cmd[idx][1], &c, 1) != 1 || read(ans[0], &a, 1) != 1 || a != 'k')
		fail("child %c did not do '%c' (answer '%c')", 'a' + idx, c, a);
}

static void check_sharing(void)
{
	check(same(kids[0], kids[1], KCMP_FILES) && same(kids[0], kids[1], KCMP_FS), "a and b do not share");
	check(!same(us, kids[0], KCMP_FILES) && !same(us, kids[0], KCMP_FS), "a shares with us");
	check(same(kids[2], kids[3], KCMP_FILES) && !same(kids[2], kids[3], KCMP_FS), "c and d: wrong sharing");
	check(!same(us, kids[2], KCMP_FILES), "c shares with us");
	for (int i = 0; i < N; i++)
		ask(i, 'p');
}

int main(int argc, char **argv)
{
	char cwd[4096];
	test_init(argc, argv);
	us = getpid();
	for (int i = 0; i < N; i++)
		if (pipe2(cmd[i], O_CLOEXEC) < 0)
			test_die("pipe: %s", strerror(errno));
	if (pipe2(ans, O_CLOEXEC) < 0 || mkdir("sub", 0700) < 0)
		test_die("setup: %s", strerror(errno));
	kids[0] = make(child, CLONE_FILES | CLONE_FS, 0);
	kids[1] = make(child, CLONE_FILES | CLONE_FS, 1);
	if (unshare(CLONE_FILES | CLONE_FS) < 0)
		test_die("unshare: %s", strerror(errno));
	kids[2] = make(child_c, 0, 2);
	if (read(ans[0], &kids[3], sizeof(kids[3])) != sizeof(kids[3]))
		test_die("c did not make d");
	check_sharing();
	if (argc > 1 && !strcmp(argv[1], "session"))
		ask(0, 's');
	if (test_failures())
		test_die("not shared as expected before the dump");
	test_ready();
	test_wait();

	check_sharing();
	ask(0, 'o');
	ask(1, 'f');
	check(fcntl(200, F_GETFD) < 0 && errno == EBADF, "a's fd 200 is ours too");
	ask(0, 'c');
	ask(1, 'w');
	check(getcwd(cwd, sizeof(cwd)) && strcmp(cwd + strlen(cwd) - 4, "/sub"), "a's chdir moved us too");
	ask(2, 'O');
	ask(3, 'F');
	check(fcntl(201, F_GETFD) < 0 && errno == EBADF, "c's fd 201 is ours too");
	for (int i = 0; i < N; i++) {
		int st = 0;
		ask(i, 'q');
		check(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child %c did not end well (%#x)", 'a' + i, st);
	}
	test_done();
}

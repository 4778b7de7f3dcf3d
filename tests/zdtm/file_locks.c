/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File locks: an exclusive and a shared flock (the exclusive one also
 * reached through a dup), POSIX write and read locks on ranges of one
 * file, an OFD write lock. After restore another process (and another open
 * file description) must find each still held, with its range.
 *
 * stasis-test: zdtm:file_locks
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int open_file(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		test_die("open %s: %s", name, strerror(errno));
	return fd;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl);
}

/* F_GETLK / F_OFD_GETLK for a write lock at [start, start+len). */
static struct flock getlk(int fd, int cmd, off_t start, off_t len)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, cmd, &fl) < 0)
		fl.l_type = -1;
	return fl;
}

/* Runs in a child: another process, other open file descriptions. */
static void probe(pid_t parent)
{
	int a = open_file("flock-ex.dat"), s = open_file("flock-sh.dat");
	int b = open_file("posix.dat"), c = open_file("ofd.dat");
	check(flock(a, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "exclusive flock is not held");
	check(flock(s, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "shared flock is not held");
	check(flock(s, LOCK_SH | LOCK_NB) == 0, "shared flock is held exclusively");
	struct flock fl = getlk(b, F_GETLK, 15, 1);
	check(fl.l_type == F_WRLCK && fl.l_start == 10 && fl.l_len == 20 && fl.l_pid == parent,
	      "POSIX write lock: type %d start %ld len %ld pid %d", fl.l_type, (long)fl.l_start, (long)fl.l_len,
	      fl.l_pid);
	fl = getlk(b, F_GETLK, 50, 10);
	check(fl.l_type == F_UNLCK, "POSIX: range 50-59 is locked (type %d)", fl.l_type);
	fl = getlk(b, F_GETLK, 5000, 1);
	check(fl.l_type == F_RDLCK && fl.l_start == 100 && fl.l_len == 0 && fl.l_pid == parent,
	      "POSIX read lock: type %d start %ld len %ld pid %d", fl.l_type, (long)fl.l_start, (long)fl.l_len,
	      fl.l_pid);
	fl = getlk(c, F_OFD_GETLK, 0, 100);
	check(fl.l_type == F_WRLCK && fl.l_start == 0 && fl.l_len == 5, "OFD lock: type %d start %ld len %ld",
	      fl.l_type, (long)fl.l_start, (long)fl.l_len);
	fl = getlk(c, F_GETLK, 0, 100);
	check(fl.l_type == F_WRLCK, "OFD lock not seen by F_GETLK (type %d)", fl.l_type);
	_exit(test_failures() ? 1 : 0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int a = open_file("flock-ex.dat"), s = open_file("flock-sh.dat");
	int b = open_file("posix.dat"), c = open_file("ofd.dat");
	if (flock(a, LOCK_EX | LOCK_NB) < 0 || flock(s, LOCK_SH | LOCK_NB) < 0)
		test_die("flock: %s", strerror(errno));
	if (setlk(b, F_SETLK, F_WRLCK, 10, 20) < 0 || setlk(b, F_SETLK, F_RDLCK, 100, 0) < 0)
		test_die("F_SETLK: %s", strerror(errno));
	if (setlk(c, F_OFD_SETLK, F_WRLCK, 0, 5) < 0)
		test_die("F_OFD_SETLK: %s", strerror(errno));
	int d = dup(a);
	if (d < 0)
		test_die("dup: %s", strerror(errno));
	test_msg("fds: flock-ex %d (dup %d), flock-sh %d, posix %d, ofd %d", a, d, s, b, c);

	test_ready();
	test_wait();

	pid_t parent = getpid(), child = fork();
	if (child < 0)
		test_die("fork: %s", strerror(errno));
	if (child == 0)
		probe(parent);
	int st = 0;
	waitpid(child, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the probing child found the locks missing (status %#x)", st);
	/* Our own locks: taking them again must work (they are ours). */
	check(flock(d, LOCK_EX | LOCK_NB) == 0, "exclusive flock via the dup: %s", strerror(errno));
	check(setlk(c, F_OFD_SETLK, F_WRLCK, 0, 5) == 0, "OFD lock is not ours: %s", strerror(errno));
	test_done();
}

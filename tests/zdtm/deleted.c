/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Things that lost their name while open: a file deleted while open with
 * mode 0751 (its content, offset, mode and owner), a file whose directory was
 * removed after it (two levels: restore makes them again for a moment,
 * so /proc shows the same path), two descriptions of one removed directory (the same
 * inode, empty, still a directory), O_PATH fds of the deleted file and
 * the removed directory, and a FIFO whose path was unlinked,
 * with bytes queued and a reader and a writer in two processes; the
 * writer's working directory was removed. After restore each is there
 * with no name (st_nlink 0), shown by /proc as before.
 *
 * stasis-test: zdtm:deleted
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define SZ 20000

static int make_file(const char *path, mode_t mode, uint64_t seed)
{
	char buf[SZ];
	test_fill(buf, SZ, seed);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, SZ) != SZ || fchown(fd, 1234, 5678) < 0 || fchmod(fd, mode) < 0 ||
	    lseek(fd, 1234, SEEK_SET) != 1234 ||
	    unlink(path) < 0)
		test_die("%s: %m", path);
	return fd;
}

static void check_file(int fd, mode_t mode, uint64_t seed, const char *what)
{
	char buf[SZ];
	struct stat st;
	check(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0 && st.st_size == SZ,
	      "%s: not an unlinked file of %d bytes", what, SZ);
	check((st.st_mode & 07777) == mode, "%s: mode %o, want %o", what, st.st_mode & 07777, mode);
	check(st.st_uid == 1234 && st.st_gid == 5678, "%s: owner %u:%u, want 1234:5678", what, st.st_uid, st.st_gid);
	check(lseek(fd, 0, SEEK_CUR) == 1234, "%s: offset %ld", what, (long)lseek(fd, 0, SEEK_CUR));
	check(pread(fd, buf, SZ, 0) == SZ && test_verify(buf, SZ, seed) < 0, "%s: content differs", what);
	check(pwrite(fd, "w", 1, SZ) == 1, "%s: cannot write: %m", what);
}

static void check_dir(int a, int b)
{
	struct stat sa, sb;
	check(fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISDIR(sa.st_mode) && sa.st_nlink == 0,
	      "the removed directory is not one");
	check(sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev, "two fds of one removed directory are two now");
	check(openat(a, "new", O_RDWR | O_CREAT | O_CLOEXEC, 0600) < 0 && errno == ENOENT,
	      "a file could be made in a removed directory");
	DIR *d = fdopendir(b);
	int n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	check(d && n == 0, "the removed directory lists %d entries", n);
}

static bool same_inode(int a, int b)
{
	struct stat x, y;
	return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

/* The child's cwd: removed, still a directory, shown as before. */
static int cwd_removed(void)
{
	char link[4096];
	struct stat st;
	ssize_t n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
	if (n < 0 || stat(".", &st) < 0 || !S_ISDIR(st.st_mode) || st.st_nlink)
		return 3;
	link[n] = 0;
	const char *want = "/cwd-gone (deleted)";
	return (size_t)n > strlen(want) && !strcmp(link + n - strlen(want), want) ? 0 : 4;
}

int main(int argc, char **argv)
{
	char buf[64];
	test_init(argc, argv);
	int f1 = make_file("gone.dat", 0751, 1);
	if (mkdir("d1", 0700) < 0 || mkdir("d1/d2", 0700) < 0)
		test_die("mkdir: %m");
	int f2 = make_file("d1/d2/in-removed-dir.dat", 0640, 2);
	if (rmdir("d1/d2") < 0 || rmdir("d1") < 0 || mkdir("rd", 0700) < 0)
		test_die("rmdir: %m");
	int d1 = open("rd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), d2 = open("rd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int pd = open("rd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d1 < 0 || d2 < 0 || pd < 0 || rmdir("rd") < 0)
		test_die("removed directory: %m");
	snprintf(buf, sizeof(buf), "/proc/self/fd/%d", f1);
	int pf = open(buf, O_PATH | O_CLOEXEC);
	if (pf < 0)
		test_die("O_PATH of the deleted file: %m");
	unlink("gone.fifo");
	if (mkfifo("gone.fifo", 0600) < 0)
		test_die("mkfifo: %m");
	int rd = open("gone.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC), wr = open("gone.fifo", O_WRONLY | O_CLOEXEC);
	if (rd < 0 || wr < 0 || write(wr, "queued", 6) != 6 || unlink("gone.fifo") < 0)
		test_die("fifo: %m");
	pid_t kid = fork();
	if (kid == 0) {
		close(rd);
		if (mkdir("cwd-gone", 0700) < 0 || chdir("cwd-gone") < 0 || rmdir("../cwd-gone") < 0)
			_exit(2);
		test_wait();
		_exit(write(wr, "after", 5) == 5 ? cwd_removed() : 1);
	}
	close(wr);
	test_ready();
	test_wait();
	check_file(f1, 0751, 1, "the deleted file");
	check_file(f2, 0640, 2, "the file in a removed directory");
	check_dir(d1, d2);
	check(same_inode(pf, f1) && same_inode(pd, d1), "an O_PATH fd names another inode than its object's");
	check(fcntl(pf, F_GETFL) & O_PATH, "the deleted file's O_PATH fd lost O_PATH");
	struct stat st;
	check(fstat(rd, &st) == 0 && S_ISFIFO(st.st_mode), "the unlinked FIFO is not a FIFO");
	check(read(rd, buf, 6) == 6 && !memcmp(buf, "queued", 6), "the FIFO's queued bytes are lost");
	kill(kid, SIGUSR1);
	int status = 0;
	check(waitpid(kid, &status, 0) == kid && WIFEXITED(status) && !WEXITSTATUS(status), "writer (or its removed cwd): %#x", status);
	ssize_t n = read(rd, buf, sizeof(buf));
	check(n == 5 && !memcmp(buf, "after", 5), "the writer's bytes did not arrive (%zd)", n);
	test_done();
}

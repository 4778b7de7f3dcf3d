/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bytes queued in a FIFO whatever ends the tree holds: a FIFO opened
 * read-write only, a FIFO whose only opener left is a writer (its reader
 * closed after the bytes were written), and an anonymous pipe whose read
 * end was closed with bytes still in it. After restore every byte is
 * there, read through the same fd, the FIFO's path or /proc/self/fd.
 *
 * stasis-test: zdtm:fifo_data
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmtst.h"

static void expect(int fd, const char *want, const char *what)
{
	char buf[64] = "";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	check(n == (ssize_t)strlen(want) && !memcmp(buf, want, strlen(want)), "%s: read %zd bytes '%s', want '%s' (%s)",
	      what, n, n > 0 ? buf : "", want, n < 0 ? strerror(errno) : "");
}

int main(int argc, char **argv)
{
	int p[2];
	char path[64];
	test_init(argc, argv);
	unlink("rw.fifo");
	unlink("wo.fifo");
	if (mkfifo("rw.fifo", 0600) < 0 || mkfifo("wo.fifo", 0600) < 0)
		test_die("mkfifo: %m");
	int rw = open("rw.fifo", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int rd = open("wo.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int wo = open("wo.fifo", O_WRONLY | O_CLOEXEC);
	if (rw < 0 || rd < 0 || wo < 0 || write(rw, "read-write", 10) != 10 || write(wo, "writer-only", 11) != 11)
		test_die("setup: %m");
	close(rd);
	if (pipe2(p, O_CLOEXEC) < 0 || write(p[1], "widowed-pipe", 12) != 12)
		test_die("pipe: %m");
	close(p[0]);
	test_ready();
	test_wait();
	expect(rw, "read-write", "the read-write FIFO");
	rd = open("wo.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	check(rd >= 0, "wo.fifo cannot be opened: %m");
	expect(rd, "writer-only", "the FIFO held by a writer only");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
	int pr = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	check(pr >= 0, "the pipe cannot be reopened: %m");
	expect(pr, "widowed-pipe", "the pipe whose reader closed");
	unlink("rw.fifo");
	unlink("wo.fifo");
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A FIFO (named pipe) read by the parent and written by its child, with
 * bytes queued in it at dump time and a larger capacity. After restore the
 * bytes are there, the child's writes still reach the parent, and the FIFO
 * can still be opened by its path.
 *
 * stasis-test: zdtm:fifo
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

static ssize_t read_some(int fd, char *buf, size_t len)
{
	for (int i = 0; i < 200; i++) {
		ssize_t n = read(fd, buf, len);
		if (n > 0 || (n < 0 && errno != EAGAIN))
			return n;
		usleep(10000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	char buf[64];
	test_init(argc, argv);
	unlink("fifo");
	if (mkfifo("fifo", 0600) < 0)
		test_die("mkfifo: %m");
	int rd = open("fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC), wr = open("fifo", O_WRONLY | O_CLOEXEC);
	if (rd < 0 || wr < 0 || fcntl(rd, F_SETPIPE_SZ, 128 << 10) < 0 || write(wr, "queued-bytes", 12) != 12)
		test_die("setup: %m");
	pid_t kid = fork();
	if (kid == 0) {
		close(rd);
		test_wait();
		_exit(write(wr, "after", 5) == 5 ? 0 : 1);
	}
	close(wr);
	test_ready();
	test_wait();
	kill(kid, SIGUSR1);
	check(fcntl(rd, F_GETPIPE_SZ) == 128 << 10, "capacity is %d", fcntl(rd, F_GETPIPE_SZ));
	check(read(rd, buf, 12) == 12 && !memcmp(buf, "queued-bytes", 12), "the queued bytes are lost");
	ssize_t n = read_some(rd, buf, sizeof(buf));
	check(n == 5 && !memcmp(buf, "after", 5), "the child's write did not arrive (%zd)", n);
	int status = 0;
	waitpid(kid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %#x", status);
	int ext = open("fifo", O_WRONLY | O_NONBLOCK);
	check(ext >= 0 && write(ext, "ext", 3) == 3, "the FIFO cannot be opened by path: %m");
	n = read_some(rd, buf, sizeof(buf));
	check(n == 3 && !memcmp(buf, "ext", 3), "a write through the path did not arrive (%zd)", n);
	unlink("fifo");
	test_done();
}

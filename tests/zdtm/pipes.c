/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pipes with both ends in the process and bytes in flight: a small
 * self-pipe with a non-blocking write end and a dup of its read end, and
 * a 1 MiB pipe holding 300 KB. The bytes, sizes and flags must survive.
 *
 * stasis-test: zdtm:pipes
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIG (300 * 1000)

int main(int argc, char **argv)
{
	int a[2], b[2];
	static char big[BIG], got[BIG];

	test_init(argc, argv);
	if (pipe(a) < 0 || pipe2(b, O_CLOEXEC) < 0)
		test_die("pipe: %s", strerror(errno));
	fcntl(a[1], F_SETFL, O_NONBLOCK);
	if (fcntl(b[1], F_SETPIPE_SZ, 1 << 20) < 0)
		test_die("F_SETPIPE_SZ: %s", strerror(errno));
	int adup = dup(a[0]);
	if (write(a[1], "hello, pipe", 11) != 11)
		test_die("write: %s", strerror(errno));
	test_fill(big, BIG, 42);
	if (write(b[1], big, BIG) != BIG)
		test_die("write big: %s", strerror(errno));

	test_ready();
	test_wait();

	char small[32] = "";
	check(read(adup, small, 5) == 5 && !memcmp(small, "hello", 5), "first bytes via the dup: '%.5s'", small);
	check(read(a[0], small, 6) == 6 && !memcmp(small, ", pipe", 6), "rest via the original: '%.6s'", small);
	check(fcntl(a[1], F_GETFL) & O_NONBLOCK, "write end lost O_NONBLOCK");
	check(!(fcntl(a[0], F_GETFL) & O_NONBLOCK), "read end gained O_NONBLOCK");
	check(fcntl(b[1], F_GETPIPE_SZ) == 1 << 20, "big pipe size %d", fcntl(b[1], F_GETPIPE_SZ));
	check(fcntl(b[0], F_GETFD) & FD_CLOEXEC, "big pipe lost FD_CLOEXEC");
	size_t have = 0;
	fcntl(b[0], F_SETFL, O_NONBLOCK);
	while (have < BIG) {
		ssize_t n = read(b[0], got + have, BIG - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	check(have == BIG && !memcmp(got, big, BIG), "big pipe gave %zu of %d bytes or other bytes", have, BIG);
	check(read(b[0], got, 1) < 0 && errno == EAGAIN, "big pipe holds more than was written");
	check(write(a[1], "x", 1) == 1 && read(a[0], small, 1) == 1 && small[0] == 'x', "pipe does not carry new data");
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One process holding both ends of several pipes, some with bytes in
 * flight, some duplicated, some with a second open file description of
 * an end (reopened through /proc/self/fd, read-only and read-write),
 * dumped and restored (also twice in a row): every pipe must still
 * connect its own ends and keep its bytes (a bug once made the pipe with
 * a reopened end be made twice, and the restore exit 1 without a word).
 *
 * stasis-test: zdtm:pipes_many
 * stasis-test: zdtm:pipes_many:2-iterations iterations=2
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NPIPES 6

int main(int argc, char **argv)
{
	int p[NPIPES][2], dups[NPIPES], reopened[NPIPES];
	char msg[32], got[32];

	test_init(argc, argv);
	for (int i = 0; i < NPIPES; i++) {
		if (pipe2(p[i], i % 2 ? O_CLOEXEC : 0) < 0)
			test_die("pipe: %s", strerror(errno));
		dups[i] = i % 3 == 0 ? dup(p[i][0]) : -1;
		reopened[i] = -1;
		if (i == 1 || i == 4) {
			char path[64];
			snprintf(path, sizeof(path), "/proc/self/fd/%d", p[i][0]);
			reopened[i] = open(path, i == 1 ? O_RDONLY : O_RDWR);
			if (reopened[i] < 0)
				test_die("reopen %s: %s", path, strerror(errno));
		}
		snprintf(msg, sizeof(msg), "pipe %d", i);
		if (i != 2 && write(p[i][1], msg, strlen(msg)) != (ssize_t)strlen(msg))
			test_die("write: %s", strerror(errno));
	}

	test_ready();
	test_wait();

	for (int i = 0; i < NPIPES; i++) {
		snprintf(msg, sizeof(msg), "pipe %d", i);
		int rfd = dups[i] >= 0 ? dups[i] : p[i][0];
		fcntl(rfd, F_SETFL, O_NONBLOCK);
		memset(got, 0, sizeof(got));
		ssize_t n = read(rfd, got, sizeof(got));
		if (i == 2)
			check(n < 0 && errno == EAGAIN, "pipe 2 should be empty, read gave %zd", n);
		else
			check(n == (ssize_t)strlen(msg) && !memcmp(got, msg, (size_t)n), "pipe %d holds '%.*s'", i,
			      (int)(n > 0 ? n : 0), got);
		/* Its own ends still connect: a byte written comes back. */
		check(write(p[i][1], "x", 1) == 1 && read(p[i][0], got, 1) == 1 && got[0] == 'x',
		      "pipe %d: its write end does not reach its read end", i);
		if (reopened[i] >= 0) {
			int w = i == 4 ? reopened[i] : p[i][1], r = i == 4 ? p[i][0] : reopened[i];
			check(write(w, "y", 1) == 1 && read(r, got, 1) == 1 && got[0] == 'y',
			      "pipe %d: its reopened end is not on the same pipe", i);
			check((fcntl(reopened[i], F_GETFL) & O_ACCMODE) == (i == 4 ? O_RDWR : O_RDONLY),
			      "pipe %d: the reopened end's access mode changed", i);
		}
		check(!!(fcntl(p[i][1], F_GETFD) & FD_CLOEXEC) == (i % 2), "pipe %d: FD_CLOEXEC changed", i);
	}
	test_done();
}

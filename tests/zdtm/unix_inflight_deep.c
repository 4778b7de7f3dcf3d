/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sockets in flight nested deep: DEPTH datagram pairs, the receiving end
 * of each sent over the next, so that only the top one is in our fd
 * table and the bottom one's queue holds "bottom" and a regular file.
 * Kernels before 6.10 refused more than 4 levels (ETOOMANYREFS); this
 * one takes any. After the restore each level comes with its message
 * and fd, down to the file at its offset.
 *
 * stasis-test: zdtm:unix_inflight_deep
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmtst.h"

#define DEPTH 10

/* The next message of s: want as its bytes, and the fd it brings. */
static int recv_level(int s, const char *want)
{
	char buf[32];
	struct iovec iov = { buf, sizeof(buf) - 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	int fd = -1;
	ssize_t n = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	buf[n > 0 ? n : 0] = 0;
	struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	check(n >= 0 && !strcmp(buf, want), "expected '%s', got '%s' (%zd)", want, buf, n);
	check(fd >= 0, "'%s' came without its fd", want);
	return fd;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char msg[32];
	int f = open("deep.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 4, SEEK_SET) != 4)
		test_die("deep.txt: %m");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		test_die("socketpair: %m");
	test_send_fd(sv[0], "bottom", f);
	close(f), close(sv[0]);
	int top = sv[1];
	for (int d = 1; d < DEPTH; d++) {
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
			test_die("socketpair: %m");
		snprintf(msg, sizeof(msg), "level %d", d);
		test_send_fd(sv[0], msg, top);
		close(top), close(sv[0]);
		top = sv[1];
	}
	test_ready();
	test_wait();

	for (int d = DEPTH - 1; d >= 1 && top >= 0; d--) {
		snprintf(msg, sizeof(msg), "level %d", d);
		int next = recv_level(top, msg);
		close(top);
		top = next;
	}
	if (top >= 0) {
		int file = recv_level(top, "bottom");
		char buf[8] = "";
		check(file < 0 || read(file, buf, 6) == 6, "the file at the bottom: read: %m");
		check(!strcmp(buf, "456789"), "the file at the bottom: read '%s' from offset 4", buf);
	}
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File descriptors in flight in unix socket queues (SCM_RIGHTS), and
 * credentials (SCM_CREDENTIALS). Queued on a datagram pair, in order:
 *  - "file": a regular file (closed by the sender), its offset at 5;
 *  - "pipe": the read end of a pipe whose write end we keep, bytes in it;
 *  - "solo": the read end of a pipe nobody holds any more, bytes in it;
 *  - "sock": one end of a stream pair whose other end we keep, with bytes
 *    queued in the end in flight;
 *  - "nest": a stream socket in flight (its peer closed) whose own queue
 *    holds a file in flight;
 * a stream pair whose queue is "abc", "def" with a file, "ghi"; and a
 * datagram pair with SO_PASSCRED holding one message with our
 * credentials. After the restore every message comes with its fds, each
 * fd is what was sent, and the credentials are ours.
 *
 * stasis-test: zdtm:unix_inflight
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmtst.h"

/* One message: its bytes into buf (NUL-terminated), its fd (or -1). */
static ssize_t recv_fd(int s, char *buf, size_t size, int *fd, struct ucred *uc)
{
	struct iovec iov = { buf, size - 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	*fd = -1;
	ssize_t n = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	buf[n > 0 ? n : 0] = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
		if (cm->cmsg_type == SCM_CREDENTIALS && uc)
			memcpy(uc, CMSG_DATA(cm), sizeof(*uc));
	}
	return n;
}

static void expect_read(int fd, const char *what, const char *want)
{
	char buf[64] = "";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	check(n == (ssize_t)strlen(want) && !strcmp(buf, want), "%s: read '%s' (%zd), expected '%s'", what, buf, n,
	      want);
}

static int file_at(const char *name, const char *text, off_t pos)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || lseek(fd, pos, SEEK_SET) != pos)
		test_die("%s: %m", name);
	return fd;
}

static int msg_fd(int s, const char *want)
{
	char buf[64];
	int fd;
	ssize_t n = recv_fd(s, buf, sizeof(buf), &fd, NULL);
	check(n >= 0 && !strcmp(buf, want), "expected message '%s', got '%s' (%zd)", want, buf, n);
	check(fd >= 0, "message '%s' came without its fd", want);
	return fd;
}

static int ch[2], pw, kept, st[2], cr[2];

static void setup(void)
{
	int pp[2], sp[2], np[2], one = 1;
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, ch) || pipe(pp) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, np) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, cr) || setsockopt(cr[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		test_die("setup: %m");
	int f = file_at("inflight-1.txt", "0123456789", 5);
	test_send_fd(ch[0], "file", f);
	close(f);
	if (write(pp[1], "hello", 5) != 5)
		test_die("pipe: %m");
	test_send_fd(ch[0], "pipe", pp[0]);
	close(pp[0]);
	pw = pp[1];
	int solo[2];
	if (pipe(solo) || write(solo[1], "solo", 4) != 4)
		test_die("solo pipe: %m");
	test_send_fd(ch[0], "solo", solo[0]);
	close(solo[0]);
	close(solo[1]);
	if (write(sp[0], "inner", 5) != 5)
		test_die("inner: %m");
	test_send_fd(ch[0], "sock", sp[1]);
	close(sp[1]);
	kept = sp[0];
	f = file_at("inflight-2.txt", "nested", 0);
	test_send_fd(np[0], "n", f);
	close(f);
	close(np[0]);
	test_send_fd(ch[0], "nest", np[1]);
	close(np[1]);
	f = file_at("inflight-3.txt", "stream", 0);
	if (write(st[0], "abc", 3) != 3)
		test_die("stream: %m");
	test_send_fd(st[0], "def", f);
	close(f);
	if (write(st[0], "ghi", 3) != 3 || send(cr[0], "cred", 4, 0) != 4)
		test_die("stream: %m");
}

static void check_stream(void)
{
	char all[32] = "", buf[32];
	int got = -1, fd;
	size_t at = 0;
	for (int i = 0; i < 4 && at < 9; i++) {
		ssize_t n = recv_fd(st[1], buf, sizeof(buf), &fd, NULL);
		if (n <= 0)
			break;
		if (fd >= 0) {
			check(got < 0 && memchr(buf, 'd', (size_t)n), "stream: the fd came with '%s'", buf);
			got = fd;
		}
		memcpy(all + at, buf, (size_t)n);
		at += (size_t)n;
	}
	check(!strcmp(all, "abcdefghi"), "stream: read '%s'", all);
	check(got >= 0, "stream: the fd did not come");
	if (got >= 0)
		expect_read(got, "stream's file", "stream");
}

static void check_creds(void)
{
	char buf[16];
	int fd;
	struct ucred uc = { 0, 0, 0 };
	ssize_t n = recv_fd(cr[1], buf, sizeof(buf), &fd, &uc);
	check(n == 4 && !strcmp(buf, "cred"), "creds: got '%s' (%zd)", buf, n);
	check(uc.pid == getpid() && uc.uid == getuid() && uc.gid == getgid(),
	      "creds: pid %d uid %u gid %u, expected %d %u %u", uc.pid, uc.uid, uc.gid, getpid(), getuid(), getgid());
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	setup();
	test_ready();
	test_wait();

	int f = msg_fd(ch[1], "file");
	if (f >= 0)
		expect_read(f, "file", "56789");
	int p = msg_fd(ch[1], "pipe");
	if (p >= 0) {
		expect_read(p, "pipe", "hello");
		check(write(pw, "more", 4) == 4, "pipe: write: %m");
		expect_read(p, "pipe again", "more");
	}
	int so = msg_fd(ch[1], "solo");
	if (so >= 0) {
		expect_read(so, "pipe nobody holds", "solo");
		char b;
		check(read(so, &b, 1) == 0, "pipe nobody holds: no EOF after its bytes");
	}
	int s = msg_fd(ch[1], "sock");
	if (s >= 0) {
		expect_read(s, "socket in flight", "inner");
		check(write(s, "back", 4) == 4, "socket in flight: write: %m");
		expect_read(kept, "kept end", "back");
	}
	int nst = msg_fd(ch[1], "nest");
	if (nst >= 0) {
		int inner = msg_fd(nst, "n");
		if (inner >= 0)
			expect_read(inner, "nested file", "nested");
		char b;
		check(read(nst, &b, 1) == 0, "nested socket: no EOF after its queue");
	}
	check_stream();
	check_creds();
	test_done();
}

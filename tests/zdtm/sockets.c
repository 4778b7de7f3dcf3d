/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sockets across a parent and its child, with bytes queued in them: unix
 * stream, dgram and seqpacket socketpairs (one end each), a connection
 * accepted from a named unix listener, listeners on a path and on an
 * abstract name, TCP listeners on 127.0.0.1 and ::1 and a bound UDP
 * socket. After the restore the queued bytes must be there, the pairs
 * still connected, and the listeners accept new connections.
 *
 * stasis-test: zdtm:sockets
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

static int sp[3][2];
static const int types[3] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET };

static socklen_t unix_addr(struct sockaddr_un *a, const char *name, bool abstract)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (abstract) {
		snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "%s", name);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	}
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", name);
	return sizeof(*a);
}

static int listen_unix(const char *name, bool abstract)
{
	struct sockaddr_un a;
	socklen_t l = unix_addr(&a, name, abstract);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, l) || listen(s, 7))
		test_die("unix listener %s: %m", name);
	return s;
}

static int connect_unix(const char *name, bool abstract)
{
	struct sockaddr_un a;
	socklen_t l = unix_addr(&a, name, abstract);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, l))
		return -1;
	return s;
}

static int listen_tcp(int family, uint16_t *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t l;
	int s = socket(family, SOCK_STREAM, 0), one = 1;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		l = sizeof(*a);
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&ss, l) || listen(s, 5) || getsockname(s, (struct sockaddr *)&ss, &l))
		test_die("tcp listener: %m");
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return s;
}

static bool tcp_accepts(int ls, int family, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t l;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(port);
		l = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(port);
		l = sizeof(*a);
	}
	int c = socket(family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, l))
		return false;
	int a = accept(ls, NULL, NULL);
	bool ok = a >= 0 && write(c, "hi", 2) == 2;
	char b[2];
	ok = ok && read(a, b, 2) == 2 && !memcmp(b, "hi", 2);
	close(c);
	close(a);
	return ok;
}

/* An fd sent with SCM_RIGHTS (before the dump) is the sender's open file
 * description: after the restore it still is (one offset). */
static int recv_fd(int sock)
{
	char c;
	struct iovec iov = { &c, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	int fd = -1;
	if (recvmsg(sock, &mh, 0) == 1 && CMSG_FIRSTHDR(&mh))
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	return fd;
}

static int passed_fd = -1;

/* Child side: one end of each pair; echoes what is queued back. */
static int child(int conn)
{
	if (write(passed_fd, "kid!", 4) != 4)
		return 50;
	char buf[64];
	for (int i = 0; i < 3; i++) {
		ssize_t n = recv(sp[i][1], buf, sizeof(buf), 0);
		if (n != 10 + i || memcmp(buf, "to-child-0123", (size_t)n))
			return 10 + i;
		if (types[i] != SOCK_STREAM) { /* a second message, boundary kept */
			n = recv(sp[i][1], buf, sizeof(buf), 0);
			if (n != 3 || memcmp(buf, "two", 3))
				return 20 + i;
		}
		if (send(sp[i][1], "pong", 4, 0) != 4)
			return 30 + i;
	}
	ssize_t n = read(conn, buf, sizeof(buf));
	if (n != 7 || memcmp(buf, "queued!", 7))
		return 40;
	return write(conn, "back", 4) == 4 ? 0 : 41;
}

int main(int argc, char **argv)
{
	char path[108], abs_name[64];
	uint16_t p4, p6;
	test_init(argc, argv);
	snprintf(path, sizeof(path), "/tmp/stasis-zdtm-%d.sock", getpid());
	snprintf(abs_name, sizeof(abs_name), "stasis-zdtm-%d", getpid());
	unlink(path);
	int lpath = listen_unix(path, false), labs = listen_unix(abs_name, true);
	int l4 = listen_tcp(AF_INET, &p4), l6 = listen_tcp(AF_INET6, &p6);
	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in ua = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t ul = sizeof(ua);
	if (udp < 0 || bind(udp, (struct sockaddr *)&ua, sizeof(ua)) || getsockname(udp, (struct sockaddr *)&ua, &ul))
		test_die("udp: %m");
	for (int i = 0; i < 3; i++) {
		if (socketpair(AF_UNIX, types[i], 0, sp[i]))
			test_die("socketpair: %m");
		if (send(sp[i][0], "to-child-0123", (size_t)(10 + i), 0) != 10 + i)
			test_die("send");
		if (types[i] != SOCK_STREAM && send(sp[i][0], "two", 3, 0) != 3)
			test_die("send");
	}
	int pass[2], file = open("passed.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (file < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, pass))
		test_die("passed file: %m");
	int client = connect_unix(path, false), served = accept(lpath, NULL, NULL);
	if (client < 0 || served < 0 || write(served, "queued!", 7) != 7)
		test_die("unix connection: %m");
	pid_t kid = fork();
	if (kid == 0) {
		for (int i = 0; i < 3; i++)
			close(sp[i][0]);
		close(served);
		close(file);
		passed_fd = recv_fd(pass[1]);
		if (passed_fd < 0 || write(pass[1], "k", 1) != 1)
			_exit(60);
		test_wait();
		_exit(child(client));
	}
	test_send_fd(pass[0], "f", file);
	char ack;
	if (read(pass[0], &ack, 1) != 1)
		test_die("the child did not take the fd");
	for (int i = 0; i < 3; i++)
		close(sp[i][1]);
	close(client);
	test_ready();
	test_wait();
	kill(kid, SIGUSR1);
	char buf[16];
	for (int i = 0; i < 3; i++) {
		ssize_t n = recv(sp[i][0], buf, sizeof(buf), 0);
		check(n == 4 && !memcmp(buf, "pong", 4), "pair %d: no pong from the child (%zd)", i, n);
	}
	ssize_t n = read(served, buf, sizeof(buf));
	check(n == 4 && !memcmp(buf, "back", 4), "accepted connection: no answer from the child (%zd)", n);
	int status = 0;
	waitpid(kid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exited with %#x", status);
	check(lseek(file, 0, SEEK_CUR) == 4, "the fd passed to the child is no longer ours (offset %lld)",
	      (long long)lseek(file, 0, SEEK_CUR));
	int c1 = connect_unix(path, false), c2 = connect_unix(abs_name, true);
	check(c1 >= 0 && accept(lpath, NULL, NULL) >= 0, "the path listener does not accept: %m");
	check(c2 >= 0 && accept(labs, NULL, NULL) >= 0, "the abstract listener does not accept: %m");
	check(tcp_accepts(l4, AF_INET, p4), "the IPv4 listener on port %u does not accept", p4);
	check(tcp_accepts(l6, AF_INET6, p6), "the IPv6 listener on port %u does not accept", p6);
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	check(sendto(u, "udp", 3, 0, (struct sockaddr *)&ua, sizeof(ua)) == 3 && recv(udp, buf, sizeof(buf), 0) == 3,
	      "the UDP socket does not receive");
	unlink(path);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Socket settings that must survive: classic BPF socket filters
 * (SO_ATTACH_FILTER, on a unix dgram socket with a message queued that
 * the filter would cut, on a UDP socket, locked on one), shutdown() of
 * unix stream ends and of a connected UDP socket, SO_REUSEPORT on two UDP sockets and two TCP
 * listeners sharing a port, and IP_FREEBIND / IPV6_FREEBIND sockets bound
 * to addresses this host does not have.
 *
 * stasis-test: zdtm:sk_settings
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmtst.h"

/* Accepts at most 3 bytes of each packet. */
static struct sock_filter prog[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
	BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 1000, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, 3),
	BPF_STMT(BPF_RET | BPF_K, 0),
};

static void attach(int s, bool lock)
{
	struct sock_fprog p = { .len = sizeof(prog) / sizeof(prog[0]), .filter = prog };
	int one = 1;
	if (setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p)) ||
	    (lock && setsockopt(s, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one))))
		test_die("filter: %m");
}

static void check_filter(int s, const char *what, bool lock)
{
	struct sock_filter got[16];
	socklen_t n = 16;
	int locked = 0;
	socklen_t l = sizeof(locked);
	check(getsockopt(s, SOL_SOCKET, SO_GET_FILTER, got, &n) == 0 && n == sizeof(prog) / sizeof(prog[0]) &&
	      !memcmp(got, prog, sizeof(prog)), "%s: the filter read back differs (%u instructions)", what, n);
	check(getsockopt(s, SOL_SOCKET, SO_LOCK_FILTER, &locked, &l) == 0 && locked == lock, "%s: lock is %d", what,
	      locked);
}

static int inet_sock(int family, int type, const char *ip, uint16_t port, int opt_level, int opt)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t l;
	int s = socket(family, type, 0), one = 1;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, ip, &a->sin_addr);
		l = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &a->sin6_addr);
		l = sizeof(*a);
	}
	if (s < 0 || setsockopt(s, opt_level, opt, &one, sizeof(one)) || bind(s, (struct sockaddr *)&ss, l))
		test_die("%s:%u: %m", ip, port);
	return s;
}

static uint16_t port_of(int s)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	getsockname(s, (struct sockaddr *)&ss, &l);
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void check_opt(int s, int level, int opt, const char *what)
{
	int v = 0;
	socklen_t l = sizeof(v);
	check(getsockopt(s, level, opt, &v, &l) == 0 && v == 1, "%s: the option is off", what);
}

int main(int argc, char **argv)
{
	int ud[2], st[2];
	char buf[32];
	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, ud) || socketpair(AF_UNIX, SOCK_STREAM, 0, st))
		test_die("socketpair: %m");
	if (send(ud[0], "abcdef", 6, 0) != 6)
		test_die("send: %m");
	attach(ud[1], false); /* after the message: it is still whole */
	int udp = inet_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, SOL_SOCKET, SO_BROADCAST);
	attach(udp, true);
	if (write(st[1], "tail", 4) != 4 || shutdown(st[0], SHUT_WR) || shutdown(st[1], SHUT_RD))
		test_die("shutdown: %m");
	int r1 = inet_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, SOL_SOCKET, SO_REUSEPORT);
	int r2 = inet_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", port_of(r1), SOL_SOCKET, SO_REUSEPORT);
	int t1 = inet_sock(AF_INET6, SOCK_STREAM, "::1", 0, SOL_SOCKET, SO_REUSEPORT);
	int t2 = inet_sock(AF_INET6, SOCK_STREAM, "::1", port_of(t1), SOL_SOCKET, SO_REUSEPORT);
	if (listen(t1, 4) || listen(t2, 4))
		test_die("listen: %m");
	int us = inet_sock(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, SOL_SOCKET, SO_BROADCAST);
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(port_of(udp)) };
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(us, (struct sockaddr *)&peer, sizeof(peer)) || shutdown(us, SHUT_WR))
		test_die("udp shutdown: %m");
	int f4 = inet_sock(AF_INET, SOCK_DGRAM, "192.0.2.7", 0, IPPROTO_IP, IP_FREEBIND);
	int f6 = inet_sock(AF_INET6, SOCK_DGRAM, "2001:db8::7", 0, IPPROTO_IPV6, IPV6_FREEBIND);
	int f6t = inet_sock(AF_INET6, SOCK_STREAM, "2001:db8::8", 4321, IPPROTO_IPV6, IPV6_FREEBIND);

	test_ready();
	test_wait();

	ssize_t n = recv(ud[1], buf, sizeof(buf), MSG_DONTWAIT);
	check(n == 6 && !memcmp(buf, "abcdef", 6), "unix dgram: the queued message changed (%zd)", n);
	check_filter(ud[1], "unix dgram", false);
	check(send(ud[0], "uvwxyz", 6, 0) == 6, "unix dgram: send: %m");
	n = recv(ud[1], buf, sizeof(buf), MSG_DONTWAIT);
	check(n == 3 && !memcmp(buf, "uvw", 3), "unix dgram: the filter did not cut a new message (%zd)", n);
	check_filter(udp, "udp", true);
	n = read(st[0], buf, sizeof(buf));
	check(n == 4 && !memcmp(buf, "tail", 4), "shut stream: the queue is gone (%zd)", n);
	check(read(st[1], buf, 1) == 0, "shut stream: no EOF where the peer shut down writing");
	check(send(st[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "shut stream: write after SHUT_WR works");
	check(send(us, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "udp: sending works after SHUT_WR");
	check_opt(r1, SOL_SOCKET, SO_REUSEPORT, "udp reuseport 1");
	check_opt(r2, SOL_SOCKET, SO_REUSEPORT, "udp reuseport 2");
	check(port_of(r1) == port_of(r2) && port_of(t1) == port_of(t2), "reuseport: the ports differ");
	check_opt(t2, SOL_SOCKET, SO_REUSEPORT, "tcp reuseport");
	check_opt(f4, IPPROTO_IP, IP_FREEBIND, "freebind");
	check_opt(f6, IPPROTO_IPV6, IPV6_FREEBIND, "freebind6");
	check(port_of(f6t) == 4321, "freebind6 tcp: port %u", port_of(f6t));
	test_done();
}

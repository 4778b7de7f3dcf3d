/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The inet sockets that are neither TCP nor UDP: ICMP and ICMPv6 "ping"
 * sockets (one bound to an identifier and connected), a raw ICMP socket
 * and a raw IPv6 one, and UDP-Lite sockets (bound, with the checksum
 * coverage option, and connected). After the restore each has its kind,
 * address and peer, and the ping socket still gets its echo replies.
 *
 * Ping sockets need the group in net.ipv4.ping_group_range (for the
 * restorer too): tests/t_sockets.py opens it to group 0 around the test
 * and puts the old value back, whatever happens.
 *
 * stasis-build:  # started by zdtm:sk_raw (tests/t_sockets.py)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmtst.h"

#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#endif

static struct sockaddr_in lo4(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int sock(int family, int type, int proto)
{
	int s = socket(family, type, proto);
	if (s < 0)
		test_die("socket(%d, %d, %d): %m", family, type, proto);
	return s;
}

static int intopt(int s, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(s, level, name, &v, &l);
	return v;
}

static uint16_t port_of(int s)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	if (getsockname(s, (struct sockaddr *)&ss, &l))
		return 0;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* An echo request on a connected ping socket gets its reply. */
static bool pings(int s)
{
	struct icmphdr h = { .type = ICMP_ECHO };
	char buf[64];
	h.un.echo.sequence = htons(7);
	if (send(s, &h, sizeof(h), 0) != sizeof(h))
		return false;
	for (int i = 0; i < 50; i++) {
		ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n >= (ssize_t)sizeof(h))
			return ((struct icmphdr *)buf)->type == ICMP_ECHOREPLY;
		usleep(20000);
	}
	return false;
}

static void check_kind(int s, const char *what, int type, int proto)
{
	check(intopt(s, SOL_SOCKET, SO_TYPE) == type && intopt(s, SOL_SOCKET, SO_PROTOCOL) == proto,
	      "%s: type %d protocol %d", what, intopt(s, SOL_SOCKET, SO_TYPE), intopt(s, SOL_SOCKET, SO_PROTOCOL));
}

int main(int argc, char **argv)
{
	test_init(argc, argv);

	int p4 = sock(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), p6 = sock(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	struct sockaddr_in a = lo4(4242);
	if (bind(p4, (struct sockaddr *)&a, sizeof(a)) || connect(p4, (struct sockaddr *)&a, sizeof(a)))
		test_die("ping: %m");
	int r4 = sock(AF_INET, SOCK_RAW, IPPROTO_ICMP), r6 = sock(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	int ul = sock(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE), cov = 12;
	a = lo4(0);
	if (bind(ul, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(ul, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, &cov, sizeof(cov)))
		test_die("udplite: %m");
	int uc = sock(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
	a = lo4(port_of(ul));
	if (connect(uc, (struct sockaddr *)&a, sizeof(a)))
		test_die("udplite connect: %m");

	test_ready();
	test_wait();

	check_kind(p4, "ping", SOCK_DGRAM, IPPROTO_ICMP);
	check_kind(p6, "ping6", SOCK_DGRAM, IPPROTO_ICMPV6);
	check_kind(r4, "raw", SOCK_RAW, IPPROTO_ICMP);
	check_kind(r6, "raw6", SOCK_RAW, IPPROTO_ICMPV6);
	check_kind(ul, "udplite", SOCK_DGRAM, IPPROTO_UDPLITE);
	check(port_of(p4) == 4242, "ping: identifier %u", port_of(p4));
	check(pings(p4), "ping: no echo reply");
	char buf[8];
	check(send(uc, "lite", 4, 0) == 4, "udplite: send: %s", strerror(errno));
	usleep(10000);
	ssize_t n = recv(ul, buf, sizeof(buf), MSG_DONTWAIT);
	check(n == 4 && !memcmp(buf, "lite", 4), "udplite: the datagram did not come (%zd)", n);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Datagrams queued on a UDP socket, kept with their senders' addresses.
 *
 * Dump peeks at them (the target's queue stays as it was) with the
 * address each came from. Restore cannot ask the senders to send again,
 * and a socket of ours bound to a sender's address would clash with the
 * sender's own (still alive, or restored in the tree): so each datagram
 * is written as a whole IP packet through a raw socket (IP_HDRINCL),
 * from the sender's address and port to the restored socket's, and the
 * kernel delivers it locally like any other. This is done before a
 * connected socket connects, which would drop datagrams from others. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/rawpkt.h"
#include "engine/sockets.h"
#include "util/cleanup.h"
#include "util/log.h"

#define UDP_MAX_PAYLOAD 65535

static int add_msg(struct sk_rec *s, const uint8_t *data, size_t len, const struct sk_addr *from, size_t *cap)
{
	if (s->nmsgs >= SK_MAX_MSGS || s->queue_len + len > SK_MAX_QUEUE)
		return -EFBIG;
	if (s->nmsgs == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		uint32_t *l = realloc(s->msg_len, n * sizeof(*l));
		if (l)
			s->msg_len = l;
		struct sk_addr *a = l ? realloc(s->msg_from, n * sizeof(*a)) : NULL;
		if (!a)
			return -ENOMEM;
		s->msg_from = a;
		*cap = n;
	}
	uint8_t *q = realloc(s->queue, s->queue_len + len + 1);
	if (!q)
		return -ENOMEM;
	s->queue = q;
	memcpy(q + s->queue_len, data, len);
	s->queue_len += len;
	s->msg_len[s->nmsgs] = (uint32_t)len;
	s->msg_from[s->nmsgs++] = *from;
	return 0;
}

/* Walks the queue with the peek offset (each whole datagram moves it on). */
static int peek_all(int sk, struct sk_rec *s)
{
	_cleanup_free_ uint8_t *buf = malloc(UDP_MAX_PAYLOAD);
	size_t cap = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct sk_addr from = { .len = sizeof(from.ss) };
		struct iovec iov = { buf, UDP_MAX_PAYLOAD };
		struct msghdr mh = { .msg_name = &from.ss, .msg_namelen = from.len, .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n > UDP_MAX_PAYLOAD || mh.msg_namelen > sizeof(from.ss))
			return -EMSGSIZE;
		from.len = mh.msg_namelen;
		int r = add_msg(s, buf, (size_t)n, &from, &cap);
		if (r < 0)
			return r;
	}
}

int sk_udp_collect_queue(int sk, struct sk_rec *s)
{
	int old, zero = 0;
	socklen_t l = sizeof(old);
	if (getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &old, &l) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return -errno;
	int r = peek_all(sk, s);
	/* The copy shares the socket: the target's peek offset is put back. */
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && r >= 0)
		r = -errno;
	return r;
}

/* --- restore --- */

/* The UDP header's checksum over the IPv6 pseudo header (required there). */
static uint16_t udp6_csum(const struct in6_addr *src, const struct in6_addr *dst, const struct udphdr *u,
			  const uint8_t *data, size_t len)
{
	uint32_t sum = rawpkt_csum_add(0, src, 16);
	sum = rawpkt_csum_add(sum, dst, 16);
	sum += (uint32_t)(len + sizeof(*u)) + IPPROTO_UDP;
	sum = rawpkt_csum_add(sum, u, sizeof(*u));
	uint16_t c = rawpkt_csum_fold(rawpkt_csum_add(sum, data, len));
	return htons(c ? c : 0xffff);
}

/* Where the datagrams go: the socket's address, loopback for a wildcard. */
static void dest_of(const struct sk_rec *s, struct sk_addr *to)
{
	*to = s->name;
	if (s->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&to->ss;
		if (a->sin_addr.s_addr == htonl(INADDR_ANY))
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&to->ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
			a->sin6_addr = in6addr_loopback;
	}
}

static int send4(int raw, const struct sk_addr *to, const struct sk_addr *from, const uint8_t *p, size_t len,
		 uint8_t *pkt)
{
	const struct sockaddr_in *d = (const struct sockaddr_in *)&to->ss, *f = (const struct sockaddr_in *)&from->ss;
	struct iphdr ip = { .version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_UDP,
			    .tot_len = htons((uint16_t)(sizeof(ip) + sizeof(struct udphdr) + len)),
			    .saddr = f->sin_addr.s_addr, .daddr = d->sin_addr.s_addr };
	struct udphdr u = { .source = f->sin_port, .dest = d->sin_port, .len = htons((uint16_t)(sizeof(u) + len)) };
	memcpy(pkt, &ip, sizeof(ip));
	memcpy(pkt + sizeof(ip), &u, sizeof(u)); /* checksum 0: none, allowed over IPv4 */
	memcpy(pkt + sizeof(ip) + sizeof(u), p, len);
	ssize_t n = sendto(raw, pkt, sizeof(ip) + sizeof(u) + len, 0, (const struct sockaddr *)d, sizeof(*d));
	return n < 0 ? -errno : 0;
}

static int send6(int raw, const struct sk_addr *to, const struct sk_addr *from, const uint8_t *p, size_t len,
		 uint8_t *pkt)
{
	const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&to->ss, *f = (const struct sockaddr_in6 *)&from->ss;
	struct ip6_hdr ip = { .ip6_src = f->sin6_addr, .ip6_dst = d->sin6_addr };
	/* One by one: these name members of one union (a designated
	 * initializer would keep only the last). */
	ip.ip6_flow = htonl(6u << 28);
	ip.ip6_plen = htons((uint16_t)(sizeof(struct udphdr) + len));
	ip.ip6_nxt = IPPROTO_UDP;
	ip.ip6_hlim = 64;
	struct udphdr u = { .source = f->sin6_port, .dest = d->sin6_port, .len = htons((uint16_t)(sizeof(u) + len)) };
	u.check = udp6_csum(&f->sin6_addr, &d->sin6_addr, &u, p, len);
	memcpy(pkt, &ip, sizeof(ip));
	memcpy(pkt + sizeof(ip), &u, sizeof(u));
	memcpy(pkt + sizeof(ip) + sizeof(u), p, len);
	struct sockaddr_in6 dst = *d;
	dst.sin6_port = 0; /* raw sockets take no port */
	ssize_t n = sendto(raw, pkt, sizeof(ip) + sizeof(u) + len, 0, (const struct sockaddr *)&dst, sizeof(dst));
	return n < 0 ? -errno : 0;
}

/* Datagrams queued on fd, walked with the peek offset. */
static int count_queued(int fd)
{
	int old, zero = 0, n = 0;
	socklen_t l = sizeof(old);
	struct msghdr mh = { 0 };
	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, &l) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return -errno;
	while (n < (int)SK_MAX_MSGS && recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0)
		n++;
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0)
		return -errno;
	return n;
}

int sk_udp_fill(int fd, const struct sk_rec *s)
{
	struct sk_addr to;
	size_t off = 0;
	if (!s->nmsgs)
		return 0;
	if (!s->msg_from || !s->name.len)
		return -EINVAL;
	dest_of(s, &to);
	_cleanup_close_ int raw = rawpkt_open(s->family);
	_cleanup_free_ uint8_t *pkt = malloc(sizeof(struct ip6_hdr) + sizeof(struct udphdr) + UDP_MAX_PAYLOAD);
	if (raw < 0 || !pkt)
		return raw < 0 ? raw : -ENOMEM;
	for (size_t i = 0; i < s->nmsgs; i++) {
		int r = s->family == AF_INET ? send4(raw, &to, &s->msg_from[i], s->queue + off, s->msg_len[i], pkt)
					     : send6(raw, &to, &s->msg_from[i], s->queue + off, s->msg_len[i], pkt);
		if (r < 0)
			return r;
		off += s->msg_len[i];
	}
	/* Delivery is asynchronous: wait until all are queued on fd. */
	for (int tries = 0; tries < 2000; tries++) {
		int r = count_queued(fd);
		if (r < 0 || (size_t)r >= s->nmsgs)
			return r < 0 ? r : 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

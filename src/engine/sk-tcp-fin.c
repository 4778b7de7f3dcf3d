/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The peer's FIN, given back to a restored TCP socket: see sk-tcp-fin.h.
 *
 * The segment: IP header (the raw socket is IPPROTO_RAW, so the header
 * is ours, with the peer's address as source), then TCP with FIN and ACK
 * at the FIN's sequence number, acknowledging what the peer had
 * acknowledged (no new data of ours: nothing moves in the send queue),
 * with the peer's window. With timestamps, the option carries TSval 0:
 * the restored socket has no recent timestamp of the peer yet (0), so
 * PAWS takes it, and keeping 0 as the recent one lets the peer's real
 * timestamps, whatever its clock says, through afterwards (Linux treats
 * a recent timestamp of 0 as none). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/netlock.h"
#include "engine/rawpkt.h"
#include "engine/sk-tcp-fin.h"
#include "util/cleanup.h"

#define TCP_HDR 20
#define TS_OPT 12 /* NOP, NOP, kind 8, length 10, TSval, TSecr */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16)), put16(p + 2, (uint16_t)v);
}

/* The TCP header (and option) at p, checksum left 0. */
static size_t build_tcp(const struct tcp_fin_seg *s, uint8_t *p)
{
	size_t len = TCP_HDR + (s->tstamp ? TS_OPT : 0);
	memset(p, 0, len);
	put16(p, s->sport);
	put16(p + 2, s->dport);
	put32(p + 4, s->seq);
	put32(p + 8, s->ack);
	p[12] = (uint8_t)(len / 4) << 4;
	p[13] = 0x11; /* FIN | ACK */
	put16(p + 14, s->win);
	if (s->tstamp) {
		p[20] = p[21] = 1; /* NOP NOP */
		p[22] = 8, p[23] = 10; /* TSval, TSecr: 0 (see the top) */
	}
	return len;
}

/* The checksum over the pseudo header: addresses, protocol, length. */
static uint16_t tcp_csum(const struct tcp_fin_seg *s, const uint8_t *tcp, size_t len)
{
	size_t alen = s->family == AF_INET ? 4 : 16;
	uint32_t sum = rawpkt_csum_add(0, s->src, alen);
	sum = rawpkt_csum_add(sum, s->dst, alen);
	sum += IPPROTO_TCP + (uint32_t)len;
	return rawpkt_csum_fold(rawpkt_csum_add(sum, tcp, len));
}

static size_t build_ip(const struct tcp_fin_seg *s, uint8_t *p, size_t tcp_len)
{
	if (s->family == AF_INET) {
		memset(p, 0, 20);
		p[0] = 0x45; /* version 4, 5 words */
		put16(p + 2, (uint16_t)(20 + tcp_len));
		p[8] = 64, p[9] = IPPROTO_TCP; /* the kernel fills the id and checksum */
		memcpy(p + 12, s->src, 4);
		memcpy(p + 16, s->dst, 4);
		return 20;
	}
	memset(p, 0, 40);
	p[0] = 0x60;
	put16(p + 4, (uint16_t)tcp_len);
	p[6] = IPPROTO_TCP, p[7] = 64;
	memcpy(p + 8, s->src, 16);
	memcpy(p + 24, s->dst, 16);
	return 40;
}

int tcp_fin_build(const struct tcp_fin_seg *s, uint8_t *buf, size_t size)
{
	if (s->family != AF_INET && s->family != AF_INET6)
		return -EAFNOSUPPORT;
	size_t ip_len = s->family == AF_INET ? 20 : 40, tcp_len = TCP_HDR + (s->tstamp ? TS_OPT : 0);
	if (size < ip_len + tcp_len)
		return -ENOSPC;
	build_tcp(s, buf + ip_len);
	put16(buf + ip_len + 16, tcp_csum(s, buf + ip_len, tcp_len));
	build_ip(s, buf, tcp_len);
	return (int)(ip_len + tcp_len);
}

int tcp_fin_addrs(const void *name, const void *peer_name, int family, struct tcp_fin_seg *seg)
{
	if (family == AF_INET) {
		const struct sockaddr_in *a = name, *b = peer_name;
		seg->family = AF_INET;
		memcpy(seg->dst, &a->sin_addr, 4), memcpy(seg->src, &b->sin_addr, 4);
		seg->dport = ntohs(a->sin_port), seg->sport = ntohs(b->sin_port);
		return 0;
	}
	if (family != AF_INET6)
		return -EAFNOSUPPORT;
	const struct sockaddr_in6 *a = name, *b = peer_name;
	bool m = IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
	if (m != IN6_IS_ADDR_V4MAPPED(&b->sin6_addr))
		return -EAFNOSUPPORT;
	seg->family = m ? AF_INET : AF_INET6;
	memcpy(seg->dst, a->sin6_addr.s6_addr + (m ? 12 : 0), m ? 4 : 16);
	memcpy(seg->src, b->sin6_addr.s6_addr + (m ? 12 : 0), m ? 4 : 16);
	seg->dport = ntohs(a->sin6_port), seg->sport = ntohs(b->sin6_port);
	seg->scope_id = a->sin6_scope_id;
	return 0;
}

/* One copy of the segment through a raw socket with the lock's mark. */
static int send_seg(int raw, const struct tcp_fin_seg *s, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_scope_id = s->scope_id };
	memcpy(&in.sin_addr, s->dst, 4);
	memcpy(&in6.sin6_addr, s->dst, 16);
	const struct sockaddr *to = s->family == AF_INET ? (const struct sockaddr *)&in : (const struct sockaddr *)&in6;
	socklen_t tolen = s->family == AF_INET ? sizeof(in) : sizeof(in6);
	return sendto(raw, pkt, len, 0, to, tolen) == (ssize_t)len ? 0 : -errno;
}

static int tcp_state_of(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	return getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &l) < 0 ? -errno : ti.tcpi_state;
}

int tcp_fin_inject(int fd, const struct tcp_fin_seg *seg, int want_state)
{
	uint8_t pkt[TCP_FIN_SEG_MAX];
	uint32_t mark = NETLOCK_PASS_MARK;
	int len = tcp_fin_build(seg, pkt, sizeof(pkt));
	if (len < 0)
		return len;
	_cleanup_close_ int raw = rawpkt_open(seg->family);
	if (raw < 0)
		return raw;
	if (setsockopt(raw, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		return -errno;
	/* Loopback delivery normally happens before sendto returns; a
	 * socket busy at that moment takes it from its backlog soon after.
	 * A lost copy is sent again: a second FIN is only acknowledged. */
	for (int i = 0, sent = 0; i < 600; i++) {
		int st = tcp_state_of(fd), r;
		if (st < 0 || st == want_state)
			return st < 0 ? st : sent;
		if (i % 50 == 0 && (r = send_seg(raw, seg, pkt, (size_t)len)) < 0)
			return r;
		sent += i % 50 == 0;
		nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
	}
	return -ETIMEDOUT;
}

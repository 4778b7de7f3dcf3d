/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The peer's FIN segment (engine/sk-tcp-fin.c) and the image record of a
 * connection that got one (socket.tcp.peer_fin_seq, engine/sk-tcp.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "engine/sk-tcp-fin.h"
#include "engine/sockets.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The ones' complement sum over the pseudo header and the segment: a
 * segment with a right checksum sums to 0xffff. */
static uint16_t verify(int family, const uint8_t *pkt, size_t ip_len, size_t len)
{
	size_t alen = family == AF_INET ? 4 : 16;
	const uint8_t *src = pkt + (family == AF_INET ? 12 : 8);
	uint32_t sum = IPPROTO_TCP + (uint32_t)(len - ip_len);
	for (size_t i = 0; i < 2 * alen; i += 2)
		sum += (uint32_t)src[i] << 8 | src[i + 1];
	for (size_t i = ip_len; i < len; i += 2)
		sum += (uint32_t)pkt[i] << 8 | pkt[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void test_build_v4(void **state)
{
	struct tcp_fin_seg s = { .family = AF_INET, .sport = 50000, .dport = 8080, .seq = 0xfffffff0u,
				 .ack = 12345, .win = 512, .tstamp = true };
	uint8_t pkt[TCP_FIN_SEG_MAX];
	inet_pton(AF_INET, "10.1.2.3", s.src);
	inet_pton(AF_INET, "10.1.2.4", s.dst);
	int len = tcp_fin_build(&s, pkt, sizeof(pkt));
	assert_int_equal(len, 20 + 32);
	assert_int_equal(pkt[0], 0x45);
	assert_int_equal(pkt[9], IPPROTO_TCP);
	assert_memory_equal(pkt + 12, s.src, 4);
	assert_int_equal(pkt[20] << 8 | pkt[21], 50000);
	assert_int_equal(get32(pkt + 24), 0xfffffff0u);
	assert_int_equal(get32(pkt + 28), 12345);
	assert_int_equal(pkt[32] >> 4, 8);   /* 32-byte header: the timestamp option */
	assert_int_equal(pkt[33], 0x11);     /* FIN | ACK */
	assert_int_equal(pkt[34] << 8 | pkt[35], 512);
	assert_int_equal(pkt[42], 8);        /* TCPOPT_TIMESTAMP */
	assert_int_equal(get32(pkt + 44), 0); /* TSval 0: see sk-tcp-fin.c */
	assert_int_equal(verify(AF_INET, pkt, 20, (size_t)len), 0xffff);
	assert_int_equal(tcp_fin_build(&s, pkt, 40), -ENOSPC);
}

static void test_build_v6(void **state)
{
	struct tcp_fin_seg s = { .family = AF_INET6, .sport = 1, .dport = 65535, .seq = 7, .ack = 9, .win = 65535 };
	uint8_t pkt[TCP_FIN_SEG_MAX];
	inet_pton(AF_INET6, "fd00:1::2", s.src);
	inet_pton(AF_INET6, "fd00:1::1", s.dst);
	int len = tcp_fin_build(&s, pkt, sizeof(pkt));
	assert_int_equal(len, 40 + 20);
	assert_int_equal(pkt[0] >> 4, 6);
	assert_int_equal(pkt[4] << 8 | pkt[5], 20); /* payload length */
	assert_int_equal(pkt[6], IPPROTO_TCP);
	assert_memory_equal(pkt + 24, s.dst, 16);
	assert_int_equal(pkt[52] >> 4, 5);
	assert_int_equal(verify(AF_INET6, pkt, 40, (size_t)len), 0xffff);
	s.family = AF_UNIX;
	assert_int_equal(tcp_fin_build(&s, pkt, sizeof(pkt)), -EAFNOSUPPORT);
}

static void test_addrs(void **state)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_port = htons(40000) };
	struct tcp_fin_seg s = { 0 };
	uint8_t v4[4];
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &a.sin6_addr);
	inet_pton(AF_INET6, "::ffff:10.0.0.2", &b.sin6_addr);
	assert_int_equal(tcp_fin_addrs(&a, &b, AF_INET6, &s), 0);
	assert_int_equal(s.family, AF_INET); /* on the wire */
	inet_pton(AF_INET, "10.0.0.1", v4);
	assert_memory_equal(s.dst, v4, 4);
	assert_int_equal(s.dport, 80);
	assert_int_equal(s.sport, 40000);
	inet_pton(AF_INET6, "fd00::2", &b.sin6_addr);
	assert_int_equal(tcp_fin_addrs(&a, &b, AF_INET6, &s), -EAFNOSUPPORT);
	inet_pton(AF_INET6, "fd00::1", &a.sin6_addr);
	assert_int_equal(tcp_fin_addrs(&a, &b, AF_INET6, &s), 0);
	assert_int_equal(s.family, AF_INET6);
}

/* A socket.tcp record of state st, recvq "abc" from rcv_seq 100, with
 * peer_fin_seq when fin is not negative. */
static int parse(const char *st, long fin)
{
	char text[1024], extra[64] = "";
	if (fin >= 0)
		snprintf(extra, sizeof(extra), ", \"peer_fin_seq\": %ld", fin);
	snprintf(text, sizeof(text),
		 "{\"tcp\": {\"state\": \"%s\", \"snd_seq\": 1, \"rcv_seq\": 100, \"mss\": 1460, \"sack\": true, "
		 "\"tstamp\": true, \"ts\": 5, \"wscale\": true, \"snd_wscale\": 7, \"rcv_wscale\": 7, \"snd_wl1\": 100, "
		 "\"snd_wnd\": 65536, \"max_window\": 65536, \"rcv_wnd\": 65536, \"rcv_wup\": 100, \"sendq\": \"\", "
		 "\"unsent\": 0, \"recvq\": \"616263\", \"cork\": 0%s}}", st, extra);
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	assert_non_null(j);
	struct sk_tcp *t = NULL;
	int r = sk_tcp_from_json(j, &t);
	sk_tcp_free(t);
	json_decref(j);
	return r;
}

static void test_record(void **state)
{
	assert_int_equal(parse("established", -1), 0);
	assert_int_equal(parse("close_wait", 103), 0);
	assert_int_equal(parse("last_ack", 103), 0);
	assert_int_equal(parse("closing", 103), 0);
	assert_int_equal(parse("close_wait", -1), -EBADMSG);  /* the state says a FIN came */
	assert_int_equal(parse("close_wait", 104), -EBADMSG); /* not after the queue */
	assert_int_equal(parse("established", 103), -EBADMSG);
	assert_int_equal(parse("fin_wait2", 103), -EBADMSG);
	assert_int_equal(parse("syn_sent", -1), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_v4),
		cmocka_unit_test(test_build_v6),
		cmocka_unit_test(test_addrs),
		cmocka_unit_test(test_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

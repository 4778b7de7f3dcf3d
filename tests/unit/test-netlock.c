/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network lock's pure parts: /proc/net/tcp{,6} text to connections,
 * the nftables commands made of them, and the manifest record, whose
 * reader must refuse anything that could smuggle text into nftables. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "engine/netlock.h"

/* Captured from a host: a listener, one established connection each way
 * of 127.0.0.1:8080 (inodes 1001 and 1002), a TIME_WAIT without inode. */
static const char tcp4[] =
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1000 1 0 100 0 0 10 0\n"
	"   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 20 4 30 10 -1\n"
	"   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 20 4 30 10 -1\n"
	"   3: 0100007F:C351 0100007F:1F90 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0\n";

/* An IPv4 connection on an IPv6 socket (::ffff:10.0.0.1 -> ::ffff:10.0.0.2)
 * and a real IPv6 one (::1 -> ::1), CLOSE_WAIT. */
static const char tcp6[] =
	"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 0000000000000000FFFF00000100000A:0050 0000000000000000FFFF00000200000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0 20 4 30 10 -1\n"
	"   1: 00000000000000000000000001000000:0050 00000000000000000000000001000000:D432 08 00000000:00000000 00:00000000 00000000     0        0 2002 1 0 20 4 30 10 -1\n";

static void test_parse(void **state)
{
	const uint64_t inos[] = { 1000, 1001, 2001, 2002 };
	struct netlock_conn *v = NULL;
	size_t n = 0;
	char a[INET6_ADDRSTRLEN];
	assert_int_equal(netlock_parse_proc(tcp4, sizeof(tcp4) - 1, AF_INET, inos, 4, &v, &n), 0);
	assert_int_equal(n, 1); /* the listener is no connection; 1002 is not ours */
	assert_int_equal(v[0].family, AF_INET);
	assert_string_equal(inet_ntop(AF_INET, v[0].src, a, sizeof(a)), "127.0.0.1");
	assert_int_equal(v[0].sport, 8080);
	assert_int_equal(v[0].dport, 50000);
	assert_int_equal(netlock_parse_proc(tcp6, sizeof(tcp6) - 1, AF_INET6, inos, 4, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[1].family, AF_INET); /* unmapped */
	assert_string_equal(inet_ntop(AF_INET, v[1].src, a, sizeof(a)), "10.0.0.1");
	assert_string_equal(inet_ntop(AF_INET, v[1].dst, a, sizeof(a)), "10.0.0.2");
	assert_int_equal(v[2].family, AF_INET6);
	assert_string_equal(inet_ntop(AF_INET6, v[2].dst, a, sizeof(a)), "::1");
	assert_int_equal(v[2].dport, 0xd432);
	free(v);

	v = NULL, n = 0;
	static const char bad[] = "   1: 0100007F:1F9 0100007F:C350 01 0:0 00:0 0 0 0 1001\n";
	assert_int_equal(netlock_parse_proc(bad, sizeof(bad) - 1, AF_INET, inos, 4, &v, &n), -EBADMSG);
	free(v);
}

static void test_script(void **state)
{
	struct netlock_conn c = { .family = AF_INET, .sport = 8080, .dport = 50000 };
	inet_pton(AF_INET, "127.0.0.1", c.src);
	inet_pton(AF_INET, "10.1.2.3", c.dst);
	char *s = netlock_script("stasis-1-2", &c, 1);
	assert_non_null(s);
	assert_non_null(strstr(s, "add table inet stasis-1-2 { flags owner; }\n"));
	assert_non_null(strstr(s, "hook input priority -300"));
	assert_non_null(strstr(s, "hook output priority -300"));
	/* both directions, as the output and the input hook see them */
	assert_non_null(strstr(s, "127.0.0.1 . 8080 . 10.1.2.3 . 50000"));
	assert_non_null(strstr(s, "10.1.2.3 . 50000 . 127.0.0.1 . 8080"));
	assert_null(strstr(s, "add element inet stasis-1-2 c6"));
	/* restore's own segments (NETLOCK_PASS_MARK) pass, ahead of the drops */
	const char *pass = strstr(s, "add rule inet stasis-1-2 input meta mark 0x57a5f1e0 accept\n");
	assert_non_null(pass);
	assert_true(pass < strstr(s, "add rule inet stasis-1-2 input ip saddr"));
	free(s);
}

/* A container's connections as the host sees them: routed, its own, and
 * bridged between two containers. */
static void test_outer_script(void **state)
{
	(void)state;
	struct netlock_conn c = { .family = AF_INET, .sport = 6379, .dport = 40000 };
	inet_pton(AF_INET, "172.30.79.17", c.src);
	inet_pton(AF_INET, "172.30.79.18", c.dst);
	char *s = netlock_outer_script("stasis-outer-1-2", &c, 1);
	assert_non_null(s);
	assert_non_null(strstr(s, "add table inet stasis-outer-1-2 { flags owner; }\n"));
	assert_non_null(strstr(s, "add table bridge stasis-outer-1-2 { flags owner; }\n"));
	assert_non_null(strstr(s, "add chain inet stasis-outer-1-2 forward { type filter hook forward priority -300;"));
	assert_non_null(strstr(s, "add chain bridge stasis-outer-1-2 forward { type filter hook forward priority -300;"));
	assert_non_null(strstr(s, "add rule bridge stasis-outer-1-2 forward ip saddr . tcp sport"));
	assert_non_null(strstr(s, "add element bridge stasis-outer-1-2 c4 { 172.30.79.17 . 6379 . 172.30.79.18 . 40000, "
				  "172.30.79.18 . 40000 . 172.30.79.17 . 6379 }"));
	assert_null(strstr(s, "add chain bridge stasis-outer-1-2 input"));
	free(s);
}

static int from(const char *text, struct netlock *l)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	assert_non_null(j);
	int r = netlock_from_json(j, l);
	json_decref(j);
	return r;
}

static void test_json(void **state)
{
	struct netlock l;
	assert_int_equal(netlock_from_json(NULL, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(from("{\"table\":\"stasis-image-12-34\",\"locked_at_ns\":5,\"conns\":[{\"src\":\"::1\","
			      "\"sport\":1,\"dst\":\"::2\",\"dport\":65535}]}", &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.conns[0].family, AF_INET6);
	assert_string_equal(l.image_table, "stasis-image-12-34");
	netlock_free(&l);
	static const char *const bad[] = {
		"{\"table\":\"stasis-image-1-2; flush ruleset\",\"locked_at_ns\":5,\"conns\":[]}",
		"{\"table\":\"stasis-1-2\",\"locked_at_ns\":5,\"conns\":[]}",
		"{\"table\":\"stasis-image--2\",\"locked_at_ns\":5,\"conns\":[]}",
		"{\"locked_at_ns\":5,\"conns\":[{\"src\":\"1.2.3.4 . 1\",\"sport\":1,\"dst\":\"1.2.3.4\",\"dport\":1}]}",
		"{\"locked_at_ns\":5,\"conns\":[{\"src\":\"1.2.3.4\",\"sport\":0,\"dst\":\"1.2.3.4\",\"dport\":1}]}",
		"{\"locked_at_ns\":5,\"conns\":[{\"src\":\"1.2.3.4\",\"sport\":1,\"dst\":\"1.2.3.4\",\"dport\":65536}]}",
		"{\"locked_at_ns\":5,\"conns\":[{\"src\":\"1.2.3.4\",\"sport\":1,\"dst\":\"::1\",\"dport\":1}]}",
		"{\"locked_at_ns\":5}",
		"[]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(from(bad[i], &l), -EBADMSG);
		netlock_free(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_script),
		cmocka_unit_test(test_outer_script),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Datagrams queued on UDP sockets (IPv4 and IPv6 on loopback) from
 * several senders, sizes 0 to 60000, and a connected UDP socket with
 * datagrams from its peer. After the restore every datagram is read
 * back in order with its sender's address and port, the queues are then
 * empty, and the connected socket still has its peer.
 *
 * stasis-test: zdtm:udp_queue
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmtst.h"

#define NSIZES 5
static const size_t sizes[NSIZES] = { 0, 1, 1000, 60000, 7 };

static socklen_t loopback(int fam, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_addr = in6addr_loopback;
	return sizeof(*a);
}

struct rx {
	int fam, fd;
	struct sockaddr_storage addr, from[2];
	socklen_t len;
};

static int bound(int fam, struct sockaddr_storage *ss, socklen_t *l)
{
	*l = loopback(fam, ss);
	int fd = socket(fam, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)ss, *l) || getsockname(fd, (struct sockaddr *)ss, l))
		test_die("udp socket: %m");
	return fd;
}

/* Two senders (one bound, one bound by its first send), NSIZES each,
 * interleaved. */
static void setup(struct rx *r, uint8_t *buf)
{
	struct sockaddr_storage tmp;
	socklen_t tl;
	int s[2];
	r->fd = bound(r->fam, &r->addr, &r->len);
	s[0] = bound(r->fam, &tmp, &tl);
	s[1] = socket(r->fam, SOCK_DGRAM, 0);
	for (size_t i = 0; i < NSIZES; i++)
		for (int k = 0; k < 2; k++) {
			test_fill(buf, sizes[i], i * 2 + (size_t)k + (size_t)r->fam * 100);
			if (sendto(s[k], buf, sizes[i], 0, (struct sockaddr *)&r->addr, r->len) != (ssize_t)sizes[i])
				test_die("sendto: %m");
		}
	for (int k = 0; k < 2; k++) {
		struct sockaddr_storage me;
		tl = sizeof(me);
		if (getsockname(s[k], (struct sockaddr *)&me, &tl))
			test_die("getsockname: %m");
		/* The receiver sees loopback, also from the wildcard-bound one. */
		r->from[k] = r->addr;
		if (r->fam == AF_INET)
			((struct sockaddr_in *)&r->from[k])->sin_port = ((struct sockaddr_in *)&me)->sin_port;
		else
			((struct sockaddr_in6 *)&r->from[k])->sin6_port = ((struct sockaddr_in6 *)&me)->sin6_port;
	}
}

static void verify(struct rx *r, uint8_t *buf, uint8_t *want)
{
	for (size_t i = 0; i < NSIZES; i++)
		for (int k = 0; k < 2; k++) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(r->fd, buf, 65536, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
			test_fill(want, sizes[i], i * 2 + (size_t)k + (size_t)r->fam * 100);
			check(n == (ssize_t)sizes[i] && !memcmp(buf, want, sizes[i]),
			      "family %d: datagram %zu/%d: got %zd bytes, want %zu (%m)", r->fam, i, k, n, sizes[i]);
			check(fl == r->len && !memcmp(&from, &r->from[k], fl), "family %d: datagram %zu/%d: wrong sender",
			      r->fam, i, k);
		}
	check(recv(r->fd, buf, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "family %d: more datagrams than sent",
	      r->fam);
}

int main(int argc, char **argv)
{
	uint8_t *buf = malloc(65536), *want = malloc(65536);
	struct rx r[2] = { { .fam = AF_INET }, { .fam = AF_INET6 } };
	struct sockaddr_storage pa, ca, got;
	socklen_t pl, cl, gl = sizeof(got);
	test_init(argc, argv);
	if (!buf || !want)
		test_die("malloc");
	for (int i = 0; i < 2; i++)
		setup(&r[i], buf);
	/* A connected pair: c only takes datagrams from p. */
	int p = bound(AF_INET, &pa, &pl), c = bound(AF_INET, &ca, &cl);
	if (connect(c, (struct sockaddr *)&pa, pl) || connect(p, (struct sockaddr *)&ca, cl) ||
	    send(p, "from the peer", 13, 0) != 13)
		test_die("connected pair: %m");
	test_ready();
	test_wait();
	for (int i = 0; i < 2; i++)
		verify(&r[i], buf, want);
	check(recv(c, buf, 64, MSG_DONTWAIT) == 13 && !memcmp(buf, "from the peer", 13),
	      "the connected socket lost its datagram");
	check(getpeername(c, (struct sockaddr *)&got, &gl) == 0 && gl == pl && !memcmp(&got, &pa, pl),
	      "the connected socket lost its peer");
	check(send(c, "back", 4, 0) == 4 && recv(p, buf, 64, 0) == 4, "the connected socket cannot send: %m");
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unix sockets at the edges the first socket code tripped on:
 *  - a seqpacket socket whose peer was closed, with messages queued (one
 *    of them empty): the queue comes back, then EOF;
 *  - sockets that never connected (stream, seqpacket, dgram, bound or
 *    not), whose queue cannot be read;
 *  - two dgram sockets bound to one path: the first one's file unlinked,
 *    the second bound there after; a third dgram socket bound to a path
 *    that was unlinked. Each keeps its name and queue, and the path leads
 *    to the second one only;
 *  - an unbound dgram socket that disconnected (AF_UNSPEC) from its pair
 *    and then got messages from the other end, closed since: the messages
 *    come back, and it stays unconnected.
 *
 * stasis-test: zdtm:unix_edges
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmtst.h"

static socklen_t addr_of(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", path);
	return sizeof(*a);
}

static int bound_dgram(const char *path)
{
	struct sockaddr_un a;
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, addr_of(&a, path)))
		test_die("bind %s: %m", path);
	return s;
}

static void send_to(const char *path, const char *msg)
{
	struct sockaddr_un a;
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&a, addr_of(&a, path)) != (ssize_t)strlen(msg))
		test_die("send to %s: %m", path);
	close(s);
}

static void expect_msg(int s, const char *what, const char *msg)
{
	char buf[64];
	ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	check(n == (ssize_t)strlen(msg) && !memcmp(buf, msg, (size_t)n), "%s: expected '%s', got %zd bytes (%s)",
	      what, msg, n, n < 0 ? strerror(errno) : "");
}

static void expect_name(int s, const char *what, const char *path)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	check(getsockname(s, (struct sockaddr *)&a, &l) == 0 && l > sizeof(sa_family_t) && !strcmp(a.sun_path, path),
	      "%s: its name is not %s any more", what, path);
}

static int seqpacket_closed_peer(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) || send(sv[0], "one", 3, 0) != 3 ||
	    send(sv[0], "", 0, 0) != 0 || send(sv[0], "three", 5, 0) != 5)
		test_die("seqpacket: %m");
	close(sv[0]);
	return sv[1];
}

static void check_seqpacket(int s)
{
	char buf[16];
	expect_msg(s, "seqpacket", "one");
	ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	check(n == 0, "seqpacket: expected the empty message, got %zd", n);
	expect_msg(s, "seqpacket", "three");
	n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	check(n == 0, "seqpacket: expected EOF after the queue, got %zd (%s)", n, n < 0 ? strerror(errno) : "");
}

static int unbound_with_queue(void)
{
	int sv[2];
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || connect(sv[0], &unspec, sizeof(unspec)) ||
	    send(sv[1], "unb1", 4, 0) != 4 || send(sv[1], "unb2", 4, 0) != 4)
		test_die("unbound dgram: %m");
	close(sv[1]);
	return sv[0];
}

int main(int argc, char **argv)
{
	char reused[108], gone[108];
	struct stat st;
	test_init(argc, argv);
	snprintf(reused, sizeof(reused), "/tmp/stasis-zdtm-%d-reused.sock", getpid());
	snprintf(gone, sizeof(gone), "/tmp/stasis-zdtm-%d-gone.sock", getpid());
	unlink(reused);
	unlink(gone);

	int seq = seqpacket_closed_peer(), unb = unbound_with_queue();
	int lone[3] = { socket(AF_UNIX, SOCK_STREAM, 0), socket(AF_UNIX, SOCK_SEQPACKET, 0),
			socket(AF_UNIX, SOCK_DGRAM, 0) };
	int first = bound_dgram(reused);
	send_to(reused, "to-first");
	unlink(reused);
	int second = bound_dgram(reused);
	send_to(reused, "to-second");
	int g = bound_dgram(gone);
	send_to(gone, "to-gone");
	unlink(gone);
	if (lone[0] < 0 || lone[1] < 0 || lone[2] < 0 || stat(reused, &st))
		test_die("setup: %m");

	test_ready();
	test_wait();

	check_seqpacket(seq);
	expect_msg(unb, "unbound", "unb1");
	expect_msg(unb, "unbound", "unb2");
	struct sockaddr_un pa;
	socklen_t pl = sizeof(pa);
	check(getpeername(unb, (struct sockaddr *)&pa, &pl) < 0 && errno == ENOTCONN, "unbound: connected after all");
	for (int i = 0; i < 3; i++) {
		int type = 0;
		socklen_t l = sizeof(type);
		check(getsockopt(lone[i], SOL_SOCKET, SO_TYPE, &type, &l) == 0 &&
		      type == (i == 0 ? SOCK_STREAM : i == 1 ? SOCK_SEQPACKET : SOCK_DGRAM),
		      "unconnected socket %d: wrong type %d", i, type);
	}
	expect_name(first, "first", reused);
	expect_name(second, "second", reused);
	expect_name(g, "gone", gone);
	expect_msg(first, "first", "to-first");
	expect_msg(second, "second", "to-second");
	expect_msg(g, "gone", "to-gone");
	check(stat(gone, &st) < 0 && errno == ENOENT, "the unlinked socket's path is back");
	send_to(reused, "again");
	expect_msg(second, "the path's socket", "again");
	char buf[8];
	check(recv(first, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "the path leads to the first socket");
	unlink(reused);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Both ends of an established TCP connection in the tree: a process and
 * its child over loopback (argument 4: 127.0.0.1, 6: ::1), with the
 * listener still open. Before the dump each side writes a pattern until
 * its socket takes no more (the peer's receive queue full, its own send
 * queue holding bytes not sent yet); nothing is read. After the restore
 * each side reads every byte the other wrote and checks it, the ports are
 * the old ones, and the connection still carries a ping both ways. The
 * listener has SO_REUSEADDR, so the accepted end has it and the child's
 * connecting end has not: both keep what they had (repair mode changes it).
 *
 * stasis-test: zdtm:tcp_established:ipv4 args=4 timeout=120 dump_args=--tcp-established restore_args=--tcp-established
 * stasis-test: zdtm:tcp_established:ipv6 args=6 timeout=120 dump_args=--tcp-established restore_args=--tcp-established
 * stasis-test: zdtm:tcp_established:2-iterations args=4 iterations=2 asan=no timeout=150 dump_args=--tcp-established restore_args=--tcp-established
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define LIMIT (4u << 20)

static int fam;

static socklen_t loopback(struct sockaddr_storage *ss)
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

static int port_of(int fd, bool peer)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &l) : getsockname(fd, (struct sockaddr *)&ss, &l)) < 0)
		return -1;
	return ntohs(fam == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int reuse_of(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);
	return getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &l) < 0 ? -1 : v;
}

static void child(int s, int go, int res, const uint8_t *pat)
{
	size_t mine = test_fill_socket(s, pat, LIMIT), theirs;
	int port = port_of(s, false);
	if (write(res, &mine, sizeof(mine)) != sizeof(mine) || read(go, &theirs, sizeof(theirs)) != sizeof(theirs))
		_exit(2);
	const char *why = test_drain(s, theirs, 1);
	if (!why)
		why = test_ping(s, "pong", "ping");
	if (!why && port_of(s, false) != port)
		why = "the child's port changed";
	if (!why && reuse_of(s) != 0)
		why = "the child's socket has SO_REUSEADDR now";
	char msg[64] = "ok";
	if (why)
		strncpy(msg, why, sizeof(msg) - 1);
	(void)!write(res, msg, sizeof(msg));
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	int go[2], res[2];
	fam = argc > 1 && !strcmp(argv[1], "6") ? AF_INET6 : AF_INET;
	test_init(argc, argv);
	socklen_t l = loopback(&ss);
	int ls = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint8_t *mine = malloc(LIMIT), *pat_child = malloc(LIMIT);
	int one = 1;
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) || !mine || !pat_child || bind(ls, (struct sockaddr *)&ss, l) || listen(ls, 4) ||
	    getsockname(ls, (struct sockaddr *)&ss, &l) || pipe(go) || pipe(res))
		test_die("setup: %m");
	test_fill(mine, LIMIT, 1);
	test_fill(pat_child, LIMIT, 2);
	pid_t pid = fork();
	if (pid == 0) {
		int c = socket(fam, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&ss, l))
			_exit(2);
		child(c, go[0], res[1], pat_child);
	}
	int s = accept(ls, NULL, NULL);
	if (s < 0)
		test_die("accept: %m");
	size_t sent = test_fill_socket(s, mine, LIMIT), theirs;
	if (read(res[0], &theirs, sizeof(theirs)) != sizeof(theirs))
		test_die("child's count: %m");
	int port = port_of(s, true);
	test_msg("parent wrote %zu bytes, child %zu", sent, theirs);
	test_ready();
	test_wait();
	if (write(go[1], &sent, sizeof(sent)) != sizeof(sent))
		test_die("go: %m");
	const char *why = test_drain(s, theirs, 2);
	check(!why, "parent: %s", why);
	why = test_ping(s, "ping", "pong");
	check(!why, "parent: %s", why);
	check(port_of(s, true) == port, "the child's port as the parent sees it changed (%d, was %d)", port_of(s, true),
	      port);
	check(reuse_of(s) == 1, "the accepted socket's SO_REUSEADDR is %d, was 1", reuse_of(s));
	char msg[64] = { 0 };
	check(read(res[0], msg, sizeof(msg)) == sizeof(msg) && !strcmp(msg, "ok"), "child: %s", msg);
	int st;
	check(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child did not exit cleanly");
	int c2 = socket(fam, SOCK_STREAM, 0);
	check(c2 >= 0 && connect(c2, (struct sockaddr *)&ss, l) == 0 && accept(ls, NULL, NULL) >= 0,
	      "the listener does not accept: %m");
	test_done();
}

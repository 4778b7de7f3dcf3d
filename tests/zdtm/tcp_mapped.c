/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An IPv4 connection on IPv6 sockets: a listener on [::] with
 * IPV6_V6ONLY off (what busybox nc, Redis' "bind * -::*" and most dual-
 * stack servers do) and a child that connects to 127.0.0.1 over an IPv4
 * or (argument "v6client") an IPv6 socket. The accepted socket is
 * AF_INET6 with the addresses ::ffff:127.0.0.1 at both ends, but the
 * packets on the wire are IPv4: the network lock must match them as IPv4,
 * and the restore must bind and connect an AF_INET6 socket to v4-mapped
 * addresses. Before the dump each side writes a pattern until its socket
 * takes no more; after the restore each reads every byte of the other's,
 * checks it, and a ping goes both ways; the addresses are still mapped.
 * With "stdin" the parent's connection is on its fd 0 as well (inetd,
 * nc -e, or a shell's `read <&3`): fd 0 is the process's own connection
 * there, not stdio to reattach; it reads the bytes from fd 0.
 *
 * stasis-test: zdtm:tcp_mapped args=v4client timeout=120 dump_args=--tcp-established restore_args=--tcp-established
 * stasis-test: zdtm:tcp_mapped:v6client args=v6client timeout=120 dump_args=--tcp-established restore_args=--tcp-established
 * stasis-test: zdtm:tcp_mapped:stdin args="v4client stdin" timeout=120 dump_args=--tcp-established restore_args=--tcp-established
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

/* Both ends of the connection as the socket says: ::ffff:127.0.0.1. */
static const char *mapped(int fd)
{
	struct sockaddr_in6 a, b;
	socklen_t la = sizeof(a), lb = sizeof(b);
	if (getsockname(fd, (struct sockaddr *)&a, &la) < 0 || getpeername(fd, (struct sockaddr *)&b, &lb) < 0)
		return "getsockname/getpeername failed";
	if (a.sin6_family != AF_INET6 || b.sin6_family != AF_INET6)
		return "the accepted socket is not AF_INET6";
	if (!IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) || !IN6_IS_ADDR_V4MAPPED(&b.sin6_addr))
		return "the accepted socket's addresses are not v4-mapped";
	return NULL;
}

/* The client's socket: IPv4 to 127.0.0.1, or IPv6 to ::ffff:127.0.0.1. */
static int client_socket(bool v6, uint16_t port)
{
	if (!v6) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = port };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		return c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) ? -1 : c;
	}
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = port };
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
	int c = socket(AF_INET6, SOCK_STREAM, 0);
	return c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) ? -1 : c;
}

static void child(bool v6, uint16_t port, int go, int res, const uint8_t *pat)
{
	/* Not the runner's stdin: the parent may give its fd 0 away. */
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		_exit(2);
	int s = client_socket(v6, port);
	if (s < 0)
		_exit(2);
	size_t mine = test_fill_socket(s, pat, LIMIT), theirs;
	if (write(res, &mine, sizeof(mine)) != sizeof(mine) || read(go, &theirs, sizeof(theirs)) != sizeof(theirs))
		_exit(2);
	const char *why = test_drain(s, theirs, 1);
	if (!why)
		why = test_ping(s, "pong", "ping");
	if (!why && v6)
		why = mapped(s);
	char msg[64] = "ok";
	if (why)
		strncpy(msg, why, sizeof(msg) - 1);
	(void)!write(res, msg, sizeof(msg));
	_exit(0);
}

static int listener(uint16_t *port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	socklen_t l = sizeof(a);
	int off = 0;
	int ls = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
	    bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4) || getsockname(ls, (struct sockaddr *)&a, &l))
		test_die("listener on [::]: %m");
	*port = a.sin6_port;
	return ls;
}

int main(int argc, char **argv)
{
	bool v6 = argc > 1 && !strcmp(argv[1], "v6client");
	bool on_stdin = argc > 2 && !strcmp(argv[2], "stdin");
	int go[2], res[2];
	uint16_t port;
	test_init(argc, argv);
	int ls = listener(&port);
	uint8_t *mine = malloc(LIMIT), *pat_child = malloc(LIMIT);
	if (!mine || !pat_child || pipe(go) || pipe(res))
		test_die("setup: %m");
	test_fill(mine, LIMIT, 1);
	test_fill(pat_child, LIMIT, 2);
	pid_t pid = fork();
	if (pid == 0)
		child(v6, port, go[0], res[1], pat_child);
	int s = accept(ls, NULL, NULL);
	if (s < 0)
		test_die("accept: %m");
	const char *why = mapped(s);
	if (why)
		test_die("before the dump: %s", why);
	if (on_stdin && dup2(s, 0) != 0)
		test_die("dup2 to fd 0: %m");
	size_t sent = test_fill_socket(s, mine, LIMIT), theirs;
	if (read(res[0], &theirs, sizeof(theirs)) != sizeof(theirs))
		test_die("child's count: %m");
	test_msg("parent wrote %zu bytes, child %zu", sent, theirs);
	test_ready();
	test_wait();
	if (write(go[1], &sent, sizeof(sent)) != sizeof(sent))
		test_die("go: %m");
	why = test_drain(on_stdin ? 0 : s, theirs, 2);
	check(!why, "parent%s: %s", on_stdin ? " on fd 0" : "", why);
	why = test_ping(s, "ping", "pong");
	check(!why, "parent: %s", why);
	why = mapped(s);
	check(!why, "parent after the restore: %s", why);
	char msg[64] = { 0 };
	check(read(res[0], msg, sizeof(msg)) == sizeof(msg) && !strcmp(msg, "ok"), "child: %s", msg);
	int st;
	check(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child did not exit cleanly");
	int c2 = client_socket(false, port);
	check(c2 >= 0 && accept(ls, NULL, NULL) >= 0, "the listener on [::] does not accept IPv4: %m");
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unix sockets bound to relative paths (from the current directory): a
 * stream listener, a dgram server with a message queued and a dgram
 * client connected to it by that name. After the restore the names are
 * still the relative ones, the listener accepts at its path, the message
 * is there and the client's datagrams reach the server.
 *
 * stasis-test: zdtm:unix_relative
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmtst.h"

static socklen_t addr_of(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
}

static int sock_at(int type, const char *name, bool conn)
{
	struct sockaddr_un a;
	socklen_t l = addr_of(&a, name);
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || (conn ? connect(s, (struct sockaddr *)&a, l) : bind(s, (struct sockaddr *)&a, l)))
		test_die("%s: %m", name);
	return s;
}

static void expect_name(int s, const char *want)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	check(getsockname(s, (struct sockaddr *)&a, &l) == 0 && !strcmp(a.sun_path, want),
	      "the name is '%s', not '%s'", a.sun_path, want);
}

int main(int argc, char **argv)
{
	char buf[16];
	test_init(argc, argv);
	int l = sock_at(SOCK_STREAM, "rel.sock", false), srv = sock_at(SOCK_DGRAM, "reld.sock", false);
	if (listen(l, 4))
		test_die("listen: %m");
	int cl = sock_at(SOCK_DGRAM, "reld.sock", true);
	if (send(cl, "queued", 6, 0) != 6)
		test_die("send: %m");

	test_ready();
	test_wait();

	expect_name(l, "rel.sock");
	expect_name(srv, "reld.sock");
	ssize_t n = recv(srv, buf, sizeof(buf), MSG_DONTWAIT);
	check(n == 6 && !memcmp(buf, "queued", 6), "dgram server: the queued message is gone (%zd)", n);
	check(send(cl, "again", 5, 0) == 5, "dgram client: send: %s", strerror(errno));
	n = recv(srv, buf, sizeof(buf), MSG_DONTWAIT);
	check(n == 5 && !memcmp(buf, "again", 5), "dgram server: the client's datagram did not come (%zd)", n);
	int c = sock_at(SOCK_STREAM, "rel.sock", true), a = accept(l, NULL, NULL);
	check(a >= 0 && write(c, "x", 1) == 1 && read(a, buf, 1) == 1 && buf[0] == 'x', "listener: no connection");
	test_done();
}

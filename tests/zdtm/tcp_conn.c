/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An established TCP connection over loopback (both ends in the process)
 * next to a listener. Without a dump the connection works; dumped with
 * --tcp-close (argument "closed") both ends must come back as closed
 * sockets while the listener still accepts. A plain dump must refuse.
 *
 * stasis-build:  # started by fail:tcp-established and tcp-close (tests/t_failures.py)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmtst.h"

int main(int argc, char **argv)
{
	bool closed = argc > 1 && !strcmp(argv[1], "closed");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	test_init(argc, argv);
	int ls = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || c < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4) ||
	    getsockname(ls, (struct sockaddr *)&a, &l) || connect(c, (struct sockaddr *)&a, sizeof(a)))
		test_die("setup: %m");
	int s = accept(ls, NULL, NULL);
	if (s < 0 || write(c, "ping", 4) != 4)
		test_die("accept: %m");
	test_ready();
	test_wait();
	char buf[8];
	ssize_t n = read(s, buf, sizeof(buf));
	if (closed) {
		check(n <= 0, "the connection still works after --tcp-close (read %zd)", n);
		check(send(c, "x", 1, MSG_NOSIGNAL) < 0, "a write on the closed connection succeeded");
	} else {
		check(n == 4 && !memcmp(buf, "ping", 4), "the connection lost its bytes (read %zd: %m)", n);
	}
	int c2 = socket(AF_INET, SOCK_STREAM, 0);
	check(c2 >= 0 && connect(c2, (struct sockaddr *)&a, sizeof(a)) == 0 && accept(ls, NULL, NULL) >= 0,
	      "the listener does not accept: %m");
	test_done();
}

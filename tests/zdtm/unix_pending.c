/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A unix stream listener with two connections not yet accepted, and a
 * seqpacket one on an abstract name with one; the clients are ours.
 * After the restore accept() returns them in the order they connected,
 * and each accepted socket talks to its own client.
 *
 * stasis-test: zdtm:unix_pending
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmtst.h"

static socklen_t addr_of(struct sockaddr_un *a, const char *name, bool abstract)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + abstract, sizeof(a->sun_path) - 1, "%s", name);
	return abstract ? (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name)) : sizeof(*a);
}

static int listener(int type, const char *name, bool abstract)
{
	struct sockaddr_un a;
	socklen_t l = addr_of(&a, name, abstract);
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, l) || listen(s, 8))
		test_die("listener %s: %m", name);
	return s;
}

static int client(int type, const char *name, bool abstract)
{
	struct sockaddr_un a;
	socklen_t l = addr_of(&a, name, abstract);
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, l))
		test_die("connect %s: %m", name);
	return s;
}

/* The next accepted connection is client c's: each way. */
static void check_accept(int l, int c, const char *what)
{
	char buf[8] = "";
	int a = accept(l, NULL, NULL);
	check(a >= 0, "%s: accept: %s", what, strerror(errno));
	if (a < 0)
		return;
	check(write(c, what, strlen(what)) == (ssize_t)strlen(what), "%s: client write: %m", what);
	ssize_t n = read(a, buf, sizeof(buf) - 1);
	check(n == (ssize_t)strlen(what) && !memcmp(buf, what, (size_t)n), "%s: the accepted socket read '%.*s'",
	      what, (int)(n > 0 ? n : 0), buf);
	check(write(a, "ok", 2) == 2 && read(c, buf, 2) == 2 && !memcmp(buf, "ok", 2), "%s: no answer", what);
	close(a);
}

int main(int argc, char **argv)
{
	char path[108], abs_name[64];
	test_init(argc, argv);
	snprintf(path, sizeof(path), "/tmp/stasis-zdtm-%d-pending.sock", getpid());
	snprintf(abs_name, sizeof(abs_name), "stasis-zdtm-%d-pending", getpid());
	unlink(path);
	int l = listener(SOCK_STREAM, path, false), la = listener(SOCK_SEQPACKET, abs_name, true);
	int c1 = client(SOCK_STREAM, path, false), c2 = client(SOCK_STREAM, path, false);
	int c3 = client(SOCK_SEQPACKET, abs_name, true);

	test_ready();
	test_wait();

	check_accept(l, c1, "one");
	check_accept(l, c2, "two");
	check_accept(la, c3, "three");
	unlink(path);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sockets dumped from this very process (pidfd_getfd of our own fds),
 * sent through JSON, closed, restored, and compared. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/sockets.h"
#include "engine/syscalls.h"
#include "image/image.h"
#include "util/cleanup.h"

static int pidfd = -1;

static int setup(void **state)
{
	pidfd = sys_pidfd_open(getpid(), 0);
	return pidfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	close(pidfd);
	return 0;
}

/* The fd's object with s's "socket" object in it. */
static json_t *to_json(const struct sk_rec *s)
{
	struct json_builder b;
	json_t *o = NULL;
	jb_begin(&b);
	sk_to_json(s, &b);
	assert_int_equal(jb_end(&b, &o), 0);
	return o;
}

/* sk_collect, then through JSON text and back. */
static void collect_rt(int fd, struct sk_rec *ret)
{
	struct sk_rec s;
	assert_int_equal(sk_collect(getpid(), pidfd, fd, 0, &s), 0);
	json_t *o = to_json(&s);
	char *text = json_dumps(o, 0);
	assert_non_null(text);
	json_decref(o);
	o = json_loads(text, 0, NULL);
	assert_non_null(o);
	free(text);
	assert_int_equal(sk_from_json(o, ret), 0);
	json_decref(o);
	assert_true(ret->ino == s.ino && ret->family == s.family && ret->type == s.type && ret->state == s.state);
	assert_true(ret->peer_ino == s.peer_ino && ret->queue_len == s.queue_len && ret->nmsgs == s.nmsgs);
	assert_int_equal(ret->opts_set, s.opts_set);
	assert_memory_equal(ret->opts, s.opts, sizeof(s.opts));
	assert_true(ret->name.len == s.name.len && !memcmp(&ret->name.ss, &s.name.ss, s.name.len));
	if (s.queue_len)
		assert_memory_equal(ret->queue, s.queue, s.queue_len);
	sk_rec_free(&s);
}

static int intopt(int fd, int level, int name)
{
	int v = -42;
	socklen_t l = sizeof(v);
	assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

static void expect_msg(int fd, const char *msg, size_t len)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, msg, len);
}

static void pair_case(int type)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	int one = 1;
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	/* To b: three messages (one empty where messages exist); to a: one. */
	assert_int_equal(send(sv[0], "hello", 5, 0), 5);
	if (type != SOCK_STREAM)
		assert_int_equal(send(sv[0], "", 0, 0), 0);
	assert_int_equal(send(sv[0], "big world!", 10, 0), 10);
	assert_int_equal(send(sv[0], "xy", 2, 0), 2);
	assert_int_equal(send(sv[1], "back", 4, 0), 4);

	struct sk_rec a, b;
	collect_rt(sv[0], &a);
	collect_rt(sv[1], &b);
	/* Nothing consumed, the peek offset as it was. */
	assert_int_equal(intopt(sv[1], SOL_SOCKET, SO_PEEK_OFF), -1);
	expect_msg(sv[0], "back", 4);
	assert_int_equal(send(sv[1], "back", 4, 0), 4);

	assert_int_equal(a.state, SK_CONNECTED);
	assert_true(a.peer_ino == b.ino && b.peer_ino == a.ino);
	assert_true(sk_needs_peer(&a) && sk_is_pair(&a, &b));
	assert_int_equal(a.queue_len, 4);
	assert_int_equal(b.queue_len, 17);
	assert_int_equal(b.nmsgs, type == SOCK_STREAM ? 0 : 4);
	assert_true(b.opts_set & (1u << SK_OPT_PASSCRED));
	close(sv[0]);
	close(sv[1]);

	int fa = -1, fb = -1;
	assert_int_equal(sk_restore(&a, &b, &fa, &fb), 0);
	assert_int_equal(intopt(fa, SOL_SOCKET, SO_TYPE), type);
	assert_int_equal(intopt(fb, SOL_SOCKET, SO_PASSCRED), 1);
	assert_int_equal(intopt(fa, SOL_SOCKET, SO_PASSCRED), 0);
	expect_msg(fa, "back", 4);
	if (type == SOCK_STREAM) {
		expect_msg(fb, "hellobig world!xy", 17);
	} else {
		expect_msg(fb, "hello", 5);
		expect_msg(fb, "", 0);
		expect_msg(fb, "big world!", 10);
		expect_msg(fb, "xy", 2);
	}
	assert_int_equal(send(fa, "ping", 4, 0), 4);
	expect_msg(fb, "ping", 4);
	assert_int_equal(send(fb, "pong", 4, 0), 4);
	expect_msg(fa, "pong", 4);
	close(fa);
	close(fb);
	sk_rec_free(&a);
	sk_rec_free(&b);
}

static void test_unix_pairs(void **state)
{
	pair_case(SOCK_STREAM);
	pair_case(SOCK_DGRAM);
	pair_case(SOCK_SEQPACKET);
}

/* The restored listener has the old name and backlog and takes a client. */
static void check_unix_listener(int fd, const struct sk_rec *old)
{
	struct sk_rec now;
	assert_int_equal(sk_collect(getpid(), pidfd, fd, 0, &now), 0);
	assert_int_equal(now.state, SK_LISTEN);
	assert_int_equal(now.backlog, old->backlog);
	assert_int_equal(now.name.len, old->name.len);
	assert_memory_equal(&now.name.ss, &old->name.ss, old->name.len);
	sk_rec_free(&now);

	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (const struct sockaddr *)&old->name.ss, old->name.len), 0);
	int x = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(x >= 0);
	assert_int_equal(send(c, "hi", 2, 0), 2);
	expect_msg(x, "hi", 2);
	close(x);
	close(c);
}

static void test_unix_listeners(void **state)
{
	char dir[] = "/tmp/stasis-sk-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct sockaddr_un path = { .sun_family = AF_UNIX }, abs = { .sun_family = AF_UNIX };
	snprintf(path.sun_path, sizeof(path.sun_path), "%s/l.sock", dir);
	int n = snprintf(abs.sun_path + 1, sizeof(abs.sun_path) - 1, "stasis-test-%d", getpid());
	socklen_t abslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);

	int lp = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), la = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lp, (struct sockaddr *)&path, sizeof(path)), 0);
	assert_int_equal(bind(la, (struct sockaddr *)&abs, abslen), 0);
	assert_int_equal(listen(lp, 5), 0);
	assert_int_equal(listen(la, 3), 0);

	struct sk_rec p, a;
	collect_rt(lp, &p);
	collect_rt(la, &a);
	assert_int_equal(p.state, SK_LISTEN);
	assert_int_equal(p.backlog, 5);
	assert_int_equal(a.backlog, 3);
	assert_false(sk_needs_peer(&p));
	assert_int_equal(a.name.len, abslen);
	close(lp); /* leaves a stale socket file behind */
	close(la);

	int fp = -1, fa = -1;
	assert_int_equal(sk_restore(&p, NULL, &fp, NULL), 0);
	assert_int_equal(sk_restore(&a, NULL, &fa, NULL), 0);
	check_unix_listener(fp, &p);
	assert_int_equal(intopt(fa, SOL_SOCKET, SO_TYPE), SOCK_SEQPACKET);
	assert_int_equal(intopt(fa, SOL_SOCKET, SO_ACCEPTCONN), 1);

	/* A pending connection is recorded by its client; once the client
	 * wrote, it is refused. */
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (const struct sockaddr *)&p.name.ss, p.name.len), 0);
	struct sk_rec x;
	assert_int_equal(sk_collect(getpid(), pidfd, fp, 0, &x), 0);
	assert_int_equal(x.npending, 1);
	struct stat cst;
	assert_int_equal(fstat(c, &cst), 0);
	assert_int_equal(x.pending[0], cst.st_ino);
	sk_rec_free(&x);
	assert_int_equal(write(c, "w", 1), 1);
	assert_int_equal(sk_collect(getpid(), pidfd, fp, 0, &x), -EOPNOTSUPP);
	close(c);

	/* A live listener at the path is not unlinked. */
	int fp2 = -1;
	assert_int_equal(sk_restore(&p, NULL, &fp2, NULL), -EADDRINUSE);
	close(fp);
	close(fa);
	unlink(path.sun_path);
	rmdir(dir);
	sk_rec_free(&p);
	sk_rec_free(&a);
}

/* A dgram server bound to a name with datagrams waiting, and a client
 * connected to it by name. */
static void test_unix_dgram_named(void **state)
{
	struct sockaddr_un abs = { .sun_family = AF_UNIX };
	int n = snprintf(abs.sun_path + 1, sizeof(abs.sun_path) - 1, "stasis-dg-%d", getpid());
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int srv = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), cl = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(srv, (struct sockaddr *)&abs, len), 0);
	assert_int_equal(connect(cl, (struct sockaddr *)&abs, len), 0);
	assert_int_equal(send(cl, "one", 3, 0), 3);
	assert_int_equal(send(cl, "three", 5, 0), 5);

	struct sk_rec s, c;
	collect_rt(srv, &s);
	collect_rt(cl, &c);
	assert_int_equal(s.state, SK_UNCONNECTED);
	assert_int_equal(s.nmsgs, 2);
	assert_int_equal(c.state, SK_CONNECTED);
	assert_true(c.connect_by_name);
	assert_false(sk_needs_peer(&c));
	close(srv);
	close(cl);

	int fs = -1, fc = -1;
	assert_int_equal(sk_restore(&s, NULL, &fs, NULL), 0);
	assert_int_equal(sk_restore(&c, NULL, &fc, NULL), 0);
	expect_msg(fs, "one", 3);
	expect_msg(fs, "three", 5);
	assert_int_equal(send(fc, "again", 5, 0), 5);
	expect_msg(fs, "again", 5);
	close(fs);
	close(fc);
	sk_rec_free(&s);
	sk_rec_free(&c);
}

static int inet_socket(int family, int type, const char *ip, int reuse)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, type | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (reuse)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)), 0);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &in->sin_addr);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
		len = sizeof(*in6);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 9), 0);
	return fd;
}

static void check_inet(int fd, const struct sk_rec *old)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	assert_int_equal(len, old->name.len);
	assert_memory_equal(&ss, &old->name.ss, len);
	assert_int_equal(intopt(fd, SOL_SOCKET, SO_TYPE), old->type);
	int c = socket(old->family, old->type | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(send(c, "data", 4, 0), 4);
	if (old->type == SOCK_STREAM) {
		assert_int_equal(intopt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
		int x = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		assert_true(x >= 0);
		char buf[8];
		assert_int_equal(recv(x, buf, sizeof(buf), 0), 4);
		close(x);
	} else {
		char buf[8];
		assert_int_equal(recv(fd, buf, sizeof(buf), 0), 4);
	}
	close(c);
}

static void test_inet(void **state)
{
	int fds[3] = {
		inet_socket(AF_INET, SOCK_STREAM, "127.0.0.1", 1),
		inet_socket(AF_INET6, SOCK_STREAM, "::1", 1),
		inet_socket(AF_INET, SOCK_DGRAM, "127.0.0.1", 0),
	};
	int one = 1;
	assert_int_equal(setsockopt(fds[1], IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one)), 0);
	assert_int_equal(setsockopt(fds[2], SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)), 0);
	struct sk_rec r[3];
	for (int i = 0; i < 3; i++) {
		collect_rt(fds[i], &r[i]);
		close(fds[i]);
	}
	assert_int_equal(r[0].state, SK_LISTEN);
	assert_int_equal(r[0].backlog, 9);
	assert_int_equal(r[2].state, SK_UNCONNECTED);
	assert_true(r[1].opts_set & (1u << SK_OPT_NODELAY));
	for (int i = 0; i < 3; i++) {
		int fd = -1;
		assert_int_equal(sk_restore(&r[i], NULL, &fd, NULL), 0);
		check_inet(fd, &r[i]);
		assert_int_equal(intopt(fd, SOL_SOCKET, SO_REUSEADDR), i < 2);
		if (i == 1)
			assert_int_equal(intopt(fd, IPPROTO_TCP, 1), 1);
		if (i == 2)
			assert_int_equal(intopt(fd, SOL_SOCKET, SO_BROADCAST), 1);
		close(fd);
		sk_rec_free(&r[i]);
	}
}

static void test_refused(void **state)
{
	int l = inet_socket(AF_INET, SOCK_STREAM, "127.0.0.1", 0);
	struct sockaddr_in in;
	socklen_t len = sizeof(in);
	assert_int_equal(getsockname(l, (struct sockaddr *)&in, &len), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&in, len), 0);
	struct sk_rec s;
	assert_int_equal(sk_collect(getpid(), pidfd, c, 0, &s), -EOPNOTSUPP);
	assert_int_equal(sk_collect(getpid(), pidfd, l, 0, &s), -EOPNOTSUPP); /* not accepted yet */
	int x = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_int_equal(sk_collect(getpid(), pidfd, x, 0, &s), -EOPNOTSUPP);
	close(x);
	close(c);
	close(l);

	/* An fd in flight of a kind no fd table may hold (a userfaultfd) is
	 * refused (sk-scm.c); the kinds the tables hold are described. */
	int sv[2], devnull = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	assert_true(devnull >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { "f", 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &devnull, sizeof(int));
	assert_int_equal(sendmsg(sv[0], &mh, 0), 1);
	assert_int_equal(sk_collect(getpid(), pidfd, sv[1], 0, &s), -EXDEV);
	assert_int_equal(intopt(sv[1], SOL_SOCKET, SO_PEEK_OFF), -1);
	close(sv[0]);
	close(sv[1]);
	close(devnull);

	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
	assert_int_equal(sk_collect(getpid(), pidfd, nl, 0, &s), -EOPNOTSUPP);
	close(nl);
}

static void test_inflight(void **state)
{
	int sv[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { "f", 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &devnull, sizeof(int));
	assert_int_equal(send(sv[0], "a", 1, 0), 1);
	assert_int_equal(sendmsg(sv[0], &mh, 0), 1);
	struct sk_rec s, t;
	assert_int_equal(sk_collect(getpid(), pidfd, sv[1], 0, &s), 0);
	assert_int_equal(s.nmsgs, 2);
	assert_int_equal(s.nscm, 1);
	assert_int_equal(s.scm[0].at, 1);
	assert_int_equal(s.scm[0].fds.n, 1);
	assert_string_equal(fd_kind_name(&s.scm[0].fds.fds[0]), "chr");
	json_t *o = to_json(&s);
	assert_int_equal(sk_from_json(o, &t), 0);
	assert_int_equal(t.nscm, 1);
	assert_int_equal(t.scm[0].at, 1);
	assert_string_equal(t.scm[0].fds.fds[0].path, "/dev/null");
	json_decref(o);
	sk_rec_free(&s);
	sk_rec_free(&t);
	close(sv[0]);
	close(sv[1]);
	close(devnull);
}

/* A good record, damaged one field at a time. */
static void expect_bad(const char *key, json_t *v)
{
	int sv[2];
	struct sk_rec s, t;
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(send(sv[0], "abc", 3, 0), 3);
	assert_int_equal(sk_collect(getpid(), pidfd, sv[1], 0, &s), 0);
	json_t *o = to_json(&s);
	json_t *j = json_object_get(o, "socket");
	if (v)
		json_object_set_new(j, key, v);
	else
		json_object_del(j, key);
	assert_int_equal(sk_from_json(o, &t), -EBADMSG);
	sk_rec_free(&t);
	sk_rec_free(&s);
	json_decref(o);
	close(sv[0]);
	close(sv[1]);
}

static void test_bad_json(void **state)
{
	expect_bad("family", json_string("netlink"));
	expect_bad("type", json_integer(1));
	expect_bad("state", json_string("listen")); /* a listening dgram socket */
	expect_bad("protocol", json_integer(6));
	expect_bad("backlog", json_integer(-1));
	expect_bad("backlog", json_integer((json_int_t)1 << 40));
	expect_bad("shutdown", json_integer(4));
	expect_bad("peer_ino", json_integer(-5));
	expect_bad("queue", json_string("abc"));
	expect_bad("queue", json_integer(3));
	expect_bad("msgs", json_pack("[i]", -1));
	expect_bad("msgs", json_pack("[i]", 4));         /* more than the queue holds */
	expect_bad("msgs", json_pack("[I]", (json_int_t)1 << 40));
	expect_bad("msgs", NULL);
	expect_bad("name", json_string("0200000000000000")); /* AF_INET bytes on a unix socket */
	char big[2 * 200 + 1];
	memset(big, '0', sizeof(big) - 1);
	big[0] = '0', big[1] = '1', big[sizeof(big) - 1] = '\0';
	expect_bad("name", json_string(big));            /* longer than sockaddr_un */
	expect_bad("opts", json_pack("{s:s}", "reuseaddr", "yes"));
	expect_bad("opts", json_integer(0));
	expect_bad("connect_by_name", json_true());      /* without a peer name */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_pairs),
		cmocka_unit_test(test_unix_listeners),
		cmocka_unit_test(test_unix_dgram_named),
		cmocka_unit_test(test_inet),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_inflight),
		cmocka_unit_test(test_bad_json),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

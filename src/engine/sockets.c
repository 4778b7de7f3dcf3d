/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What unix and inet sockets share: the entry points, socket options, and
 * the receive queue (copied by peeking, refilled by sending). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/sk-internal.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

int sk_get_addr(int fd, bool peer, struct sk_addr *ret)
{
	struct sk_addr a = { .len = sizeof(a.ss) };
	int r = peer ? getpeername(fd, (struct sockaddr *)&a.ss, &a.len) : getsockname(fd, (struct sockaddr *)&a.ss, &a.len);
	if (r < 0)
		return errno == ENOTCONN ? 0 : -errno;
	if (a.len > sizeof(a.ss))
		return -EOVERFLOW;
	*ret = a;
	return 0;
}

const char *sk_kind_name(const struct sk_rec *s)
{
	if (s->family == AF_UNIX)
		return s->type == SOCK_STREAM ? "unix stream socket"
		       : s->type == SOCK_DGRAM ? "unix datagram socket"
					       : "unix seqpacket socket";
	if (s->protocol == IPPROTO_TCP)
		return s->family == AF_INET ? "TCP socket" : "TCPv6 socket";
	return s->family == AF_INET ? "UDP socket" : "UDPv6 socket";
}

void sk_addr_format(int family, const struct sk_addr *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->len == 0) {
		snprintf(buf, size, "(none)");
	} else if (family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
		size_t n = a->len - offsetof(struct sockaddr_un, sun_path);
		if (n == 0)
			snprintf(buf, size, "(unbound)");
		else if (un->sun_path[0] == '\0')
			snprintf(buf, size, "@%.*s", (int)(n - 1), un->sun_path + 1);
		else
			snprintf(buf, size, "%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
	} else if (family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
	}
}

int sk_collect(pid_t pid, int pidfd, int fd, unsigned flags, struct sk_rec *ret)
{
	struct sk_rec s = { 0 };
	struct stat st;
	socklen_t l = sizeof(int);

	_cleanup_close_ int sk = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (sk < 0)
		return log_error_errno(errno, "pid %d: cannot get a copy of fd %d: %m", pid, fd);
	if (fstat(sk, &st) < 0 || !S_ISSOCK(st.st_mode))
		return log_error_errno(EINVAL, "pid %d: fd %d is not a socket", pid, fd);
	s.ino = st.st_ino;
	if (getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &s.family, &l) < 0 ||
	    getsockopt(sk, SOL_SOCKET, SO_TYPE, &s.type, &l) < 0 ||
	    getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &s.protocol, &l) < 0)
		return log_error_errno(errno, "pid %d: fd %d: cannot read the socket's kind: %m", pid, fd);

	int r;
	if (s.family == AF_UNIX)
		r = sk_unix_collect(pid, fd, sk, &s);
	else if (s.family == AF_INET || s.family == AF_INET6)
		r = sk_inet_collect(pid, fd, sk, flags, &s);
	else
		r = log_error_errno(EOPNOTSUPP, "pid %d: fd %d is a socket of family %d (%s), which cannot be "
				    "checkpointed yet", pid, fd, s.family,
				    s.family == AF_NETLINK ? "netlink" : s.family == AF_PACKET ? "packet" : "other");
	if (r < 0) {
		sk_rec_free(&s);
		return r;
	}
	*ret = s;
	return 0;
}

void sk_rec_free(struct sk_rec *s)
{
	if (!s)
		return;
	free(s->queue);
	free(s->msg_len);
	s->queue = NULL;
	s->msg_len = NULL;
	s->queue_len = s->nmsgs = 0;
}

bool sk_needs_peer(const struct sk_rec *s)
{
	return s->family == AF_UNIX && s->state == SK_CONNECTED && s->peer_ino && !s->connect_by_name;
}

bool sk_is_pair(const struct sk_rec *a, const struct sk_rec *b)
{
	return sk_needs_peer(a) && sk_needs_peer(b) && a->peer_ino == b->ino && b->peer_ino == a->ino &&
	       a->type == b->type;
}

int sk_restore(const struct sk_rec *s, const struct sk_rec *peer, int *ret_fd, int *ret_peer_fd)
{
	if (s->family == AF_UNIX)
		return sk_unix_restore(s, peer, ret_fd, ret_peer_fd);
	if (peer)
		return log_error_errno(EINVAL, "socket %" PRIu64 ": an inet socket is restored alone", s->ino);
	return sk_inet_restore(s, ret_fd);
}

/* --- receive queue --- */

/* One MSG_PEEK. fds in flight come along as SCM_RIGHTS (installed in our
 * table: closed at once); *has_fds tells the caller to refuse. */
static ssize_t peek_one(int fd, void *buf, size_t len, int flags, bool *has_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };

	ssize_t n = recvmsg(fd, &mh, flags | MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || (cm->cmsg_type != SCM_RIGHTS && cm->cmsg_type != SCM_PIDFD))
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int x;
			memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(x);
		}
		if (cm->cmsg_type == SCM_RIGHTS)
			*has_fds = true;
	}
	if (mh.msg_flags & MSG_CTRUNC)
		*has_fds = true;
	return n;
}

/* Grows *buf to hold need bytes; never past SK_MAX_QUEUE + 1, the one
 * byte over the bound telling "too much". */
static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	if (need > SK_MAX_QUEUE + 1)
		return -EFBIG;
	size_t n = *cap ? *cap : 65536;
	while (n < need)
		n *= 2;
	if (n > SK_MAX_QUEUE + 1)
		n = SK_MAX_QUEUE + 1;
	uint8_t *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int peek_stream(int fd, struct sk_rec *s, size_t *cap)
{
	bool fds = false;
	for (;;) {
		int r = grow(&s->queue, cap, s->queue_len + 1);
		if (r < 0)
			return r;
		ssize_t n = peek_one(fd, s->queue + s->queue_len, *cap - s->queue_len, 0, &fds);
		if (fds)
			return -EXDEV;
		if (n == -EAGAIN || n == 0)
			return 0;
		if (n < 0)
			return (int)n;
		s->queue_len += (size_t)n;
		if (s->queue_len > SK_MAX_QUEUE)
			return -EFBIG;
	}
}

static int peek_dgram(int fd, struct sk_rec *s, size_t *cap)
{
	size_t lcap = 0;
	bool fds = false;
	for (;;) {
		/* The length first (MSG_TRUNC, no buffer): a smaller buffer
		 * would move the peek offset into the middle of the message. */
		ssize_t n = peek_one(fd, NULL, 0, MSG_TRUNC, &fds);
		if (fds)
			return -EXDEV;
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		if (s->nmsgs == lcap) {
			if (lcap >= SK_MAX_MSGS)
				return -E2BIG;
			lcap = lcap ? lcap * 2 : 16;
			uint32_t *p = realloc(s->msg_len, lcap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			s->msg_len = p;
		}
		/* A message of length 0 was returned (and passed) by the probe. */
		if (n > 0) {
			int r = grow(&s->queue, cap, s->queue_len + (size_t)n);
			if (r < 0)
				return r;
			ssize_t m = peek_one(fd, s->queue + s->queue_len, (size_t)n, 0, &fds);
			if (fds)
				return -EXDEV;
			if (m != n)
				return m < 0 ? (int)m : -EIO;
		}
		s->queue_len += (size_t)n;
		s->msg_len[s->nmsgs++] = (uint32_t)n;
	}
}

int sk_queue_peek(int fd, struct sk_rec *s)
{
	int old, zero = 0;
	socklen_t l = sizeof(old);
	size_t cap = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, &l) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return -errno;
	int r = s->type == SOCK_STREAM ? peek_stream(fd, s, &cap) : peek_dgram(fd, s, &cap);
	/* The copy shares the socket: the target's peek offset is put back. */
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && r >= 0)
		r = -errno;
	return r;
}

static int raise_sndbuf(int fd)
{
	int cur, now;
	socklen_t l = sizeof(cur);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &l) < 0)
		return -errno;
	if (cur >= (int)SK_MAX_QUEUE * 2)
		return -ENOBUFS;
	int want = cur; /* getsockopt shows twice the value set: this doubles it */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &now, &l) < 0)
		return -errno;
	return now > cur ? 0 : -ENOBUFS;
}

/* The bytes go into the new socket's queue from `from`; on a full send
 * buffer that one grows (with CAP_NET_ADMIN past wmem_max), since the
 * original queue may have been filled by a sender with a bigger one. */
static int send_one(int from, const uint8_t *p, size_t len, const struct sockaddr *to, socklen_t tolen)
{
	for (;;) {
		ssize_t n = sendto(from, p, len, MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen);
		if (n >= 0)
			return (int)(n > INT32_MAX ? INT32_MAX : n);
		if (errno != EAGAIN)
			return -errno;
		int r = raise_sndbuf(from);
		if (r < 0)
			return r;
	}
}

int sk_queue_fill(int from, const struct sk_rec *s, const struct sockaddr *to, socklen_t tolen)
{
	size_t off = 0;

	if (s->type == SOCK_STREAM) {
		while (off < s->queue_len) {
			size_t chunk = s->queue_len - off > 65536 ? 65536 : s->queue_len - off;
			int n = send_one(from, s->queue + off, chunk, to, tolen);
			if (n < 0)
				return n;
			off += (size_t)n;
		}
		return 0;
	}
	for (size_t i = 0; i < s->nmsgs; i++) {
		int n = send_one(from, s->queue + off, s->msg_len[i], to, tolen);
		if (n < 0)
			return n;
		if ((size_t)n != s->msg_len[i])
			return -EMSGSIZE;
		off += s->msg_len[i];
	}
	return 0;
}

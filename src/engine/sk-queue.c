/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The receive queue of a socket: copied at dump by peeking (the target's
 * data stays where it is), refilled at restore by sending it again. */
#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/sockets.h"

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

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

/* A seqpacket socket shut down for reading (its peer closed) answers an
 * empty queue with 0, as if a message of length 0 were there; the bytes
 * counted by SIOCINQ tell the end (empty messages after the last byte
 * are lost). */
static bool seqpacket_eof(int fd, const struct sk_rec *s, ssize_t n)
{
	int inq = 0;
	if (n != 0 || s->type != SOCK_SEQPACKET || !(s->shutdown & 1))
		return false;
	return ioctl(fd, SIOCINQ, &inq) < 0 || (size_t)inq <= s->queue_len;
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
		if (n == -EAGAIN || seqpacket_eof(fd, s, n))
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

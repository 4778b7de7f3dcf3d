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

/* The control data of one peek: fds in flight installed in our table. */
struct peeked {
	int fds[SK_SCM_MAX_FDS];
	size_t nfds;
	bool has_creds;
	struct ucred creds;
	bool trunc; /* MSG_CTRUNC: more fds than fit */
};

static void peeked_close(struct peeked *pk)
{
	for (size_t i = 0; i < pk->nfds; i++)
		close(pk->fds[i]);
	pk->nfds = 0;
}

static void take_fds(struct peeked *pk, const struct cmsghdr *cm, bool keep)
{
	size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	for (size_t i = 0; i < nfd; i++) {
		int x;
		memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		if (keep && pk->nfds < SK_SCM_MAX_FDS)
			pk->fds[pk->nfds++] = x;
		else
			close(x);
	}
}

/* One MSG_PEEK. fds in flight come along as SCM_RIGHTS (installed in our
 * table, kept in *pk), pidfds (SCM_PIDFD) are closed. */
static ssize_t peek_one(int fd, void *buf, size_t len, int flags, struct peeked *pk)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SK_SCM_MAX_FDS) + CMSG_SPACE(sizeof(struct ucred)) +
			 CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };

	*pk = (struct peeked){ 0 };
	ssize_t n = recvmsg(fd, &mh, flags | MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SCM_RIGHTS || cm->cmsg_type == SCM_PIDFD)
			take_fds(pk, cm, cm->cmsg_type == SCM_RIGHTS);
		if (cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			memcpy(&pk->creds, CMSG_DATA(cm), sizeof(pk->creds));
			pk->has_creds = true;
		}
	}
	pk->trunc = mh.msg_flags & MSG_CTRUNC;
	return n;
}

/* Keeps the control data of the message or chunk at `at` (len bytes). */
static int keep_scm(struct sk_rec *s, struct peeked *pk, uint64_t at, size_t len)
{
	if (pk->trunc) {
		peeked_close(pk);
		return -EXDEV;
	}
	if (!pk->nfds && !pk->has_creds)
		return 0;
	if (s->nscm >= SK_MAX_MSGS) {
		peeked_close(pk);
		return -E2BIG;
	}
	struct sk_scm *p = realloc(s->scm, (s->nscm + 1) * sizeof(*p));
	if (!p) {
		peeked_close(pk);
		return -ENOMEM;
	}
	s->scm = p;
	struct sk_scm *e = &p[s->nscm++];
	*e = (struct sk_scm){ .at = at, .len = (uint32_t)len, .has_creds = pk->has_creds, .pid = pk->creds.pid,
			      .uid = pk->creds.uid, .gid = pk->creds.gid };
	int r = sk_scm_describe(e, pk->fds, pk->nfds);
	pk->nfds = 0;
	return r;
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

/* A peek of a stream stops after a chunk that carries fds, and at a
 * change of sender when the socket has SO_PASSCRED: each peek is one
 * chunk as far as control data goes. */
static int peek_stream(int fd, struct sk_rec *s, size_t *cap)
{
	struct peeked pk;
	for (;;) {
		int r = grow(&s->queue, cap, s->queue_len + 1);
		if (r < 0)
			return r;
		ssize_t n = peek_one(fd, s->queue + s->queue_len, *cap - s->queue_len, 0, &pk);
		if (n <= 0)
			peeked_close(&pk);
		if (n == -EAGAIN || n == 0)
			return 0;
		if (n < 0)
			return (int)n;
		if ((r = keep_scm(s, &pk, s->queue_len, (size_t)n)) < 0)
			return r;
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
	struct peeked pk;
	for (;;) {
		/* The length first (MSG_TRUNC, no buffer): a smaller buffer
		 * would move the peek offset into the middle of the message. */
		ssize_t n = peek_one(fd, NULL, 0, MSG_TRUNC, &pk);
		if (n != 0)
			peeked_close(&pk); /* the message's fds come with the second peek */
		if (n == -EAGAIN || seqpacket_eof(fd, s, n)) {
			peeked_close(&pk);
			return 0;
		}
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
			ssize_t m = peek_one(fd, s->queue + s->queue_len, (size_t)n, 0, &pk);
			if (m != n) {
				peeked_close(&pk);
				return m < 0 ? (int)m : -EIO;
			}
		}
		int r = keep_scm(s, &pk, s->nmsgs, (size_t)n);
		if (r < 0)
			return r;
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

/* The control part of a message: the fds made for e and the sender's
 * credentials. Returns its length. */
static size_t put_cmsgs(char *buf, size_t size, const struct sk_scm *e, const struct ucred *uc)
{
	struct msghdr mh = { .msg_control = buf, .msg_controllen = size };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	size_t used = 0;
	memset(buf, 0, size);
	if (e && e->fds.n) {
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(e->fds.n * sizeof(int));
		memcpy(CMSG_DATA(cm), e->made, e->fds.n * sizeof(int));
		used += CMSG_SPACE(e->fds.n * sizeof(int));
		mh.msg_controllen = used + CMSG_SPACE(sizeof(*uc));
		cm = CMSG_NXTHDR(&mh, cm);
	}
	if (uc) {
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_CREDENTIALS;
		cm->cmsg_len = CMSG_LEN(sizeof(*uc));
		memcpy(CMSG_DATA(cm), uc, sizeof(*uc));
		used += CMSG_SPACE(sizeof(*uc));
	}
	return used;
}

/* One sendmsg with control data. Credentials other than ours need
 * CAP_SYS_ADMIN (pid) and CAP_SETUID/SETGID, and the pid must exist: a
 * sender that is not (yet) alive here becomes the restorer, uid and gid
 * kept; failing that, the restorer's own. */
static ssize_t send_scm(int from, const uint8_t *p, size_t len, const struct sockaddr *to, socklen_t tolen,
			const struct sk_scm *e)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SK_SCM_MAX_FDS) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} c;
	struct iovec iov = { (void *)p, len };
	struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = c.buf };
	struct ucred uc[3] = { { e->pid, e->uid, e->gid }, { getpid(), e->uid, e->gid },
			       { getpid(), getuid(), getgid() } };
	ssize_t n = -1;
	for (int i = 0; i < (e->has_creds ? 3 : 1); i++) {
		mh.msg_controllen = put_cmsgs(c.buf, sizeof(c.buf), e, e->has_creds ? &uc[i] : NULL);
		n = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0 || (errno != EPERM && errno != ESRCH))
			break;
	}
	return n;
}

/* The bytes go into the new socket's queue from `from`; on a full send
 * buffer that one grows (with CAP_NET_ADMIN past wmem_max), since the
 * original queue may have been filled by a sender with a bigger one. */
static int send_one(int from, const uint8_t *p, size_t len, const struct sockaddr *to, socklen_t tolen,
		    const struct sk_scm *e)
{
	for (;;) {
		ssize_t n = e ? send_scm(from, p, len, to, tolen, e)
			      : sendto(from, p, len, MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen);
		if (n >= 0)
			return (int)(n > INT32_MAX ? INT32_MAX : n);
		if (errno != EAGAIN)
			return -errno;
		int r = raise_sndbuf(from);
		if (r < 0)
			return r;
	}
}

/* A stream's bytes up to `end`, plain. */
static int fill_plain(int from, const struct sk_rec *s, size_t *off, size_t end, const struct sockaddr *to,
		      socklen_t tolen)
{
	while (*off < end) {
		size_t chunk = end - *off > 65536 ? 65536 : end - *off;
		int n = send_one(from, s->queue + *off, chunk, to, tolen, NULL);
		if (n < 0)
			return n;
		*off += (size_t)n;
	}
	return 0;
}

/* A stream: plain bytes, and each chunk with control data in one send
 * (the rest of a chunk that did not fit goes plain). */
static int fill_stream(int from, const struct sk_rec *s, const struct sockaddr *to, socklen_t tolen)
{
	size_t off = 0;
	int r;
	for (size_t i = 0; i < s->nscm; i++) {
		const struct sk_scm *e = &s->scm[i];
		if ((r = fill_plain(from, s, &off, e->at, to, tolen)) < 0)
			return r;
		int n = send_one(from, s->queue + off, e->len, to, tolen, e);
		if (n < 0)
			return n;
		off += (size_t)n;
		if ((r = fill_plain(from, s, &off, e->at + e->len, to, tolen)) < 0)
			return r;
	}
	return fill_plain(from, s, &off, s->queue_len, to, tolen);
}

int sk_queue_fill(int from, const struct sk_rec *s, const struct sockaddr *to, socklen_t tolen)
{
	size_t off = 0;

	if (s->type == SOCK_STREAM)
		return fill_stream(from, s, to, tolen);
	for (size_t i = 0; i < s->nmsgs; i++) {
		int n = send_one(from, s->queue + off, s->msg_len[i], to, tolen, sk_scm_at(s, i));
		if (n < 0)
			return n;
		if ((size_t)n != s->msg_len[i])
			return -EMSGSIZE;
		off += s->msg_len[i];
	}
	return 0;
}

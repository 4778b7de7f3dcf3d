/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Socket options. An option is recorded when its value differs from the
 * one a new socket of the same kind has here, and set on restore only
 * then: defaults need no privilege (SO_MARK, SO_RCVBUFFORCE), and buffer
 * sizes left to the kernel stay unlocked (TCP autotunes those). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "engine/sk-opts.h"
#include "util/cleanup.h"
#include "util/log.h"

enum { F_UNIX = 1, F_INET4 = 2, F_INET6 = 4, F_INET = 6, F_ALL = 7, F_TCP = 8 };

static const struct {
	const char *key;
	int level, name;
	unsigned flags;
} desc[SK_OPT_MAX] = {
	[SK_OPT_REUSEADDR] = { "reuseaddr", SOL_SOCKET, SO_REUSEADDR, F_ALL },
	[SK_OPT_REUSEPORT] = { "reuseport", SOL_SOCKET, SO_REUSEPORT, F_INET },
	[SK_OPT_KEEPALIVE] = { "keepalive", SOL_SOCKET, SO_KEEPALIVE, F_INET },
	[SK_OPT_BROADCAST] = { "broadcast", SOL_SOCKET, SO_BROADCAST, F_INET },
	[SK_OPT_OOBINLINE] = { "oobinline", SOL_SOCKET, SO_OOBINLINE, F_ALL },
	[SK_OPT_PASSCRED] = { "passcred", SOL_SOCKET, SO_PASSCRED, F_UNIX },
	[SK_OPT_PRIORITY] = { "priority", SOL_SOCKET, SO_PRIORITY, F_ALL },
	[SK_OPT_RCVLOWAT] = { "rcvlowat", SOL_SOCKET, SO_RCVLOWAT, F_ALL },
	[SK_OPT_RCVBUF] = { "rcvbuf", SOL_SOCKET, SO_RCVBUF, F_ALL },
	[SK_OPT_SNDBUF] = { "sndbuf", SOL_SOCKET, SO_SNDBUF, F_ALL },
	[SK_OPT_MARK] = { "mark", SOL_SOCKET, SO_MARK, F_ALL },
	[SK_OPT_PEEK_OFF] = { "peek_off", SOL_SOCKET, SO_PEEK_OFF, F_ALL },
	[SK_OPT_LINGER] = { "linger", SOL_SOCKET, SO_LINGER, F_ALL },
	[SK_OPT_RCVTIMEO] = { "rcvtimeo_ms", SOL_SOCKET, SO_RCVTIMEO, F_ALL },
	[SK_OPT_SNDTIMEO] = { "sndtimeo_ms", SOL_SOCKET, SO_SNDTIMEO, F_ALL },
	[SK_OPT_NODELAY] = { "nodelay", IPPROTO_TCP, TCP_NODELAY, F_INET | F_TCP },
	[SK_OPT_KEEPIDLE] = { "keepidle", IPPROTO_TCP, TCP_KEEPIDLE, F_INET | F_TCP },
	[SK_OPT_KEEPINTVL] = { "keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, F_INET | F_TCP },
	[SK_OPT_KEEPCNT] = { "keepcnt", IPPROTO_TCP, TCP_KEEPCNT, F_INET | F_TCP },
	[SK_OPT_DEFER_ACCEPT] = { "defer_accept", IPPROTO_TCP, TCP_DEFER_ACCEPT, F_INET | F_TCP },
	[SK_OPT_V6ONLY] = { "v6only", IPPROTO_IPV6, IPV6_V6ONLY, F_INET6 },
	[SK_OPT_TOS] = { "tos", IPPROTO_IP, IP_TOS, F_INET4 },
	[SK_OPT_TTL] = { "ttl", IPPROTO_IP, IP_TTL, F_INET4 },
	[SK_OPT_FREEBIND] = { "freebind", IPPROTO_IP, IP_FREEBIND, F_INET4 },
	[SK_OPT_FREEBIND6] = { "freebind6", IPPROTO_IPV6, IPV6_FREEBIND, F_INET6 },
	[SK_OPT_HDRINCL] = { "hdrincl", IPPROTO_IP, IP_HDRINCL, F_INET4 },
};

const char *sk_opt_key(enum sk_opt o)
{
	return desc[o].key;
}

static bool applies(enum sk_opt o, const struct sk_rec *s)
{
	unsigned f = desc[o].flags;
	unsigned fam = s->family == AF_UNIX ? F_UNIX : s->family == AF_INET ? F_INET4 : F_INET6;
	return (f & fam) && (!(f & F_TCP) || s->protocol == IPPROTO_TCP);
}

static int get_opt(int fd, enum sk_opt o, int *ret)
{
	int v = 0;
	socklen_t l;

	if (o == SK_OPT_LINGER) {
		struct linger lg;
		l = sizeof(lg);
		if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &l) < 0)
			return -errno;
		v = lg.l_onoff ? lg.l_linger : -1;
	} else if (o == SK_OPT_RCVTIMEO || o == SK_OPT_SNDTIMEO) {
		struct timeval tv;
		l = sizeof(tv);
		if (getsockopt(fd, SOL_SOCKET, desc[o].name, &tv, &l) < 0)
			return -errno;
		int64_t ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
		v = ms > INT32_MAX ? INT32_MAX : (int)ms;
	} else {
		l = sizeof(v);
		if (getsockopt(fd, desc[o].level, desc[o].name, &v, &l) < 0)
			return -errno;
	}
	*ret = v;
	return 0;
}

static int set_opt(int fd, enum sk_opt o, int v)
{
	int r = 0;

	if (o == SK_OPT_LINGER) {
		struct linger lg = { .l_onoff = v >= 0, .l_linger = v >= 0 ? v : 0 };
		r = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (o == SK_OPT_RCVTIMEO || o == SK_OPT_SNDTIMEO) {
		struct timeval tv = { .tv_sec = v / 1000, .tv_usec = (v % 1000) * 1000 };
		r = setsockopt(fd, SOL_SOCKET, desc[o].name, &tv, sizeof(tv));
	} else if (o == SK_OPT_RCVBUF || o == SK_OPT_SNDBUF) {
		/* The kernel doubles what it is given; past [rw]mem_max only
		 * the FORCE variant (CAP_NET_ADMIN) reaches the old value. */
		int half = v / 2, now;
		r = setsockopt(fd, SOL_SOCKET, desc[o].name, &half, sizeof(half));
		if (r == 0 && get_opt(fd, o, &now) == 0 && now != v)
			(void)setsockopt(fd, SOL_SOCKET, o == SK_OPT_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &half,
					 sizeof(half));
	} else {
		r = setsockopt(fd, desc[o].level, desc[o].name, &v, sizeof(v));
	}
	return r < 0 ? -errno : 0;
}

/* The classic BPF filter, if any: SO_GET_FILTER takes and gives a
 * length in instructions. An eBPF program (SO_ATTACH_BPF) reads as
 * EACCES: it cannot be read back, so it is refused. */
static int filter_collect(int fd, struct sk_rec *s)
{
	socklen_t n = 0;
	int locked = 0;
	socklen_t l = sizeof(locked);
	/* The dump's own drop-all filter (sk-tcp.c) is not the application's:
	 * it goes on only where the socket had none. */
	if (s->tcp && sk_tcp_blocked(s->tcp))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &n) < 0)
		return errno == EACCES ? -EOPNOTSUPP : -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &locked, &l) == 0)
		s->filter_locked = locked;
	if (!n)
		return 0;
	if (n > SK_MAX_FILTER)
		return -E2BIG;
	s->filter = calloc(n, sizeof(*s->filter));
	if (!s->filter)
		return -ENOMEM;
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, s->filter, &n) < 0)
		return -errno;
	s->filter_len = (uint16_t)n;
	return 0;
}

int sk_filter_apply(int fd, const struct sk_rec *s)
{
	struct sock_fprog p = { .len = s->filter_len, .filter = s->filter };
	int one = 1;
	if ((s->filter_len && setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p)) < 0) ||
	    (s->filter_locked && setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) < 0))
		return log_error_errno(errno, "%s %" PRIu64 ": cannot attach its socket filter again (%u instructions): %m",
				       sk_kind_name(s), s->ino, s->filter_len);
	return 0;
}

int sk_opts_collect(int fd, struct sk_rec *s)
{
	int e = filter_collect(fd, s);
	if (e < 0)
		return e;
	_cleanup_close_ int ref = socket(s->family, s->type | SOCK_CLOEXEC, s->protocol);
	if (ref < 0)
		return -errno;
	for (int o = 0; o < SK_OPT_MAX; o++) {
		int v, dflt;
		if (!applies(o, s))
			continue;
		int r = get_opt(fd, o, &v);
		if (r == -EOPNOTSUPP || r == -ENOPROTOOPT)
			continue; /* not one of this kind's (SO_PEEK_OFF on raw sockets) */
		if (r < 0)
			return r;
		if (get_opt(ref, o, &dflt) == 0 && v == dflt)
			continue;
		s->opts[o] = v;
		s->opts_set |= 1u << o;
	}
	return 0;
}

int sk_opts_apply(int fd, const struct sk_rec *s)
{
	int e;
	/* A unix socket's queue is refilled through the filter: attached
	 * after that, by sk-unix.c. */
	if (s->family != AF_UNIX && (e = sk_filter_apply(fd, s)) < 0)
		return e;
	for (int o = 0; o < SK_OPT_MAX; o++) {
		int cur;
		if (!(s->opts_set & (1u << o)) || !applies(o, s))
			continue;
		if (get_opt(fd, o, &cur) == 0 && cur == s->opts[o])
			continue;
		int r = set_opt(fd, o, s->opts[o]);
		if (r < 0)
			return log_error_errno(r, "%s %" PRIu64 ": cannot set option %s to %d: %m", sk_kind_name(s),
					       s->ino, desc[o].key, s->opts[o]);
	}
	return 0;
}

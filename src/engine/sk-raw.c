/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The inet sockets that are neither TCP nor UDP: ICMP "ping" sockets
 * (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6), raw sockets (SOCK_RAW, any
 * protocol) and UDP-Lite (SOCK_DGRAM, IPPROTO_UDPLITE). They hold no
 * connection state of the kernel's: an address (a ping socket's port is
 * its ICMP identifier), maybe a peer, options. Like UDP, what is queued
 * on them is not kept (a warning says so).
 *
 * Restore makes them in the restorer. Raw sockets need CAP_NET_RAW. A
 * ping socket may be made only by a group in net.ipv4.ping_group_range
 * (no capability passes that check): when the restorer's group is not,
 * the socket is made with the range's first group as this thread's
 * effective group for the moment; an empty range is refused with a line
 * that says to set it. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/sk-opts.h"
#include "engine/sockets.h"
#include "util/cleanup.h"
#include "util/log.h"

bool sk_raw_handles(const struct sk_rec *s)
{
	if (s->family != AF_INET && s->family != AF_INET6)
		return false;
	if (s->type == SOCK_RAW)
		return s->protocol >= 0 && s->protocol <= 255;
	return s->type == SOCK_DGRAM && (s->protocol == IPPROTO_UDPLITE ||
					 s->protocol == (s->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6));
}

const char *sk_raw_kind_name(const struct sk_rec *s)
{
	bool v4 = s->family == AF_INET;
	if (s->type == SOCK_RAW)
		return v4 ? "raw socket" : "raw IPv6 socket";
	if (s->protocol == IPPROTO_UDPLITE)
		return v4 ? "UDP-Lite socket" : "UDP-Lite IPv6 socket";
	return v4 ? "ICMP (ping) socket" : "ICMPv6 (ping) socket";
}

/* Kept when it says something: a specific address or a port. */
static bool addr_set(const struct sk_addr *a)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
	if (!a->len)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		return in->sin_port || in->sin_addr.s_addr != htonl(INADDR_ANY);
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
	return in6->sin6_port || memcmp(&in6->sin6_addr, &any6, sizeof(any6));
}

int sk_raw_collect(pid_t pid, int fd, int sk, struct sk_rec *s)
{
	int r, inq = 0;
	if ((r = sk_get_addr(sk, false, &s->name)) < 0 || (r = sk_get_addr(sk, true, &s->peer_name)) < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read the addresses of the %s: %m", pid, fd,
				       sk_kind_name(s));
	if (!addr_set(&s->name))
		s->name.len = 0;
	s->state = s->peer_name.len ? SK_CONNECTED : SK_UNCONNECTED;
	if (s->protocol == IPPROTO_UDPLITE && sk_inet_diag_shutdown(sk, s, &s->shutdown) < 0)
		s->shutdown = 0;
	if (ioctl(sk, SIOCINQ, &inq) == 0 && inq > 0)
		log_warn("pid %d: fd %d: the packets queued on the %s are not kept", pid, fd, sk_kind_name(s));
	if ((r = sk_opts_collect(sk, s)) < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read the options of the %s: %m", pid, fd,
				       sk_kind_name(s));
	return 0;
}

/* The first group of net.ipv4.ping_group_range, -1 when it is empty. */
static long ping_group(void)
{
	unsigned long lo, hi;
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "re");
	if (!f || fscanf(f, "%lu %lu", &lo, &hi) != 2 || lo > hi)
		return -1;
	return (long)lo;
}

/* A ping socket, as a group of the range if ours is not in it. setresgid
 * as a raw system call changes this thread only. */
static int ping_socket(const struct sk_rec *s)
{
	int fd = socket(s->family, s->type | SOCK_CLOEXEC, s->protocol);
	long g;
	if (fd >= 0 || errno != EACCES || (g = ping_group()) < 0)
		return fd < 0 ? -errno : fd;
	gid_t old = getegid();
	if (syscall(SYS_setresgid, -1, (gid_t)g, -1) < 0)
		return -EACCES;
	fd = socket(s->family, s->type | SOCK_CLOEXEC, s->protocol);
	int e = errno;
	if (syscall(SYS_setresgid, -1, old, -1) < 0)
		log_warn("cannot take back group %u after making a ping socket: %m", (unsigned)old);
	return fd < 0 ? -e : fd;
}

int sk_raw_restore(const struct sk_rec *s, int *ret_fd)
{
	char name[128];
	int r;
	bool ping = s->type == SOCK_DGRAM && s->protocol != IPPROTO_UDPLITE;

	sk_addr_format(s->family, &s->name, name, sizeof(name));
	_cleanup_close_ int fd = ping ? ping_socket(s) : socket(s->family, s->type | SOCK_CLOEXEC, s->protocol);
	if (fd < 0 && ping && fd == -EACCES)
		return log_error_errno(fd, "%s %" PRIu64 ": cannot create it: no group may (see sysctl "
				       "net.ipv4.ping_group_range): %m", sk_kind_name(s), s->ino);
	if (fd < 0)
		return log_error_errno(errno, "%s %" PRIu64 ": cannot create it%s: %m", sk_kind_name(s), s->ino,
				       s->type == SOCK_RAW ? " (raw sockets need CAP_NET_RAW)" : "");
	if ((r = sk_opts_apply(fd, s)) < 0)
		return r;
	if (s->name.len && bind(fd, (const struct sockaddr *)&s->name.ss, s->name.len) < 0)
		return log_error_errno(errno, "%s %" PRIu64 ": cannot bind it to %s again: %m", sk_kind_name(s),
				       s->ino, name);
	if (s->state == SK_CONNECTED && connect(fd, (const struct sockaddr *)&s->peer_name.ss, s->peer_name.len) < 0)
		return log_error_errno(errno, "%s %" PRIu64 ": cannot connect it again: %m", sk_kind_name(s), s->ino);
	if ((r = sk_inet_shutdown_again(fd, s->shutdown)) < 0)
		return log_error_errno(r, "%s %" PRIu64 ": cannot shut it down again: %m", sk_kind_name(s), s->ino);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* inet_diag for one UDP or UDP-Lite socket: its shutdown() state, which
 * only sock_diag shows (what `ss` prints as its shutdown arrows). The
 * socket is found by its addresses and made sure of by its cookie. */
#include <errno.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "engine/sockets.h"
#include "util/log.h"

static void put_addr(const struct sk_addr *a, __be16 *port, __be32 ip[4])
{
	if (!a->len)
		return;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		*port = in->sin_port;
		ip[0] = in->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		*port = in6->sin6_port;
		memcpy(ip, &in6->sin6_addr, 16);
	}
}

static int parse(const char *buf, size_t len, int *ret)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int rem = (int)len;
	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
		struct nlattr *a;
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr e;
			if (mnl_nlmsg_get_payload_len(nlh) < sizeof(e))
				return -EBADMSG;
			memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
			return e.error < 0 && e.error > -4096 ? e.error : -ENOENT;
		}
		if (nlh->nlmsg_type == NLMSG_DONE)
			return -ENOENT;
		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct inet_diag_msg))
			return -EBADMSG;
		mnl_attr_for_each(a, nlh, sizeof(struct inet_diag_msg))
			if (mnl_attr_get_type(a) == INET_DIAG_SHUTDOWN && mnl_attr_get_payload_len(a) >= 1) {
				*ret = mnl_attr_get_u8(a) & 3;
				return 0;
			}
		*ret = 0;
		return 0;
	}
	return -ENOENT;
}

static int query(const struct inet_diag_req_v2 *req, int *ret)
{
	char buf[8192];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = 1;
	memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof(*req)), req, sizeof(*req));
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	ssize_t n;
	int r;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 || mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ||
	    (n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) < 0)
		r = -errno;
	else
		r = parse(buf, (size_t)n, ret);
	mnl_socket_close(nl);
	return r;
}

/* The kernel looks the socket up as the receiver of a packet from src to
 * dst; which of the two is ours has changed over time: both are tried. */
int sk_inet_diag_shutdown(int sk, const struct sk_rec *s, int *ret)
{
	struct inet_diag_req_v2 req = { .sdiag_family = (__u8)s->family, .sdiag_protocol = (__u8)s->protocol,
					.idiag_states = ~0U };
	uint64_t cookie;
	socklen_t l = sizeof(cookie);
	if (getsockopt(sk, SOL_SOCKET, SO_COOKIE, &cookie, &l) < 0)
		return -errno;
	req.id.idiag_cookie[0] = (uint32_t)cookie;
	req.id.idiag_cookie[1] = (uint32_t)(cookie >> 32);
	put_addr(&s->peer_name, &req.id.idiag_sport, req.id.idiag_src);
	put_addr(&s->name, &req.id.idiag_dport, req.id.idiag_dst);
	int r = query(&req, ret);
	if (r != -ENOENT && r != -ESTALE) /* ESTALE: another socket's cookie */
		return r;
	memset(&req.id.idiag_src, 0, sizeof(req.id.idiag_src) + sizeof(req.id.idiag_dst));
	req.id.idiag_sport = req.id.idiag_dport = 0;
	put_addr(&s->name, &req.id.idiag_sport, req.id.idiag_src);
	put_addr(&s->peer_name, &req.id.idiag_dport, req.id.idiag_dst);
	if ((r = query(&req, ret)) < 0)
		log_debug("%s %" PRIu64 ": inet_diag does not show it (%s): its shutdown state is taken as none",
			  sk_kind_name(s), s->ino, strerror(-r));
	return r;
}

int sk_inet_shutdown_again(int fd, int bits)
{
	static const int how[] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };
	if (bits <= 0 || bits > 3)
		return 0;
	/* An unconnected UDP socket is shut down all the same, but says
	 * ENOTCONN. */
	return shutdown(fd, how[bits]) < 0 && errno != ENOTCONN ? -errno : 0;
}

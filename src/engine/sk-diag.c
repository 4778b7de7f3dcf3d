/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sock_diag for unix sockets: the only place the kernel tells who a unix
 * socket's peer is (by inode), how many connections wait on a listener
 * and its backlog. Asked in the controller's network namespace: a socket
 * living in another netns is not found (-ENOENT); asking from inside the
 * target's netns (setns on a helper thread) is left for later. */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine/sk-diag.h"
#include "util/cleanup.h"

#ifndef INET_DIAG_NOCOOKIE
#define INET_DIAG_NOCOOKIE (~0U)
#endif

static int parse_attr(const struct nlattr *a, struct unix_diag_info *d)
{
	struct nlattr *na = (struct nlattr *)a;
	size_t plen = mnl_attr_get_payload_len(na);

	switch (mnl_attr_get_type(na)) {
	case UNIX_DIAG_PEER:
		if (plen < sizeof(uint32_t))
			return -EBADMSG;
		d->has_peer = true;
		d->peer_ino = mnl_attr_get_u32(na);
		break;
	case UNIX_DIAG_RQLEN: {
		struct unix_diag_rqlen q;
		if (plen < sizeof(q))
			return -EBADMSG;
		memcpy(&q, mnl_attr_get_payload(na), sizeof(q));
		d->rqueue = q.udiag_rqueue;
		d->wqueue = q.udiag_wqueue;
		break;
	}
	case UNIX_DIAG_VFS: {
		struct unix_diag_vfs v;
		if (plen < sizeof(v))
			return -EBADMSG;
		memcpy(&v, mnl_attr_get_payload(na), sizeof(v));
		d->vfs_ino = v.udiag_vfs_ino;
		break;
	}
	case UNIX_DIAG_ICONS:
		d->nicons = (uint32_t)(plen / sizeof(uint32_t));
		memcpy(d->icons, mnl_attr_get_payload(na),
		       sizeof(uint32_t) * (d->nicons < UNIX_DIAG_MAX_ICONS ? d->nicons : UNIX_DIAG_MAX_ICONS));
		break;
	case UNIX_DIAG_SHUTDOWN:
		if (plen < 1)
			return -EBADMSG;
		d->shutdown = mnl_attr_get_u8(na) & 3;
		break;
	default:
		break;
	}
	return 0;
}

static int parse_msg(const struct nlmsghdr *nlh, uint64_t ino, struct unix_diag_info *ret)
{
	struct nlmsghdr *h = (struct nlmsghdr *)nlh;
	struct unix_diag_msg m;
	struct nlattr *a;
	int r;

	if (mnl_nlmsg_get_payload_len(h) < sizeof(m))
		return -EBADMSG;
	memcpy(&m, mnl_nlmsg_get_payload(h), sizeof(m));
	if (m.udiag_ino != ino)
		return 0;
	struct unix_diag_info d = { .type = m.udiag_type, .state = m.udiag_state, .ino = m.udiag_ino };
	mnl_attr_for_each(a, h, sizeof(m)) {
		if ((r = parse_attr(a, &d)) < 0)
			return r;
	}
	*ret = d;
	return 1;
}

int unix_diag_parse(const void *buf, size_t len, uint64_t ino, struct unix_diag_info *ret)
{
	const struct nlmsghdr *nlh = buf;
	int rem = len > INT32_MAX ? INT32_MAX : (int)len, r;

	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr e;
			if (mnl_nlmsg_get_payload_len(nlh) < sizeof(e))
				return -EBADMSG;
			memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
			return e.error < 0 && e.error > -4096 ? e.error : -ENOENT;
		}
		if (nlh->nlmsg_type == NLMSG_DONE)
			break;
		if (nlh->nlmsg_type == SOCK_DIAG_BY_FAMILY && (r = parse_msg(nlh, ino, ret)) != 0)
			return r < 0 ? r : 0;
	}
	return -ENOENT;
}

int unix_diag_query(uint64_t ino, struct unix_diag_info *ret)
{
	/* Room for a listener's UNIX_DIAG_ICONS (4 bytes a connection). */
	const size_t size = 256 * 1024;

	if (ino > UINT32_MAX) /* the request has 32 bits for it */
		return -ERANGE;
	_cleanup_free_ char *buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = 1;
	struct unix_diag_req *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = AF_UNIX;
	req->udiag_states = ~0U;
	req->udiag_ino = (uint32_t)ino;
	req->udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_ICONS | UDIAG_SHOW_VFS;
	req->udiag_cookie[0] = req->udiag_cookie[1] = INET_DIAG_NOCOOKIE;

	struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	int r = 0;
	ssize_t n;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 || mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ||
	    (n = mnl_socket_recvfrom(nl, buf, size)) < 0)
		r = -errno;
	else
		r = unix_diag_parse(buf, (size_t)n, ino, ret);
	mnl_socket_close(nl);
	return r;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TCP and UDP over IPv4 and IPv6: TCP listeners (without connections
 * waiting to be accepted: the kernel cannot put a connection back into an
 * accept queue) and unconnected (maybe bound) TCP sockets; UDP sockets,
 * bound and maybe connected. An established TCP connection is refused,
 * restored closed (--tcp-close) or kept (--tcp-established: sk-tcp.c).
 *
 * Datagrams queued on a UDP socket are kept with their senders' addresses
 * (sk-udp.c); a connected UDP socket connects to its peer again. */
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/sk-opts.h"
#include "engine/sockets.h"
#include "util/cleanup.h"
#include "util/log.h"

static uint16_t port_of(const struct sk_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_port;
	return ((const struct sockaddr_in6 *)&a->ss)->sin6_port;
}

/* An unbound socket shows the wildcard address and port 0. */
static int get_addr(int fd, bool peer, struct sk_addr *ret)
{
	struct sk_addr a = { 0 };
	int r = sk_get_addr(fd, peer, &a);
	if (r >= 0 && a.len && port_of(&a) != 0)
		*ret = a;
	return r;
}

static const char *tcp_state_name(int st)
{
	switch (st) {
	case TCP_ESTABLISHED: return "an established";
	case TCP_SYN_SENT: case TCP_SYN_RECV: return "a connecting";
	default: return "a closing";
	}
}

static int collect_tcp(pid_t pid, int fd, int sk, unsigned flags, struct sk_rec *s, const char *name,
		       const char *pname)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return log_error_errno(errno, "pid %d: fd %d: cannot read the TCP state: %m", pid, fd);
	if (ti.tcpi_state == TCP_LISTEN) {
		/* For listeners, tcp_info holds the accept queue's length and
		 * bound in these two fields. */
		if (ti.tcpi_unacked) {
			log_error("pid %d: fd %d is a listening %s (%s) with %u connection(s) not yet accepted, which "
				  "cannot be checkpointed (the kernel cannot put a connection back into an accept "
				  "queue); checkpoint when the server has accepted them", pid, fd,
				  sk_kind_name(s), name, ti.tcpi_unacked);
			return -EOPNOTSUPP;
		}
		s->state = SK_LISTEN;
		s->backlog = ti.tcpi_sacked > SK_MAX_BACKLOG ? SK_MAX_BACKLOG : (int)ti.tcpi_sacked;
		return 0;
	}
	if (ti.tcpi_state == TCP_CLOSE) {
		s->state = SK_UNCONNECTED;
		return 0;
	}
	if (flags & SK_TCP_ESTABLISHED)
		return sk_tcp_collect(pid, fd, sk, ti.tcpi_state, s, name, pname);
	if (flags & SK_TCP_CLOSE) {
		/* Restored as a fresh, unconnected socket: reads and writes
		 * fail as on a connection that was reset. */
		log_info("pid %d: fd %d: %s TCP connection (%s -> %s) is restored closed (--tcp-close)", pid, fd,
			 tcp_state_name(ti.tcpi_state), name, pname);
		s->state = SK_UNCONNECTED;
		s->name.len = s->peer_name.len = 0;
		return 0;
	}
	log_error("pid %d: fd %d is %s TCP connection (%s -> %s); dump with --tcp-established to keep it, or "
		  "with --tcp-close to restore it closed", pid, fd,
		  tcp_state_name(ti.tcpi_state), name, pname);
	return -EOPNOTSUPP;
}

int sk_inet_collect(pid_t pid, int fd, int sk, unsigned flags, struct sk_rec *s)
{
	char name[128], pname[128];
	int r;

	if (!(s->type == SOCK_STREAM && s->protocol == IPPROTO_TCP) &&
	    !(s->type == SOCK_DGRAM && s->protocol == IPPROTO_UDP)) {
		log_error("pid %d: fd %d is an inet socket of type %d, protocol %d (raw, ICMP, SCTP, ...), which "
			  "cannot be checkpointed yet", pid, fd, s->type, s->protocol);
		return -EOPNOTSUPP;
	}
	if ((r = get_addr(sk, false, &s->name)) < 0 || (r = get_addr(sk, true, &s->peer_name)) < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read the addresses of the %s: %m", pid, fd,
				       sk_kind_name(s));
	sk_addr_format(s->family, &s->name, name, sizeof(name));
	sk_addr_format(s->family, &s->peer_name, pname, sizeof(pname));
	/* Before a connection goes into repair mode, which changes SO_REUSEADDR. */
	if ((r = sk_opts_collect(sk, s)) < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read the options of the %s: %m", pid, fd,
				       sk_kind_name(s));
	if (s->protocol == IPPROTO_TCP) {
		if ((r = collect_tcp(pid, fd, sk, flags, s, name, pname)) < 0)
			return r;
	} else {
		s->state = s->peer_name.len ? SK_CONNECTED : SK_UNCONNECTED;
		if (sk_inet_diag_shutdown(sk, s, &s->shutdown) < 0)
			s->shutdown = 0; /* no udp_diag here: none seen */
		if ((r = sk_udp_collect_queue(sk, s)) < 0)
			return log_error_errno(r, "pid %d: fd %d: cannot read the datagrams queued on the %s (%s): %m", pid,
					       fd, sk_kind_name(s), name);
	}
	return 0;
}

/* Connections of the dead original may linger in TIME_WAIT on the port,
 * so a TCP socket binds and listens with SO_REUSEADDR, then gets its own
 * value back. No live listener can be joined that way (Linux refuses two
 * listeners on one port unless both have SO_REUSEPORT). UDP binds as it
 * is: SO_REUSEADDR would share a port with a live UDP socket. */
static int bind_listen(int fd, const struct sk_rec *s)
{
	int one = 1, was = (s->opts_set & (1u << SK_OPT_REUSEADDR)) ? s->opts[SK_OPT_REUSEADDR] : 0;
	bool tcp = s->protocol == IPPROTO_TCP;
	int r = 0;

	if (tcp && s->name.len && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	if (s->name.len && bind(fd, (const struct sockaddr *)&s->name.ss, s->name.len) < 0)
		r = -errno;
	else if (s->state == SK_LISTEN && listen(fd, s->backlog) < 0)
		r = -errno;
	if (tcp && s->name.len && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &was, sizeof(was)) < 0 && r == 0)
		r = -errno;
	return r;
}

int sk_inet_restore(const struct sk_rec *s, int *ret_fd)
{
	char name[128];
	int r;

	sk_addr_format(s->family, &s->name, name, sizeof(name));
	_cleanup_close_ int fd = socket(s->family, s->type | SOCK_CLOEXEC, s->protocol);
	if (fd < 0)
		return log_error_errno(errno, "%s %" PRIu64 ": cannot create it: %m", sk_kind_name(s), s->ino);
	if ((r = sk_opts_apply(fd, s)) < 0)
		return r;
	if (s->tcp) {
		if ((r = sk_tcp_restore(fd, s)) < 0)
			return r;
		*ret_fd = TAKE_FD(fd);
		return 0;
	}
	if ((r = bind_listen(fd, s)) < 0)
		return log_error_errno(r, "%s %" PRIu64 ": cannot bind%s it to %s again: %m", sk_kind_name(s), s->ino,
				       s->state == SK_LISTEN ? " and listen on" : "", name);
	if (s->nmsgs && (r = sk_udp_fill(fd, s)) < 0)
		return log_error_errno(r, "%s %" PRIu64 " (%s): cannot queue its %zu datagrams again: %m", sk_kind_name(s),
				       s->ino, name, s->nmsgs);
	if (s->state == SK_CONNECTED && connect(fd, (const struct sockaddr *)&s->peer_name.ss, s->peer_name.len) < 0)
		return log_error_errno(errno, "%s %" PRIu64 ": cannot connect it again: %m", sk_kind_name(s), s->ino);
	if ((r = sk_inet_shutdown_again(fd, s->shutdown)) < 0)
		return log_error_errno(r, "%s %" PRIu64 ": cannot shut it down again: %m", sk_kind_name(s), s->ino);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

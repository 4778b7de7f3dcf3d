/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sockets as an fd kind, and what unix and inet sockets share: the entry
 * points that hand a socket to its family (sk-unix.c, sk-inet.c) and
 * addresses. The fd kind restores a connected unix pair at once, with
 * both ends, and a dgram socket connected to a named one after that one. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/sockets.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct fd_ops fd_socket_ops;

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
	if (sk_raw_handles(s))
		return sk_raw_kind_name(s);
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
		r = sk_raw_handles(&s) ? sk_raw_collect(pid, fd, sk, &s) : sk_inet_collect(pid, fd, sk, flags, &s);
	else
		r = log_error_errno(EOPNOTSUPP, "pid %d: fd %d is a socket of family %d (%s), which cannot be "
				    "checkpointed yet", pid, fd, s.family,
				    s.family == AF_NETLINK ? "netlink" : s.family == AF_PACKET ? "packet" : "other");
	if (r < 0) {
		sk_rec_free(&s);
		return r;
	}
	s.outside = flags & (SK_UNIX_CLOSE | SK_UNIX_RECONNECT);
	*ret = s;
	return 0;
}

void sk_rec_free(struct sk_rec *s)
{
	if (!s)
		return;
	sk_scm_free(s);
	free(s->dir);
	free(s->peer_dir);
	free(s->filter);
	s->filter = NULL;
	s->filter_len = 0;
	s->dir = s->peer_dir = NULL;
	free(s->queue);
	free(s->msg_len);
	free(s->msg_from);
	s->msg_from = NULL;
	sk_tcp_free(s->tcp);
	s->tcp = NULL;
	s->queue = NULL;
	s->msg_len = NULL;
	s->queue_len = s->nmsgs = 0;
}

bool sk_needs_peer(const struct sk_rec *s)
{
	return s->family == AF_UNIX && s->state == SK_CONNECTED && s->peer_ino && !s->connect_by_name &&
	       !s->pending_connect;
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
	return sk_raw_handles(s) ? sk_raw_restore(s, ret_fd) : sk_inet_restore(s, ret_fd);
}


/* --- the fd kind --- */

static struct sk_rec *sk_of(const struct fd_rec *o)
{
	return o->ops == &fd_socket_ops ? o->state : NULL;
}

static bool socket_match(const struct fd_probe *p)
{
	return p->st && S_ISSOCK(p->st->st_mode);
}

static int socket_collect(const struct fd_probe *p, struct fd_rec *o)
{
	_cleanup_close_ int pidfd = sys_pidfd_open(p->pid, 0);
	if (pidfd < 0)
		return log_error_errno(-errno, "pid %d: cannot open a pidfd: %m", p->pid);
	int r = fd_state_alloc(o, sizeof(struct sk_rec));
	return r < 0 ? r : sk_collect(p->pid, pidfd, p->fd, p->flags, o->state);
}

static int is_ino(const struct fd_rec *o, void *arg)
{
	return sk_of(o)->ino == *(const uint64_t *)arg;
}

/* In the tree, or in flight in a queue of the tree. */
static bool has_socket(const struct files_proc *v, size_t n, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++)
			if (sk_of(&v[i].f->fds[k]) && (sk_of(&v[i].f->fds[k])->ino == ino ||
						       sk_scm_walk(sk_of(&v[i].f->fds[k]), is_ino, &ino)))
				return true;
	return false;
}

bool sk_tree_inflight(const struct files_proc *v, size_t n, const char *path, int accmode)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++)
			if (sk_of(&v[i].f->fds[k]) && sk_scm_holds(sk_of(&v[i].f->fds[k]), path, accmode))
				return true;
	return false;
}

struct tree_ref {
	const struct files_proc *v;
	size_t n;
	const struct fd_rec *carrier;
};

/* A socket in flight is restored with its peer too. */
static int inflight_peer_missing(const struct fd_rec *o, void *arg)
{
	const struct tree_ref *t = arg;
	if (!sk_needs_peer(sk_of(o)) || has_socket(t->v, t->n, sk_of(o)->peer_ino))
		return 0;
	log_error("a unix socket in flight in the queue of %s (socket:[%" PRIu64 "]) is connected to a process "
		  "outside the tree (peer socket:[%" PRIu64 "]), which cannot be checkpointed yet", t->carrier->path,
		  sk_of(o)->ino, sk_of(o)->peer_ino);
	return -EOPNOTSUPP;
}

/* The clients of the connections waiting on a listener of the tree are
 * restored by connecting again; each must be a socket of the tree. */
static int mark_pending(struct files_proc *v, size_t n, const struct fd_rec *l)
{
	const struct sk_rec *ls = sk_of(l);
	for (size_t p = 0; p < ls->npending; p++) {
		bool found = false;
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < v[i].f->n; k++) {
				struct sk_rec *x = sk_of(&v[i].f->fds[k]);
				if (x && x->ino == ls->pending[p] && x->state == SK_CONNECTED) {
					x->pending_connect = true;
					found = true;
				}
			}
		if (!found)
			return log_error_errno(-EOPNOTSUPP, "%s (socket:[%" PRIu64 "]) has a connection not yet "
					       "accepted from a socket outside the tree (socket:[%" PRIu64 "]), which "
					       "cannot be checkpointed yet", l->path, ls->ino, ls->pending[p]);
	}
	return 0;
}

/* Two ends of a connection in the tree are read one after the other while
 * the kernel still carries packets between them: read again until a whole
 * pass over the tree's connections finds none moved. */
static int settle_tcp(struct files_proc *v, size_t n)
{
	bool changed = true;
	for (int pass = 0; changed && pass < 50; pass++) {
		changed = false;
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < v[i].f->n; k++) {
				struct sk_rec *s = sk_of(&v[i].f->fds[k]);
				int r = s ? sk_tcp_settle(s->tcp, true, &changed) : 0;
				if (r < 0)
					return log_error_errno(r, "pid %d: fd %d: cannot read the TCP connection again: %m",
							       v[i].pid, v[i].f->fds[k].fd);
			}
	}
	if (changed)
		return log_error_errno(-EAGAIN, "the tree's TCP connections kept moving while it was frozen (a peer "
				       "still sending); dump again");
	return 0;
}

/* A connected unix socket is restored with its peer: both must be ours. */
static int socket_link(struct files_proc *v, size_t n)
{
	int r = settle_tcp(v, n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			int e;
			if (sk_of(&v[i].f->fds[k]) && (e = mark_pending(v, n, &v[i].f->fds[k])) < 0)
				return e;
		}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v[i].f->n; k++) {
			const struct fd_rec *o = &v[i].f->fds[k];
			struct sk_rec *s = sk_of(o);
			struct tree_ref t = { v, n, o };
			int e;
			if (s && sk_needs_peer(s) && !has_socket(v, n, s->peer_ino) &&
			    (e = sk_unix_outside(v[i].pid, o->fd, s)) < 0)
				return e;
			if (s && (e = sk_scm_walk(s, inflight_peer_missing, &t)) != 0)
				return e;
		}
	return 0;
}

/* The data of the fds in flight in the queue (a pipe's bytes). */
static int socket_dump_data(struct fd_dump *d, struct fd_rec *o)
{
	int r = sk_scm_dump_data(d->img, sk_of(o));
	if (r < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot save the fds in flight in the socket's queue: %m",
				       d->pid, o->fd);
	return 0;
}

/* Format 2 also writes an all-zero "anon" for sockets. */
static void socket_to_json(const struct fd_rec *o, struct json_builder *b)
{
	sk_to_json(sk_of(o), b);
	fd_anon_to_json(b, NULL);
}

static int socket_from_json(const json_t *j, struct fd_rec *o)
{
	int r = fd_anon_from_json(j, NULL);
	if (r < 0 || (r = fd_state_alloc(o, sizeof(struct sk_rec))) < 0)
		return r;
	return sk_from_json(j, o->state);
}

static void socket_free(void *state)
{
	sk_rec_free(state);
}

/* --- restore --- */

struct find_ino {
	uint64_t ino;
	const struct fd_rec *found;
};

static int found_ino(const struct fd_rec *o, void *arg)
{
	struct find_ino *f = arg;
	if (sk_of(o)->ino != f->ino)
		return 0;
	f->found = o;
	return 1;
}

/* The first holder (in tree order) of the socket with this inode; else
 * the first record of it in flight. */
static const struct fd_rec *find_socket(const struct files_ctx *c, uint64_t ino)
{
	struct find_ino f = { ino, NULL };
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (sk_of(x) && x->dup_of < 0 && sk_of(x)->ino == ino)
				return x;
		}
	for (size_t i = 0; i < c->nall && !f.found; i++)
		for (size_t k = 0; k < c->all[i].f->n && !f.found; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			if (sk_of(x) && x->dup_of < 0)
				sk_scm_walk(sk_of(x), found_ino, &f);
		}
	return f.found;
}

static int made_socket(struct files_ctx *c, const struct fd_rec *o, int fd)
{
	if (fcntl(fd, F_SETFL, o->flags & O_NONBLOCK) < 0) {
		close(fd);
		return -errno;
	}
	return files_ctx_add(c, o->desc, fd);
}

static int make_socket(const struct fd_restore *fx, const struct fd_rec *o);

/* A dgram socket connected to a named one needs that one to exist first. */
static int make_named_peer(const struct fd_restore *fx, const struct fd_rec *o)
{
	struct files_ctx *c = fx->c;
	const struct sk_rec *s = sk_of(o);
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			const struct sk_rec *xs = sk_of(x);
			int e;
			if (xs && x->dup_of < 0 && x != o && xs->name.len && xs->name.len == s->peer_name.len &&
			    !memcmp(&xs->name.ss, &s->peer_name.ss, s->peer_name.len) &&
			    files_ctx_find(c, x->desc) < 0 && (e = make_socket(fx, x)) < 0)
				return e;
		}
	return 0;
}

/* A socket in flight (sk-scm.c): a new fd of the tree's socket of that
 * inode, or of the one made for the queues. */
static int get_inflight(const struct fd_restore *fx, const struct fd_rec *o)
{
	const struct fd_rec *t = find_socket(fx->c, sk_of(o)->ino);
	int e;
	if (!t)
		t = o;
	if (files_ctx_find(fx->c, t->desc) < 0 && (e = make_socket(fx, t)) < 0)
		return e;
	int fd = fcntl(files_ctx_find(fx->c, t->desc), F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? -errno : fd;
}

/* The fds in flight in the queues of s and of its peer, made first. */
static int make_inflight(const struct fd_restore *fx, const struct sk_rec *s, const struct sk_rec *p)
{
	int e = sk_scm_make(fx, s, get_inflight);
	if (e >= 0 && p && (e = sk_scm_make(fx, p, get_inflight)) < 0)
		sk_scm_close(s);
	return e;
}

/* The listener a waiting client's connection is queued on. */
static const struct fd_rec *find_listener(const struct files_ctx *c, uint64_t client)
{
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *x = &c->all[i].f->fds[k];
			for (size_t p = 0; sk_of(x) && x->dup_of < 0 && p < sk_of(x)->npending; p++)
				if (sk_of(x)->pending[p] == client)
					return x;
		}
	return NULL;
}

/* After a listener: its waiting clients connect again, in accept order. */
static int make_pending(struct files_ctx *c, const struct sk_rec *l)
{
	for (size_t p = 0; p < l->npending; p++) {
		const struct fd_rec *x = find_socket(c, l->pending[p]);
		int fd, e;
		if (!x || !sk_of(x)->pending_connect)
			return -ENOTCONN;
		if (files_ctx_find(c, x->desc) >= 0)
			continue;
		if ((e = sk_unix_restore_pending(sk_of(x), &fd)) < 0 || (e = made_socket(c, x, fd)) < 0)
			return e;
	}
	return 0;
}

/* A waiting client comes with its listener. */
static int make_client(const struct fd_restore *fx, const struct fd_rec *o)
{
	const struct fd_rec *l = find_listener(fx->c, sk_of(o)->ino);
	int e;
	if (!l)
		return -ENOTCONN;
	if (files_ctx_find(fx->c, l->desc) < 0 && (e = make_socket(fx, l)) < 0)
		return e;
	return files_ctx_find(fx->c, o->desc) < 0 ? -ENOTCONN : 0;
}

/* Makes o's socket (with its peer, for a pair) in the restorer. */
static int make_socket(const struct fd_restore *fx, const struct fd_rec *o)
{
	struct files_ctx *c = fx->c;
	const struct sk_rec *s = sk_of(o);
	const struct fd_rec *peer = NULL;
	int fd = -1, pfd = -1, e;
	if (s->pending_connect)
		return make_client(fx, o);
	if (s->connect_by_name && (e = make_named_peer(fx, o)) < 0)
		return e;
	if (sk_needs_peer(s) && !(peer = find_socket(c, s->peer_ino)))
		return -ENOTCONN;
	if ((e = make_inflight(fx, s, peer ? sk_of(peer) : NULL)) < 0)
		return e;
	e = sk_restore(s, peer ? sk_of(peer) : NULL, &fd, peer ? &pfd : NULL);
	sk_scm_close(s);
	if (peer)
		sk_scm_close(sk_of(peer));
	if (e < 0)
		return e;
	if (peer && (e = made_socket(c, peer, pfd)) < 0) {
		close(fd);
		return e;
	}
	if ((e = made_socket(c, o, fd)) < 0)
		return e;
	return make_pending(c, s);
}

static int socket_make(const struct fd_restore *x, const struct fd_rec *o)
{
	int e = make_socket(x, o);
	if (e < 0)
		return log_error_errno(e, "pid %d: cannot recreate the socket of fd %d: %m", x->r->pid, o->fd);
	return 0;
}

const struct fd_ops fd_socket_ops = {
	.name = "socket",
	.own_stdio = true, /* fds 0-2 leave it only inet sockets (files-ext.c) */
	.match = socket_match,
	.collect = socket_collect,
	.link = socket_link,
	.dump_data = socket_dump_data,
	.to_json = socket_to_json,
	.from_json = socket_from_json,
	.free = socket_free,
	.make = socket_make,
};

/* --- TCP repair across the tree (sk-tcp.c) --- */

void sk_leave_repair(const struct files_rec *f)
{
	for (size_t i = 0; f && i < f->n; i++) {
		const struct sk_rec *s = sk_of(&f->fds[i]);
		if (s && s->tcp)
			sk_tcp_leave_repair(s->tcp);
	}
}

int sk_check_unchanged(pid_t pid, const struct files_rec *f)
{
	for (size_t i = 0; f && i < f->n; i++) {
		const struct sk_rec *s = sk_of(&f->fds[i]);
		bool changed = false;
		int r = s ? sk_tcp_settle(s->tcp, false, &changed) : 0;
		if (r < 0 || changed)
			return log_error_errno(r < 0 ? r : -EAGAIN, "pid %d: fd %d: its TCP connection moved after it "
					       "was saved (a peer still sending); the image would lose bytes: dump again",
					       pid, f->fds[i].fd);
	}
	return 0;
}

int sk_check_restore(const struct files_proc *all, size_t n, bool allowed)
{
	for (size_t i = 0; !allowed && i < n; i++)
		for (size_t k = 0; k < all[i].f->n; k++) {
			const struct fd_rec *o = &all[i].f->fds[k];
			if (sk_of(o) && sk_of(o)->tcp)
				return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is an established TCP connection "
						       "saved with --tcp-established; restore with --tcp-established "
						       "(its peer must still be there)", all[i].pid, o->fd);
		}
	return 0;
}

int sk_restore_finish(const struct files_ctx *c)
{
	for (size_t i = 0; i < c->nall; i++)
		for (size_t k = 0; k < c->all[i].f->n; k++) {
			const struct fd_rec *o = &c->all[i].f->fds[k];
			const struct sk_rec *s = sk_of(o);
			int fd = s && s->tcp && o->dup_of < 0 ? files_ctx_find(c, o->desc) : -1;
			if (fd < 0)
				continue;
			int r = sk_tcp_finish(fd, s);
			if (r < 0)
				return r;
		}
	return 0;
}

bool sk_fd_describe(const struct fd_rec *o, char *buf, size_t size)
{
	const struct sk_rec *s = sk_of(o);
	char name[128], pname[128], what[160] = "";
	if (!s || s->family == AF_UNIX || !s->peer_name.len)
		return false;
	sk_addr_format(s->family, &s->name, name, sizeof(name));
	sk_addr_format(s->family, &s->peer_name, pname, sizeof(pname));
	if (s->tcp)
		sk_tcp_describe(s->tcp, what, sizeof(what));
	else
		snprintf(what, sizeof(what), "connected, %zu bytes to read", s->queue_len);
	snprintf(buf, size, "%s %s -> %s %s", sk_kind_name(s), name, pname, what);
	return true;
}

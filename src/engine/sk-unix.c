/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unix sockets. sock_diag tells the peer (by inode), the listener's backlog
 * and pending connections; the queue is copied by peeking.
 *
 * Restore:
 *  - a connected pair with both ends in the image: socketpair() of the same
 *    type, each queue refilled by sending from the other end. A client
 *    that had connected to a named listener and the server's accepted
 *    socket come back this way too, so getpeername()/getsockname() of the
 *    restored pair show no name where they showed the listener's path.
 *    Peer credentials (SO_PEERCRED) are the controller's.
 *  - a dgram pair where both ends are named: bound and connected again.
 *  - a stream whose peer was closed: a socketpair whose other end is
 *    closed once the queue is refilled, so the rest reads as EOF.
 *  - a listener: bound to its name again (a stale socket file is removed)
 *    and listening with its backlog.
 *  - a bound dgram socket: bound again, its queue sent from an unnamed
 *    socket (the senders' addresses are lost; at most max_dgram_qlen
 *    messages fit); connected to its peer's name when it was. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/net.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/sk-diag.h"
#include "engine/sk-opts.h"
#include "engine/sockets.h"
#include "util/cleanup.h"
#include "util/log.h"

static bool named(const struct sk_addr *a)
{
	return a->len > offsetof(struct sockaddr_un, sun_path);
}

static bool relative(const struct sk_addr *a)
{
	return named(a) && ((const struct sockaddr_un *)&a->ss)->sun_path[0] != '\0' &&
	       ((const struct sockaddr_un *)&a->ss)->sun_path[0] != '/';
}


/* Why a connection waiting on a listener cannot come back, or NULL: its
 * client must still be there (it is checked to be in the tree later) and
 * must not have written yet, since what the server side (a socket with
 * no inode yet) holds can only be read by accepting it; the client's
 * send queue (the bytes it sent and nobody read) tells. */
static const char *pending_refusal(uint32_t client)
{
	struct unix_diag_info c;
	if (!client)
		return "its client closed";
	if (unix_diag_query(client, &c) < 0 || !c.has_peer)
		return "its client cannot be found";
	if (c.wqueue)
		return "its client has sent data already";
	return NULL;
}

static int collect_pending(pid_t pid, int fd, struct sk_rec *s, const struct unix_diag_info *d, const char *name)
{
	const char *why = d->nicons > SK_MAX_PENDING ? "more than 64 are waiting" : NULL;
	for (uint32_t i = 0; !why && i < d->nicons; i++) {
		why = pending_refusal(d->icons[i]);
		s->pending[i] = d->icons[i];
	}
	if (why || d->rqueue > d->nicons) {
		log_error("pid %d: fd %d is a listening %s (%s) with %u connection(s) not yet accepted, which "
			  "cannot be checkpointed (%s); checkpoint when the server has accepted them", pid, fd,
			  sk_kind_name(s), name, d->rqueue > d->nicons ? d->rqueue : d->nicons,
			  why ? why : "the kernel does not list them all");
		return -EOPNOTSUPP;
	}
	s->npending = d->nicons;
	return 0;
}

static int collect_state(pid_t pid, int fd, struct sk_rec *s, const struct unix_diag_info *d, const char *name)
{
	if (d->state == TCP_LISTEN) {
		int r = collect_pending(pid, fd, s, d, name);
		if (r < 0)
			return r;
		s->state = SK_LISTEN;
		s->backlog = d->wqueue > SK_MAX_BACKLOG ? SK_MAX_BACKLOG : (int)d->wqueue;
	} else if (d->has_peer) {
		/* peer_ino 0: the peer was closed; kept as connected so that the
		 * restored socket reads EOF (stream) or ECONNREFUSED (dgram). */
		s->state = SK_CONNECTED;
		s->peer_ino = d->peer_ino;
	} else {
		s->state = SK_UNCONNECTED;
	}
	s->shutdown = d->shutdown;
	return 0;
}

/* A dgram socket connected to a named socket that is not connected back
 * comes back by connecting to the name (think of /dev/log). */
static int collect_by_name(struct sk_rec *s)
{
	struct unix_diag_info pd;
	if (s->type != SOCK_DGRAM || s->state != SK_CONNECTED || !s->peer_ino)
		return 0;
	int r = unix_diag_query(s->peer_ino, &pd);
	if (r < 0)
		return r;
	s->connect_by_name = !(pd.has_peer && pd.peer_ino == s->ino);
	/* Connected to an unbound socket that is not connected back (it
	 * disconnected with AF_UNSPEC): no name to connect to again. */
	return s->connect_by_name && !named(&s->peer_name) ? -EDESTADDRREQ : 0;
}

/* Whether the file at the socket's path (seen from the process' root) is
 * still the one it was bound to. */
static void collect_name_gone(pid_t pid, struct sk_rec *s, const struct unix_diag_info *d)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&s->name.ss;
	char path[sizeof(un->sun_path) + 32];
	struct stat st;

	if (!named(&s->name) || un->sun_path[0] != '/' || !d->vfs_ino)
		return;
	size_t n = strnlen(un->sun_path, s->name.len - offsetof(struct sockaddr_un, sun_path));
	snprintf(path, sizeof(path), "/proc/%d/root%.*s", pid, (int)n, un->sun_path);
	s->name_gone = lstat(path, &st) < 0 || st.st_ino != d->vfs_ino;
}

int sk_unix_collect(pid_t pid, int fd, int sk, struct sk_rec *s)
{
	struct unix_diag_info d;
	char name[256], pname[256];

	int r = unix_diag_query(s->ino, &d);
	if (r < 0)
		return log_error_errno(r, "pid %d: fd %d: sock_diag does not know unix socket %" PRIu64
				       " (is it in another network namespace?): %m", pid, fd, s->ino);
	if ((r = sk_get_addr(sk, false, &s->name)) < 0 || (r = sk_get_addr(sk, true, &s->peer_name)) < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read the addresses of the %s: %m", pid, fd,
				       sk_kind_name(s));
	sk_addr_format(AF_UNIX, &s->name, name, sizeof(name));
	sk_addr_format(AF_UNIX, &s->peer_name, pname, sizeof(pname));
	if ((r = collect_state(pid, fd, s, &d, name)) < 0)
		return r;
	if ((r = collect_by_name(s)) == -EDESTADDRREQ) {
		log_error("pid %d: fd %d is a %s connected to an unbound socket that is not connected back, which "
			  "cannot be checkpointed yet", pid, fd, sk_kind_name(s));
		return -EOPNOTSUPP;
	}
	if (r < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot find the peer of the %s (%s): %m", pid, fd,
				       sk_kind_name(s), pname);
	/* Bound again on restore (a connected stream's name is its listener's). */
	bool binds = s->state != SK_CONNECTED || s->type == SOCK_DGRAM;
	if (binds)
		collect_name_gone(pid, s, &d);
	bool rel = binds && relative(&s->name);
	if ((rel && sk_unix_find_dir(pid, &s->name, d.vfs_ino, &s->dir) < 0) ||
	    (s->connect_by_name && relative(&s->peer_name) && sk_unix_find_dir(pid, &s->peer_name, 0, &s->peer_dir) < 0)) {
		log_error("pid %d: fd %d is a %s bound or connected to the relative path '%s' whose socket file is not "
			  "in the process' current directory, which cannot be checkpointed", pid, fd, sk_kind_name(s),
			  rel ? name : pname);
		return -EOPNOTSUPP;
	}
	/* A stream or seqpacket socket that never connected has no queue
	 * (and recvmsg refuses it with EINVAL or ENOTCONN). */
	bool has_queue = s->state == SK_CONNECTED || (s->state == SK_UNCONNECTED && s->type == SOCK_DGRAM);
	sk_scm_holder(pid, fd);
	if (has_queue && (r = sk_queue_peek(sk, s)) < 0) {
		if (r == -EXDEV)
			log_error("pid %d: fd %d is a %s (%s) with file descriptors in flight (SCM_RIGHTS) in its "
				  "queue that cannot be checkpointed (see the line before)", pid, fd, sk_kind_name(s),
				  name);
		else if (r == -EFBIG || r == -E2BIG)
			log_error("pid %d: fd %d is a %s (%s) with more than %u MiB or %u messages queued, which is "
				  "more than a checkpoint keeps", pid, fd, sk_kind_name(s), name, SK_MAX_QUEUE >> 20,
				  SK_MAX_MSGS);
		else
			log_error_errno(r, "pid %d: fd %d: cannot read the queue of the %s (%s): %m", pid, fd,
					sk_kind_name(s), name);
		return r;
	}
	if ((r = sk_opts_collect(sk, s)) == -EOPNOTSUPP) {
		log_error("pid %d: fd %d is a %s with an eBPF socket filter (SO_ATTACH_BPF), which cannot be read "
			  "back to be checkpointed", pid, fd, sk_kind_name(s));
		return r;
	}
	if (r < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read the options of the %s: %m", pid, fd,
				       sk_kind_name(s));
	return 0;
}

/* --- restore --- */

/* The path of a named socket, NUL-terminated; "" for abstract ones. */
#define SK_PATH_MAX (PATH_MAX + sizeof(((struct sockaddr_un *)0)->sun_path) + 2)

/* The path of a named socket (a relative one from its directory); "" for
 * abstract ones and relative ones without a directory. */
static void path_of(const struct sk_rec *s, char *buf, size_t size)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&s->name.ss;
	size_t n = strnlen(un->sun_path, s->name.len - offsetof(struct sockaddr_un, sun_path));
	buf[0] = 0;
	if (relative(&s->name) && (!s->dir || sk_unix_abs(s->dir, &s->name, buf, size) < 0))
		buf[0] = 0;
	else if (!relative(&s->name))
		snprintf(buf, size, "%.*s", (int)n, un->sun_path);
}

static void aside_of(const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s.stasis-%d", path, (int)getpid());
}

/* bind() or connect() to an address of s's (a relative one from dir). */
static int at_name(int fd, const struct sk_addr *a, const char *dir, bool conn)
{
	if (relative(a))
		return dir ? sk_unix_at(dir, fd, a, conn) : -EINVAL;
	int r = conn ? connect(fd, (const struct sockaddr *)&a->ss, a->len) : bind(fd, (const struct sockaddr *)&a->ss, a->len);
	return r < 0 ? -errno : 0;
}

/* A socket whose file was unlinked (or taken over by a later socket of
 * the tree) binds to its path and unlinks it again (gone_done); whatever
 * is at the path now is moved aside meanwhile, since a socket keeps to
 * the inode it was bound to, not to the name. */
static int bind_gone(int fd, const struct sk_rec *s, const char *path)
{
	char aside[SK_PATH_MAX + 32];
	aside_of(path, aside, sizeof(aside));
	if (rename(path, aside) < 0 && errno != ENOENT)
		return -errno;
	int r = at_name(fd, &s->name, s->dir, false);
	if (r < 0)
		(void)rename(aside, path);
	return r;
}

/* After bind_name (and a refill through the path): a gone name is
 * unlinked and what was at the path comes back. */
static int gone_done(const struct sk_rec *s)
{
	char path[SK_PATH_MAX], aside[SK_PATH_MAX + 32];
	int r = 0;
	if (!s->name_gone || !named(&s->name))
		return 0;
	path_of(s, path, sizeof(path));
	if (path[0] != '/')
		return 0;
	aside_of(path, aside, sizeof(aside));
	if (unlink(path) < 0)
		r = -errno;
	if (rename(aside, path) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

/* Whether a live socket answers at s's name. */
static bool name_answers(const struct sk_rec *s)
{
	_cleanup_close_ int probe = socket(AF_UNIX, s->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return probe < 0 || at_name(probe, &s->name, s->dir, true) != -ECONNREFUSED;
}

/* Binds to s's name; a socket file left at the path by the dead original
 * is removed first, but only a socket file nobody listens on. A gone
 * name needs gone_done() after. */
static int bind_name(int fd, const struct sk_rec *s)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&s->name.ss;
	char path[SK_PATH_MAX];
	struct stat st;

	if (!named(&s->name))
		return 0;
	path_of(s, path, sizeof(path));
	if (relative(&s->name) && !path[0])
		return -EINVAL;
	if (s->name_gone && path[0] == '/')
		return bind_gone(fd, s, path);
	int r = at_name(fd, &s->name, s->dir, false);
	if (r != -EADDRINUSE || un->sun_path[0] == '\0')
		return r;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || name_answers(s))
		return -EADDRINUSE;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return at_name(fd, &s->name, s->dir, false);
}

/* bind_name for the ends of a pair (filled through their peers). */
static int bind_pair_end(int fd, const struct sk_rec *s)
{
	int r = bind_name(fd, s);
	return r < 0 ? r : gone_done(s);
}

static int apply_shutdown(int fd, int bits)
{
	static const int how[] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };
	if (bits <= 0 || bits > 3)
		return 0;
	return shutdown(fd, how[bits]) < 0 ? -errno : 0;
}

/* Fills a named socket's queue from an unnamed one connected to it. */
static int fill_from_unnamed(int fd, const struct sk_rec *s)
{
	if (!s->queue_len && !s->nmsgs)
		return 0;
	_cleanup_close_ int tmp = socket(AF_UNIX, s->type | SOCK_CLOEXEC, 0);
	if (tmp < 0)
		return -errno;
	int r = at_name(tmp, &s->name, s->dir, true);
	return r < 0 ? r : sk_queue_fill(tmp, s, NULL, 0);
}

static int restore_single(const struct sk_rec *s, int fd)
{
	int r;
	if ((r = sk_opts_apply(fd, s)) < 0)
		return r;
	if ((r = bind_name(fd, s)) < 0)
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot bind it again: %m", s->ino);
	if (s->state == SK_LISTEN) {
		if ((r = sk_filter_apply(fd, s)) < 0)
			return r;
		r = listen(fd, s->backlog) < 0 ? -errno : 0;
		int g = gone_done(s);
		if (r < 0 || (r = g) < 0)
			return log_error_errno(r, "unix socket %" PRIu64 ": cannot listen: %m", s->ino);
		return 0;
	}
	if ((r = fill_from_unnamed(fd, s)) < 0) {
		(void)gone_done(s);
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot refill its queue (%zu bytes; see "
				       "net.unix.max_dgram_qlen): %m", s->ino, s->queue_len);
	}
	if ((r = gone_done(s)) < 0)
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot unlink its path again: %m", s->ino);
	if (s->connect_by_name && (r = at_name(fd, &s->peer_name, s->peer_dir, true)) < 0)
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot connect to its peer again: %m", s->ino);
	if ((r = sk_filter_apply(fd, s)) < 0)
		return r;
	return apply_shutdown(fd, s->shutdown);
}

/* Fills both queues of a connected pair, each from the other end; options
 * after, so that a send buffer grown for the refill is set back. */
static int fill_pair(int a, const struct sk_rec *sa, int b, const struct sk_rec *sb)
{
	int r;
	if ((r = sk_queue_fill(b, sa, NULL, 0)) < 0 || (sb && (r = sk_queue_fill(a, sb, NULL, 0)) < 0))
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot refill the queues of the pair: %m", sa->ino);
	if ((r = sk_opts_apply(a, sa)) < 0 || (sb && (r = sk_opts_apply(b, sb)) < 0) ||
	    (r = sk_filter_apply(a, sa)) < 0 || (sb && (r = sk_filter_apply(b, sb)) < 0))
		return r;
	if ((r = apply_shutdown(a, sa->shutdown)) < 0 || (sb && (r = apply_shutdown(b, sb->shutdown)) < 0))
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot shut the pair down again: %m", sa->ino);
	return 0;
}

static int restore_named_pair(const struct sk_rec *s, const struct sk_rec *p, int a, int b)
{
	int r;
	if ((r = bind_name(a, s)) < 0 || (r = bind_name(b, p)) < 0) {
		(void)gone_done(s);
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot bind the pair again: %m", s->ino);
	}
	if (connect(a, (const struct sockaddr *)&p->name.ss, p->name.len) < 0 ||
	    connect(b, (const struct sockaddr *)&s->name.ss, s->name.len) < 0)
		r = -errno;
	(void)gone_done(s);
	(void)gone_done(p);
	if (r < 0)
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot connect the pair again: %m", s->ino);
	return fill_pair(a, s, b, p);
}

/* Without peer, the peer was closed: b is closed by the caller once the
 * queue is refilled, as the original's was. A dgram end may have a name
 * of its own (bound, or autobound by SO_PASSCRED) and gets it back. */
static int restore_pair(const struct sk_rec *s, const struct sk_rec *peer, int a, int b)
{
	int r = 0;
	if (s->type == SOCK_DGRAM && ((r = bind_pair_end(a, s)) < 0 || (peer && (r = bind_pair_end(b, peer)) < 0)))
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot bind the pair again: %m", s->ino);
	return fill_pair(a, s, b, peer);
}

/* An unbound, unconnected dgram socket with messages queued (sent by a
 * socket connected to it, before it disconnected with AF_UNSPEC): made
 * as a pair, disconnected first (which empties its queue), then filled
 * by the other end, which stays connected to it until closed. */
static int restore_unbound(const struct sk_rec *s, int a, int b)
{
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	int r;
	if (connect(a, &unspec, sizeof(unspec)) < 0)
		return log_error_errno(errno, "unix socket %" PRIu64 ": cannot disconnect it: %m", s->ino);
	if ((r = sk_queue_fill(b, s, NULL, 0)) < 0)
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot refill its queue: %m", s->ino);
	if ((r = sk_opts_apply(a, s)) < 0 || (r = sk_filter_apply(a, s)) < 0)
		return r;
	return apply_shutdown(a, s->shutdown);
}

int sk_unix_restore_pending(const struct sk_rec *s, int *ret_fd)
{
	int r;
	_cleanup_close_ int fd = socket(AF_UNIX, s->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "unix socket %" PRIu64 ": cannot create it: %m", s->ino);
	if ((r = sk_opts_apply(fd, s)) < 0)
		return r;
	if (connect(fd, (const struct sockaddr *)&s->peer_name.ss, s->peer_name.len) < 0)
		return log_error_errno(errno, "unix socket %" PRIu64 ": cannot connect to its listener again (is its "
				       "backlog full?): %m", s->ino);
	if ((r = sk_filter_apply(fd, s)) < 0)
		return r;
	if ((r = apply_shutdown(fd, s->shutdown)) < 0)
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot shut it down again: %m", s->ino);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int sk_unix_restore(const struct sk_rec *s, const struct sk_rec *peer, int *ret_fd, int *ret_peer_fd)
{
	int sv[2], r;

	if (sk_needs_peer(s) && (!peer || !sk_is_pair(s, peer) || !ret_peer_fd))
		return log_error_errno(EINVAL, "unix socket %" PRIu64 " must be restored with its peer %" PRIu64,
				       s->ino, s->peer_ino);
	if (!sk_needs_peer(s) && peer)
		return log_error_errno(EINVAL, "unix socket %" PRIu64 " is restored alone", s->ino);

	bool pair = peer || (s->state == SK_CONNECTED && !s->connect_by_name);
	bool named_pair = peer && s->type == SOCK_DGRAM && named(&s->name) && named(&peer->name);
	bool unbound_q = !pair && s->type == SOCK_DGRAM && !named(&s->name) && s->nmsgs;
	if (unbound_q) {
		r = socketpair(AF_UNIX, s->type | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
	} else if (!pair || named_pair) {
		sv[0] = socket(AF_UNIX, s->type | SOCK_CLOEXEC, 0);
		sv[1] = named_pair ? socket(AF_UNIX, s->type | SOCK_CLOEXEC, 0) : -1;
		if (sv[0] < 0 || (named_pair && sv[1] < 0))
			r = -errno;
		else
			r = 0;
	} else {
		r = socketpair(AF_UNIX, s->type | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
	}
	_cleanup_close_ int a = sv[0], b = sv[1];
	if (r < 0)
		return log_error_errno(r, "unix socket %" PRIu64 ": cannot create it: %m", s->ino);

	if (unbound_q)
		r = restore_unbound(s, a, b);
	else if (named_pair)
		r = restore_named_pair(s, peer, a, b);
	else if (pair)
		r = restore_pair(s, peer, a, b);
	else
		r = restore_single(s, a);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(a);
	if (peer)
		*ret_peer_fd = TAKE_FD(b);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Established TCP connections (--tcp-established), through the kernel's
 * TCP repair mode (TCP_REPAIR, Documentation/networking/tcp.rst and
 * tcp(7)). A socket in repair mode sends no FIN or reset when it is
 * closed, and lets its queues and sequence numbers be read and set. It
 * still takes (and acknowledges) what the peer sends, so during the dump
 * a drop-all socket filter keeps that out (block_input). So:
 *
 *  - dump puts the target's socket (our pidfd_getfd copy shares it) into
 *    repair mode while the tree is frozen and reads sequence numbers,
 *    both queues (peeked: nothing is consumed), the options agreed at the
 *    handshake, the timestamp clock and the window, again until nothing
 *    moved (sockets.c settles the whole tree). It keeps the copy: a dump
 *    that fails, or one with --leave-running, takes the socket out of
 *    repair mode again (sk_tcp_leave_repair) before the tree is thawed,
 *    and the guardian does it if we die (sk_tcp_recover); a dump that
 *    kills the tree kills it with the socket still in repair mode, so the
 *    peer sees nothing at all (its later packets find no socket: the
 *    network lock's part, until the restore).
 *  - restore makes a new socket in repair mode, gives it the sequence
 *    numbers, binds and "connects" it (no handshake in repair mode), puts
 *    the options, the receive queue and the sent part of the send queue
 *    back, then the window. Only when every socket of the tree exists
 *    (two ends of one connection may both be in the tree) does
 *    sk_tcp_finish() leave repair mode (the kernel then sends a window
 *    probe, which makes the peer answer with its current state) and queue
 *    the bytes that were not sent yet as ordinary writes.
 *
 * States: ESTABLISHED, FIN_WAIT1 and FIN_WAIT2 (our FIN is made again by
 * shutdown(SHUT_WR) in repair mode; the peer acknowledges it again), and
 * CLOSE_WAIT, LAST_ACK and CLOSING: the peer's FIN, which repair mode
 * cannot put into a receive queue, is sent to the restored socket as a
 * segment of ours (sk-tcp-fin.c). Connecting states have no connection
 * yet: those are refused. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/sk-tcp-fin.h"
#include "engine/sockets.h"
#include "engine/syscalls.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* What moves when the connection carries data: compared across a read. */
struct tcp_marks {
	uint32_t rcv_nxt, write_seq;
	int outq;
};

struct sk_tcp {
	struct tcp_marks marks; /* dump: as the queues were copied */
	int state;        /* TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2 */
	uint32_t snd_seq; /* sequence number of sendq's first byte (snd_una) */
	uint32_t rcv_seq; /* ... of recvq's first byte */
	int mss;
	bool sack, tstamp, wscale;
	int snd_wscale, rcv_wscale;
	uint32_t ts; /* TCP_TIMESTAMP: our timestamp clock at dump */
	struct tcp_repair_window win;
	uint8_t *sendq; /* sent but not acknowledged, then not yet sent */
	size_t sendq_len, unsent;
	uint8_t *recvq; /* received, not yet read */
	size_t recvq_len;
	int cork;
	char ifname[IFNAMSIZ]; /* SO_BINDTODEVICE, "" when none */
	int repair_fd; /* dump: our copy while the target's socket is in repair mode, else -1 */
	bool blocked;  /* dump: our drop-all socket filter is on it */
	int reuse;     /* dump: SO_REUSEADDR before repair mode (which overwrites it) */
};

static const struct {
	int state;
	const char *name;
} states[] = {
	{ TCP_ESTABLISHED, "established" }, { TCP_SYN_SENT, "syn_sent" },   { TCP_SYN_RECV, "syn_recv" },
	{ TCP_FIN_WAIT1, "fin_wait1" },     { TCP_FIN_WAIT2, "fin_wait2" }, { TCP_TIME_WAIT, "time_wait" },
	{ TCP_CLOSE, "close" },             { TCP_CLOSE_WAIT, "close_wait" }, { TCP_LAST_ACK, "last_ack" },
	{ TCP_LISTEN, "listen" },           { TCP_CLOSING, "closing" },
};

static const char *state_name(int st)
{
	for (size_t i = 0; i < ARRAY_SIZE(states); i++)
		if (states[i].state == st)
			return states[i].name;
	return "unknown";
}

static bool restorable(int st)
{
	return st == TCP_ESTABLISHED || st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_CLOSE_WAIT ||
	       st == TCP_LAST_ACK || st == TCP_CLOSING;
}

static bool fin_sent(int st)
{
	return st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

static bool peer_fin(int st)
{
	return st == TCP_CLOSE_WAIT || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

/* Where the peer's FIN sits in the sequence space: just after the
 * unread bytes of the receive queue. */
static uint32_t peer_fin_seq(const struct sk_tcp *t)
{
	return t->rcv_seq + (uint32_t)t->recvq_len;
}

static int set_int(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof(v)) < 0 ? -errno : 0;
}

static int get_int(int fd, int level, int name, int *ret)
{
	socklen_t l = sizeof(*ret);
	return getsockopt(fd, level, name, ret, &l) < 0 ? -errno : 0;
}

void sk_tcp_free(struct sk_tcp *t)
{
	if (!t)
		return;
	if (t->repair_fd >= 0)
		close(t->repair_fd);
	free(t->sendq);
	free(t->recvq);
	free(t);
}

void sk_tcp_leave_repair(struct sk_tcp *t)
{
	if (!t || t->repair_fd < 0)
		return;
	int zero = 0; /* the kernel wants an int even here */
	if (t->blocked && setsockopt(t->repair_fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)) < 0)
		log_warn("a TCP connection could not get its packets back (socket filter): %s; it may stall",
			 strerror(errno));
	/* After the filter dropped the peer's packets, a window probe makes
	 * it answer at once (both sides' timers backed off meanwhile);
	 * otherwise the connection goes on as if nothing happened. */
	int off = t->blocked ? TCP_REPAIR_OFF : TCP_REPAIR_OFF_NO_WP;
	t->blocked = false;
	int r = set_int(t->repair_fd, SOL_TCP, TCP_REPAIR, off);
	if (r < 0)
		log_warn("a TCP connection could not leave repair mode: %s; it may stall", strerror(-r));
	else if (t->reuse && (r = set_int(t->repair_fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0)
		log_warn("a TCP connection lost its SO_REUSEADDR: %s", strerror(-r));
	close(t->repair_fd);
	t->repair_fd = -1;
}

/* Our drop-all filter, and nothing else? */
static bool has_our_filter(int sk)
{
	struct sock_filter f[2];
	socklen_t len = ARRAY_SIZE(f); /* SO_GET_FILTER counts instructions */
	return getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, f, &len) == 0 && len == 1 && f[0].code == (BPF_RET | BPF_K) &&
	       f[0].k == 0;
}

static struct sk_tcp_reuse *reuse_log;

void sk_tcp_reuse_log(struct sk_tcp_reuse *log)
{
	reuse_log = log;
}

static bool had_reuse(const struct sk_tcp_reuse *log, int sk)
{
	struct stat st;
	size_t n = log ? __atomic_load_n(&log->n, __ATOMIC_ACQUIRE) : 0;
	if (n == 0 || fstat(sk, &st) < 0)
		return false;
	for (size_t i = 0; i < n && i < SK_TCP_REUSE_MAX; i++)
		if (log->ino[i] == (uint64_t)st.st_ino)
			return true;
	return false;
}

static void recover_fd(int pidfd, pid_t pid, int fd, const struct sk_tcp_reuse *log)
{
	int proto = 0, repair = 0, zero = 0;
	_cleanup_close_ int sk = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (sk < 0 || get_int(sk, SOL_SOCKET, SO_PROTOCOL, &proto) < 0 || proto != IPPROTO_TCP ||
	    get_int(sk, SOL_TCP, TCP_REPAIR, &repair) < 0 || repair != 1)
		return;
	if (has_our_filter(sk))
		(void)setsockopt(sk, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero));
	if (set_int(sk, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF) < 0)
		log_warn("pid %d: fd %d: its TCP connection could not leave repair mode: %s", pid, fd, strerror(errno));
	else if (had_reuse(log, sk) && set_int(sk, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
		log_warn("pid %d: fd %d: its TCP connection lost its SO_REUSEADDR: %s", pid, fd, strerror(errno));
}

void sk_tcp_recover(pid_t pid, const struct sk_tcp_reuse *log)
{
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	_cleanup_close_ int pidfd = sys_pidfd_open(pid, 0);
	_cleanup_closedir_ DIR *d = pidfd >= 0 ? opendir(path) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		int fd;
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n <= 0 || parse_int(de->d_name, &fd) < 0)
			continue;
		link[n] = 0;
		if (!strncmp(link, "socket:[", 8))
			recover_fd(pidfd, pid, fd, log);
	}
}

/* --- dump --- */

/* Repair mode keeps our side quiet but still takes what the peer sends,
 * and acknowledges it: bytes that would come after the copy and be lost.
 * A socket filter that drops everything stops that at the socket (the
 * peer retransmits later), for the dump's duration; it goes with the
 * socket when the tree is killed, and is taken off with repair mode
 * otherwise. A socket with a filter of the application's keeps it: then
 * only the checks that the connection did not move protect the copy. */
static void block_input(int sk, struct sk_tcp *t)
{
	struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = { .len = 1, .filter = &drop };
	socklen_t len = 0;

	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &len) < 0 || len != 0)
		return;
	t->blocked = setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0;
}

bool sk_tcp_blocked(const struct sk_tcp *t)
{
	return t->blocked;
}

/* Peeks at the queue selected by TCP_REPAIR_QUEUE into a buffer of
 * `room` bytes (the send queue is copied whole or not at all). */
static int peek_queue(int sk, size_t room, uint8_t **ret, size_t *ret_len)
{
	if (room > SK_MAX_QUEUE)
		return -EFBIG;
	_cleanup_free_ uint8_t *buf = malloc(room + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = recv(sk, buf, room + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN)
		return -errno;
	n = n < 0 ? 0 : n;
	if ((size_t)n > room)
		return -EFBIG;
	*ret = TAKE_PTR(buf);
	*ret_len = (size_t)n;
	return 0;
}

static int read_recv_queue(int sk, struct sk_tcp *t)
{
	int inq = 0, seq, r;
	if ((r = set_int(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) < 0 ||
	    (r = get_int(sk, SOL_TCP, TCP_QUEUE_SEQ, &seq)) < 0)
		return r;
	if (ioctl(sk, SIOCINQ, &inq) < 0)
		return -errno;
	if ((r = peek_queue(sk, (size_t)inq, &t->recvq, &t->recvq_len)) < 0)
		return r;
	/* The peer's FIN counts in rcv_nxt (one sequence number), not in
	 * the queue's bytes: restore sends it again after them. */
	t->rcv_seq = (uint32_t)seq - (peer_fin(t->state) ? 1u : 0u) - (uint32_t)t->recvq_len;
	return 0;
}

static int read_send_queue(int sk, struct sk_tcp *t)
{
	int outq = 0, unsent = 0, seq, r;
	if ((r = set_int(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)) < 0 ||
	    (r = get_int(sk, SOL_TCP, TCP_QUEUE_SEQ, &seq)) < 0)
		return r;
	if (ioctl(sk, SIOCOUTQ, &outq) < 0 || ioctl(sk, SIOCOUTQNSD, &unsent) < 0)
		return -errno;
	if ((r = peek_queue(sk, (size_t)outq, &t->sendq, &t->sendq_len)) < 0)
		return r;
	/* The FIN we sent takes a sequence number but no byte of the queue:
	 * restore sends the bytes from here, then the FIN again. */
	t->snd_seq = (uint32_t)seq - (fin_sent(t->state) ? 1u : 0u) - (uint32_t)t->sendq_len;
	/* After a FIN everything counts as sent (restore cannot write after
	 * shutdown); otherwise the unsent tail goes out as ordinary writes. */
	t->unsent = fin_sent(t->state) || unsent < 0 ? 0 : (size_t)unsent > t->sendq_len ? t->sendq_len : (size_t)unsent;
	return set_int(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
}

static int read_options(int sk, const struct tcp_info *ti, struct sk_tcp *t)
{
	socklen_t l = sizeof(t->win);
	int r, ts;

	t->sack = ti->tcpi_options & TCPI_OPT_SACK;
	t->tstamp = ti->tcpi_options & TCPI_OPT_TIMESTAMPS;
	t->wscale = ti->tcpi_options & TCPI_OPT_WSCALE;
	t->snd_wscale = ti->tcpi_snd_wscale;
	t->rcv_wscale = ti->tcpi_rcv_wscale;
	if ((r = get_int(sk, SOL_TCP, TCP_MAXSEG, &t->mss)) < 0 || (r = get_int(sk, SOL_TCP, TCP_CORK, &t->cork)) < 0)
		return r;
	if (t->tstamp && (r = get_int(sk, SOL_TCP, TCP_TIMESTAMP, &ts)) < 0)
		return r;
	t->ts = t->tstamp ? (uint32_t)ts : 0;
	if (getsockopt(sk, SOL_TCP, TCP_REPAIR_WINDOW, &t->win, &l) < 0)
		return -errno;
	l = sizeof(t->ifname);
	if (getsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, t->ifname, &l) < 0)
		return -errno;
	t->ifname[sizeof(t->ifname) - 1] = 0;
	return 0;
}

static int read_marks(int sk, struct tcp_marks *m)
{
	int r, rcv, snd;
	if ((r = set_int(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) < 0 ||
	    (r = get_int(sk, SOL_TCP, TCP_QUEUE_SEQ, &rcv)) < 0 ||
	    (r = set_int(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)) < 0 ||
	    (r = get_int(sk, SOL_TCP, TCP_QUEUE_SEQ, &snd)) < 0)
		return r;
	if (ioctl(sk, SIOCOUTQ, &m->outq) < 0)
		return -errno;
	m->rcv_nxt = (uint32_t)rcv;
	m->write_seq = (uint32_t)snd;
	return set_int(sk, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
}

static bool same_marks(const struct tcp_marks *a, const struct tcp_marks *b)
{
	return a->rcv_nxt == b->rcv_nxt && a->write_seq == b->write_seq && a->outq == b->outq;
}

/* One consistent copy: the marks did not move while the queues were read
 * (repair mode stops our side from sending, not the peer's packets from
 * arriving and being acknowledged). */
static int read_all(int sk, struct sk_tcp *t)
{
	for (int tries = 0; tries < 20; tries++) {
		struct tcp_info ti;
		struct tcp_marks after;
		socklen_t l = sizeof(ti);
		int r;

		free(t->sendq), free(t->recvq);
		t->sendq = t->recvq = NULL;
		t->sendq_len = t->recvq_len = 0;
		if (getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &l) < 0)
			return -errno;
		t->state = ti.tcpi_state; /* again: it may have moved before repair mode */
		if (!restorable(t->state))
			return -EPROTO;
		if ((r = read_marks(sk, &t->marks)) < 0 || (r = read_options(sk, &ti, t)) < 0 ||
		    (r = read_recv_queue(sk, t)) < 0 || (r = read_send_queue(sk, t)) < 0 || (r = read_marks(sk, &after)) < 0)
			return r;
		if (same_marks(&t->marks, &after))
			return 0;
	}
	return -EBUSY;
}

int sk_tcp_settle(struct sk_tcp *t, bool reread, bool *changed)
{
	struct tcp_marks now;
	if (!t || t->repair_fd < 0)
		return 0;
	int r = read_marks(t->repair_fd, &now);
	if (r < 0 || same_marks(&now, &t->marks))
		return r;
	*changed = true;
	return reread ? read_all(t->repair_fd, t) : 0;
}

static int refuse_state(pid_t pid, int fd, int st, const char *name, const char *pname)
{
	const char *why = "it has no connection to restore yet";
	return log_error_errno(-EOPNOTSUPP, "pid %d: fd %d is a TCP connection (%s -> %s) in state %s, which "
			       "cannot be checkpointed with --tcp-established (%s); close it in the application, "
			       "or dump with --tcp-close", pid, fd, name, pname, state_name(st), why);
}

int sk_tcp_collect(pid_t pid, int fd, int sk, int state, struct sk_rec *s, const char *name, const char *pname)
{
	if (!restorable(state))
		return refuse_state(pid, fd, state, name, pname);
	struct sk_tcp *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->repair_fd = -1;
	s->tcp = t;
	s->state = SK_CONNECTED;
	/* Repair mode sets SO_REUSEADDR to the kernel's "force" value and
	 * leaving it clears it: what the application had is read first and
	 * given back when the socket leaves it (sk_tcp_leave_repair). */
	int r = get_int(sk, SOL_SOCKET, SO_REUSEADDR, &t->reuse);
	if (r < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read SO_REUSEADDR of the TCP connection: %m", pid, fd);
	if (t->reuse && reuse_log && reuse_log->n < SK_TCP_REUSE_MAX) {
		reuse_log->ino[reuse_log->n] = s->ino;
		__atomic_store_n(&reuse_log->n, reuse_log->n + 1, __ATOMIC_RELEASE);
	}
	r = set_int(sk, SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON);
	if (r < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot put the TCP connection (%s -> %s) into repair mode: %m "
				       "(needs CAP_NET_ADMIN in its network namespace)", pid, fd, name, pname);
	t->repair_fd = fcntl(sk, F_DUPFD_CLOEXEC, 3);
	if (t->repair_fd < 0) {
		r = -errno;
		(void)set_int(sk, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
		return log_error_errno(r, "pid %d: fd %d: cannot keep a copy of the TCP socket: %m", pid, fd);
	}
	block_input(sk, t);
	r = read_all(sk, t);
	if (r == -EPROTO)
		return refuse_state(pid, fd, t->state, name, pname);
	if (r < 0)
		return log_error_errno(r, "pid %d: fd %d: cannot read the TCP connection (%s -> %s) in repair mode: %m",
				       pid, fd, name, pname);
	log_debug("pid %d: fd %d: TCP %s -> %s %s, %zu bytes to send (%zu unsent), %zu to read", pid, fd, name, pname,
		  state_name(t->state), t->sendq_len, t->unsent, t->recvq_len);
	return 0;
}

/* --- restore --- */

/* Room for len more bytes in the buffer (getsockopt shows twice the size
 * set; the queues were held by a socket that grew its buffers). */
static int make_room(int fd, int opt, int force, size_t len)
{
	int cur;
	int r = get_int(fd, SOL_SOCKET, opt, &cur);
	if (r < 0 || len == 0 || (size_t)cur >= 2 * len + 65536)
		return r;
	int want = (int)(len + 65536);
	if (setsockopt(fd, SOL_SOCKET, force, &want, sizeof(want)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, opt, &want, sizeof(want)) < 0)
		return -errno;
	return 0;
}

static int fill(int fd, int queue, const uint8_t *p, size_t len)
{
	int r = set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, queue);
	for (size_t off = 0; r >= 0 && off < len;) {
		size_t chunk = len - off > 65536 ? 65536 : len - off;
		ssize_t n = send(fd, p + off, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return r;
}

static int set_options(int fd, const struct sk_tcp *t)
{
	struct tcp_repair_opt o[4];
	size_t n = 0;
	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, (uint32_t)t->mss };
	if (t->wscale)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, (uint32_t)t->snd_wscale | (uint32_t)t->rcv_wscale << 16 };
	if (t->sack)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (t->tstamp)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0]))) < 0)
		return -errno;
	return t->tstamp ? set_int(fd, SOL_TCP, TCP_TIMESTAMP, (int)t->ts) : 0;
}

static int set_seqs(int fd, const struct sk_tcp *t)
{
	int r;
	if ((r = set_int(fd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON)) < 0 ||
	    (r = set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)) < 0 ||
	    (r = set_int(fd, SOL_TCP, TCP_QUEUE_SEQ, (int)t->snd_seq)) < 0 ||
	    (r = set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) < 0 ||
	    (r = set_int(fd, SOL_TCP, TCP_QUEUE_SEQ, (int)t->rcv_seq)) < 0)
		return r;
	if (t->ifname[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, t->ifname, (socklen_t)strlen(t->ifname)) < 0)
		return -errno;
	return 0;
}

/* The window as saved; before the peer's FIN is back, rcv_nxt is one
 * short of what rcv_wup was measured against (the kernel refuses a
 * window update point after rcv_nxt): then up to the FIN only. */
static int set_window(int fd, const struct sk_tcp *t, bool before_fin)
{
	struct tcp_repair_window w = t->win;
	uint32_t fin = peer_fin_seq(t);
	if (before_fin && (int32_t)(w.rcv_wup - fin) > 0)
		w.rcv_wup = fin;
	return setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0 ? -errno : 0;
}

/* The FINs of a closing connection, in the order they came: the peer's
 * through a segment of ours (sk-tcp-fin.c), which acknowledges what the
 * peer had acknowledged; ours by shutdown(SHUT_WR) in repair mode with
 * the send queue selected ("sent": repair mode transmits nothing), which
 * the peer acknowledges again. CLOSING is FIN_WAIT1 then the peer's FIN. */
static int put_fins(int fd, const struct sk_rec *s, const struct sk_tcp *t)
{
	uint32_t win = t->win.snd_wnd >> (t->wscale ? t->snd_wscale : 0);
	struct tcp_fin_seg seg = { .seq = peer_fin_seq(t), .ack = t->snd_seq,
				   .win = (uint16_t)(win > 65535 ? 65535 : win), .tstamp = t->tstamp };
	bool theirs = peer_fin(t->state), closing = t->state == TCP_CLOSING;
	int r = theirs ? tcp_fin_addrs(&s->name.ss, &s->peer_name.ss, s->family, &seg) : 0;

	if (r >= 0 && theirs && !closing)
		r = tcp_fin_inject(fd, &seg, TCP_CLOSE_WAIT);
	if (r >= 0 && fin_sent(t->state) && shutdown(fd, SHUT_WR) < 0)
		r = -errno;
	if (r >= 0 && closing)
		r = tcp_fin_inject(fd, &seg, TCP_CLOSING);
	if (r < 0 || !theirs)
		return r;
	log_debug("TCP socket %" PRIu64 ": the peer's FIN is back (%s, %d segment(s) sent)", s->ino,
		  state_name(t->state), r);
	return set_window(fd, t, false);
}

static int fill_queues(int fd, const struct sk_rec *s, const struct sk_tcp *t)
{
	int r;
	if ((r = make_room(fd, SO_RCVBUF, SO_RCVBUFFORCE, t->recvq_len)) < 0 ||
	    (r = make_room(fd, SO_SNDBUF, SO_SNDBUFFORCE, t->sendq_len)) < 0 ||
	    (r = fill(fd, TCP_RECV_QUEUE, t->recvq, t->recvq_len)) < 0 ||
	    (r = fill(fd, TCP_SEND_QUEUE, t->sendq, t->sendq_len - t->unsent)) < 0)
		return r;
	if ((r = set_window(fd, t, peer_fin(t->state))) < 0 || (r = put_fins(fd, s, t)) < 0)
		return r;
	return set_int(fd, SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
}

int sk_tcp_restore(int fd, const struct sk_rec *s)
{
	const struct sk_tcp *t = s->tcp;
	char name[128], pname[128];
	const char *step = "enter repair mode";
	int r = set_seqs(fd, t);

	if (r >= 0 && (step = "bind", bind(fd, (const struct sockaddr *)&s->name.ss, s->name.len) < 0))
		r = -errno;
	if (r >= 0 && (step = "connect", connect(fd, (const struct sockaddr *)&s->peer_name.ss, s->peer_name.len) < 0))
		r = -errno;
	if (r >= 0)
		step = "set its options", r = set_options(fd, t);
	if (r >= 0)
		step = peer_fin(t->state) ? "fill its queues and give it the peer's FIN again (sent through a raw "
					    "socket: needs CAP_NET_RAW and no firewall rule dropping it on loopback)"
					  : "fill its queues",
		r = fill_queues(fd, s, t);
	if (r >= 0)
		return 0;
	sk_addr_format(s->family, &s->name, name, sizeof(name));
	sk_addr_format(s->family, &s->peer_name, pname, sizeof(pname));
	return log_error_errno(r, "TCP connection %s -> %s (socket %" PRIu64 "): cannot %s in repair mode: %m", name,
			       pname, s->ino, step);
}

/* The unsent tail: ordinary writes now, sent as the window allows. */
static int send_unsent(int fd, const struct sk_tcp *t)
{
	int r = make_room(fd, SO_SNDBUF, SO_SNDBUFFORCE, t->sendq_len);
	const uint8_t *p = t->sendq + (t->sendq_len - t->unsent);
	for (size_t off = 0; r >= 0 && off < t->unsent;) {
		ssize_t n = send(fd, p + off, t->unsent - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return r;
}

int sk_tcp_finish(int fd, const struct sk_rec *s)
{
	const struct sk_tcp *t = s->tcp;
	char name[128], pname[128];
	int r = set_int(fd, SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF);
	/* Leaving repair mode cleared the SO_REUSEADDR that sk_opts_apply
	 * set: without it the connection's TIME_WAIT would keep the
	 * application's own listener from binding its port again. Images
	 * before 2026-12 hold the kernel's "force" value 2: on, too. */
	if (r >= 0 && (s->opts_set & (1u << SK_OPT_REUSEADDR)) && s->opts[SK_OPT_REUSEADDR])
		r = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (r >= 0)
		r = send_unsent(fd, t);
	if (r >= 0 && t->cork)
		r = set_int(fd, SOL_TCP, TCP_CORK, 1);
	if (r >= 0)
		return 0;
	sk_addr_format(s->family, &s->name, name, sizeof(name));
	sk_addr_format(s->family, &s->peer_name, pname, sizeof(pname));
	return log_error_errno(r, "TCP connection %s -> %s: cannot leave repair mode and queue its %zu unsent bytes: %m",
			       name, pname, t->unsent);
}

/* --- the record --- */

void sk_tcp_describe(const struct sk_tcp *t, char *buf, size_t size)
{
	snprintf(buf, size, "%s, %zu bytes to send (%zu not sent yet), %zu to read", state_name(t->state), t->sendq_len,
		 t->unsent, t->recvq_len);
}

void sk_tcp_to_json(const struct sk_tcp *t, struct json_builder *b)
{
	struct json_builder j;
	jb_begin(&j);
	jb_str(&j, "state", state_name(t->state));
	jb_u64(&j, "snd_seq", t->snd_seq);
	jb_u64(&j, "rcv_seq", t->rcv_seq);
	if (peer_fin(t->state))
		jb_u64(&j, "peer_fin_seq", peer_fin_seq(t));
	jb_int(&j, "mss", t->mss);
	jb_bool(&j, "sack", t->sack);
	jb_bool(&j, "tstamp", t->tstamp);
	jb_u64(&j, "ts", t->ts);
	jb_bool(&j, "wscale", t->wscale);
	jb_int(&j, "snd_wscale", t->snd_wscale);
	jb_int(&j, "rcv_wscale", t->rcv_wscale);
	jb_u64(&j, "snd_wl1", t->win.snd_wl1);
	jb_u64(&j, "snd_wnd", t->win.snd_wnd);
	jb_u64(&j, "max_window", t->win.max_window);
	jb_u64(&j, "rcv_wnd", t->win.rcv_wnd);
	jb_u64(&j, "rcv_wup", t->win.rcv_wup);
	jb_hex(&j, "sendq", t->sendq, t->sendq_len);
	jb_u64(&j, "unsent", t->unsent);
	jb_hex(&j, "recvq", t->recvq, t->recvq_len);
	jb_int(&j, "cork", t->cork);
	if (t->ifname[0])
		jb_str(&j, "ifname", t->ifname);
	jb_obj(b, "tcp", &j);
}

static int get_u32(const json_t *j, const char *key, uint32_t *ret)
{
	uint64_t v;
	int r = json_get_u64(j, key, &v);
	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return -EBADMSG;
	*ret = (uint32_t)v;
	return 0;
}

static int seqs_from_json(const json_t *j, struct sk_tcp *t)
{
	const char *st;
	int r;
	if ((r = json_get_str(j, "state", &st)) < 0)
		return r;
	t->state = -1;
	for (size_t i = 0; i < ARRAY_SIZE(states); i++)
		if (streq(states[i].name, st))
			t->state = states[i].state;
	if (!restorable(t->state))
		return -EBADMSG;
	if ((r = get_u32(j, "snd_seq", &t->snd_seq)) < 0 || (r = get_u32(j, "rcv_seq", &t->rcv_seq)) < 0 ||
	    (r = get_u32(j, "ts", &t->ts)) < 0 || (r = get_u32(j, "snd_wl1", &t->win.snd_wl1)) < 0 ||
	    (r = get_u32(j, "snd_wnd", &t->win.snd_wnd)) < 0 || (r = get_u32(j, "max_window", &t->win.max_window)) < 0 ||
	    (r = get_u32(j, "rcv_wnd", &t->win.rcv_wnd)) < 0 || (r = get_u32(j, "rcv_wup", &t->win.rcv_wup)) < 0)
		return r;
	return 0;
}

static int opts_from_json(const json_t *j, struct sk_tcp *t)
{
	const char *ifname = NULL;
	int r;
	if ((r = json_get_int(j, "mss", &t->mss)) < 0 || (r = json_get_bool(j, "sack", &t->sack)) < 0 ||
	    (r = json_get_bool(j, "tstamp", &t->tstamp)) < 0 || (r = json_get_bool(j, "wscale", &t->wscale)) < 0 ||
	    (r = json_get_int(j, "snd_wscale", &t->snd_wscale)) < 0 ||
	    (r = json_get_int(j, "rcv_wscale", &t->rcv_wscale)) < 0 || (r = json_get_int(j, "cork", &t->cork)) < 0)
		return r;
	if (json_object_get(j, "ifname") && (r = json_get_str(j, "ifname", &ifname)) < 0)
		return r;
	if (ifname && (strlen(ifname) == 0 || strlen(ifname) >= sizeof(t->ifname)))
		return -EBADMSG;
	if (ifname)
		memcpy(t->ifname, ifname, strlen(ifname) + 1);
	/* TCP's own bounds: MSS fits 16 bits, window scale is at most 14. */
	if (t->mss <= 0 || t->mss > 65535 || t->snd_wscale < 0 || t->snd_wscale > 14 || t->rcv_wscale < 0 ||
	    t->rcv_wscale > 14 || (t->cork != 0 && t->cork != 1))
		return -EBADMSG;
	return 0;
}

/* The peer's FIN: there exactly when the state says so, right after the
 * receive queue's bytes. */
static int peer_fin_from_json(const json_t *j, struct sk_tcp *t)
{
	uint32_t seq;
	if (!json_object_get(j, "peer_fin_seq"))
		return peer_fin(t->state) ? -EBADMSG : 0;
	int r = get_u32(j, "peer_fin_seq", &seq);
	if (r < 0)
		return r;
	return peer_fin(t->state) && seq == peer_fin_seq(t) ? 0 : -EBADMSG;
}

static int queues_from_json(const json_t *j, struct sk_tcp *t)
{
	void *q;
	uint64_t unsent;
	int r = json_get_hex_alloc(j, "sendq", SK_MAX_QUEUE, &q, &t->sendq_len);
	if (r < 0)
		return r;
	t->sendq = q;
	if ((r = json_get_hex_alloc(j, "recvq", SK_MAX_QUEUE, &q, &t->recvq_len)) < 0)
		return r;
	t->recvq = q;
	if ((r = json_get_u64(j, "unsent", &unsent)) < 0)
		return r;
	if (unsent > t->sendq_len || (unsent && fin_sent(t->state)))
		return -EBADMSG;
	t->unsent = (size_t)unsent;
	return peer_fin_from_json(j, t);
}

int sk_tcp_from_json(const json_t *obj, struct sk_tcp **ret)
{
	const json_t *j = json_object_get(obj, "tcp");
	if (!json_is_object(j))
		return -EBADMSG;
	struct sk_tcp *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->repair_fd = -1;
	*ret = t; /* freed by the caller either way */
	int r = seqs_from_json(j, t);
	if (r >= 0)
		r = opts_from_json(j, t);
	return r < 0 ? r : queues_from_json(j, t);
}

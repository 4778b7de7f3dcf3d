/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sockets: unix (stream, dgram, seqpacket) and inet (TCP, UDP, UDP-Lite,
 * ICMP ping and raw, over IPv4 and IPv6), the fd kind "socket" (files.h).
 *   sockets.c  the fd kind, the entry points below, addresses
 *   sk-queue.c the receive queue (peeked at dump, sent again at restore)
 *   sk-unix.c  unix sockets: dump and restore
 *   sk-unix-ext.c  unix connections to a process outside the tree
 *   sk-unix-path.c  unix names that are relative paths
 *   sk-scm.c   control messages in a unix queue: fds in flight, credentials
 *   sk-inet.c  TCP and UDP: dump and restore
 *   sk-raw.c   ICMP (ping), raw and UDP-Lite sockets
 *   sk-opts.c  socket options and filters;  sk-diag.c  sock_diag for unix
 *              sockets;  sk-inet-diag.c  inet_diag (UDP shutdown state)
 *   sk-tcp.c   established TCP connections (--tcp-established, repair mode)
 *   sk-udp.c   datagrams queued on UDP sockets, with their senders
 *   sk-opts.c  socket options;  sk-diag.c  sock_diag for unix sockets
 *   sk-json.c  the "socket" object of the fd's record
 * Both sides run in the controller: dump inspects a copy of the
 * target's socket (pidfd_getfd) while the target is frozen, and changes
 * nothing on it for good (a TCP connection kept with --tcp-established is
 * in repair mode until the dump ends: sk-tcp.c); restore creates sockets locally and returns fds
 * that the caller passes into the restored process (SCM_RIGHTS).
 *
 * Contract with the caller (the fd dump/restore):
 *  - sk_collect() refuses what cannot be restored faithfully, logging a
 *    message that names pid, fd and the kind of socket.
 *  - When sk_needs_peer(s) is true, the socket can only be restored together
 *    with its peer: the caller looks for the record whose ino is
 *    s->peer_ino among the sockets of the image and refuses the dump when it
 *    is missing. Such a pair is restored by one sk_restore(s, peer) call that
 *    returns both fds. sk_is_pair() tells whether two records are that pair.
 *  - Every other socket is restored alone: sk_restore(s, NULL). A unix dgram
 *    socket connected to a named socket (s->connect_by_name) connects to that
 *    name again, so when the named socket is in the image the caller restores
 *    it first: restoring all sockets whose state is not SK_CONNECTED before
 *    the connected ones is enough.
 *  - O_NONBLOCK and O_CLOEXEC are fd flags, left to the caller; the returned
 *    fds are blocking and O_CLOEXEC.
 *
 * sock_diag is asked in the controller's network namespace: a socket of a
 * target in another netns is not found there (sk_collect fails with a
 * message). Unix path names are bound in the controller's mount namespace. */
#pragma once

#include <jansson.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "engine/files.h"
#include "image/json.h"

#define SK_MAX_QUEUE (64u << 20) /* bytes kept per socket */
#define SK_MAX_MSGS (1u << 20)   /* datagrams kept per socket */
#define SK_MAX_BACKLOG (1 << 20)

enum sk_state {
	SK_UNCONNECTED, /* maybe bound */
	SK_LISTEN,
	SK_CONNECTED,
	SK_STATE_MAX,
};

/* The socket options kept; recorded when they differ from a new socket's,
 * and set on restore only then, so no privilege is needed for defaults. */
enum sk_opt {
	SK_OPT_REUSEADDR,
	SK_OPT_REUSEPORT,
	SK_OPT_KEEPALIVE,
	SK_OPT_BROADCAST,
	SK_OPT_OOBINLINE,
	SK_OPT_PASSCRED,
	SK_OPT_PRIORITY,
	SK_OPT_RCVLOWAT,
	SK_OPT_RCVBUF, /* as getsockopt shows it: twice what was asked */
	SK_OPT_SNDBUF,
	SK_OPT_MARK,
	SK_OPT_PEEK_OFF,
	SK_OPT_LINGER,   /* -1: off, else seconds */
	SK_OPT_RCVTIMEO, /* milliseconds */
	SK_OPT_SNDTIMEO,
	SK_OPT_NODELAY,
	SK_OPT_KEEPIDLE,
	SK_OPT_KEEPINTVL,
	SK_OPT_KEEPCNT,
	SK_OPT_DEFER_ACCEPT,
	SK_OPT_V6ONLY,
	SK_OPT_TOS,
	SK_OPT_TTL,
	SK_OPT_FREEBIND,  /* set before bind: a non-local address */
	SK_OPT_FREEBIND6,
	SK_OPT_HDRINCL,   /* raw sockets */
	SK_OPT_MAX,
};

struct sk_addr {
	socklen_t len; /* 0: none */
	struct sockaddr_storage ss;
};

/* Control messages of one queued message (dgram, seqpacket) or stream
 * chunk (sk-scm.c): the fds in flight (SCM_RIGHTS), described as fds of
 * their own kinds, and the sender's credentials (SCM_CREDENTIALS, kept
 * when the socket has SO_PASSCRED). */
#define SK_SCM_MAX_FDS 253 /* SCM_MAX_FD */
#define SK_SCM_MAX_DEPTH 16 /* sockets in flight inside sockets in flight */
struct sk_scm {
	uint64_t at;  /* dgram, seqpacket: the message's index; stream: byte offset */
	uint32_t len; /* stream: the chunk's bytes (the fds go with its first) */
	bool has_creds;
	int32_t pid;
	uint32_t uid, gid;
	struct files_rec fds; /* fd: 0..n-1; desc: a socket's SK_SCM_DESC | inode, the tree's numbering for the rest */
	int *ours;            /* dump: our copies of fds[], until the data pass */
	int *made;            /* restore: our fds for fds[], -1 until made */
};
#define SK_SCM_DESC (1ULL << 61)

struct sk_rec {
	uint64_t ino; /* socket inode ("socket:[N]") */
	int family;   /* AF_UNIX, AF_INET, AF_INET6 */
	int type;     /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	int protocol; /* inet: IPPROTO_TCP or IPPROTO_UDP; unix: 0 */
	enum sk_state state;
	/* unix: the peer's inode, 0 if none (or the peer was closed: a
	 * stream socket then keeps its queue and reads EOF after it). */
	uint64_t peer_ino;
	/* unix dgram connected to a named socket that is not connected back:
	 * restored by connecting to peer_name. */
	bool connect_by_name;
	/* Own address (unix: sun_path bytes as bound, a leading NUL for the
	 * abstract namespace, length kept; none when unbound) and the peer's. */
	struct sk_addr name, peer_name;
	/* unix: the socket file at name is no longer this socket's (unlinked,
	 * or another socket bound there since): bound, then unlinked again. */
	bool name_gone;
	/* unix, a relative name: the directory it was bound from (the
	 * binder's at dump time, where the socket file was); peer_dir the
	 * same for a relative peer_name (connect_by_name). NULL: none. */
	char *dir, *peer_dir;
	int backlog;  /* listeners */
	/* unix listeners: the clients of the connections not yet accepted, in
	 * accept order (each is a socket of the tree, pending_connect) */
#define SK_MAX_PENDING 64
	uint64_t pending[SK_MAX_PENDING];
	size_t npending;
	/* unix: a client whose connection waits on a listener of the tree:
	 * restored by connecting to it again (sockets.c, with the listener) */
	bool pending_connect;
	int shutdown; /* 1 receive side shut down, 2 send side (unix; inet: UDP, UDP-Lite) */
	uint32_t opts_set; /* bit (1 << SK_OPT_x): opts[x] recorded */
	int opts[SK_OPT_MAX];
	/* A classic BPF socket filter (SO_ATTACH_FILTER), as SO_GET_FILTER
	 * reads it back; filter_locked: SO_LOCK_FILTER. */
#define SK_MAX_FILTER 4096 /* BPF_MAXINSNS */
	struct sock_filter *filter;
	uint16_t filter_len;
	bool filter_locked;
	/* Bytes waiting to be read on this socket. Stream: nmsgs is 0. Dgram
	 * and seqpacket: msg_len[] splits the bytes into messages (maybe of
	 * length 0), in queue order. */
	uint8_t *queue;
	size_t queue_len;
	uint32_t *msg_len;
	size_t nmsgs;
	unsigned outside; /* dump only: SK_UNIX_CLOSE/RECONNECT asked for (sk-unix-ext.c) */
	/* In queue order; none when no message carries control data. */
	struct sk_scm *scm;
	size_t nscm;
	/* UDP: the address each datagram came from (nmsgs of them; sk-udp.c). */
	struct sk_addr *msg_from;
	/* An established TCP connection kept with --tcp-established
	 * (sk-tcp.c); NULL for every other socket. */
	struct sk_tcp *tcp;
};

/* Dump side: fills *ret for fd `fd` of process pid (pidfd: the process'
 * pidfd), or refuses with a logged message. Refused: sockets of families
 * other than unix/inet/inet6, inet other than TCP/UDP, TCP that is
 * connected or connecting, listeners with connections not yet accepted,
 * unix sockets with fds in flight (SCM_RIGHTS) of kinds sk-scm.c cannot
 * make, unix sockets bound to a relative path, queues above
 * SK_MAX_QUEUE. */
/* flags: SK_TCP_CLOSE (files.h) or 0. */
int sk_collect(pid_t pid, int pidfd, int fd, unsigned flags, struct sk_rec *ret);
/* Adds a "socket" object to the fd's JSON object. */
void sk_to_json(const struct sk_rec *s, struct json_builder *b);
/* Reads the "socket" object of the fd's JSON object; -EBADMSG on anything
 * out of range (image input is untrusted). *s is filled even on failure
 * as far as it got, so sk_rec_free() must be called either way. */
int sk_from_json(const json_t *obj, struct sk_rec *s);
void sk_rec_free(struct sk_rec *s);

bool sk_needs_peer(const struct sk_rec *s);
/* sk-unix.c: the client s of a connection waiting on the listener l,
 * made again by connecting to l's name (l restored first). */
int sk_unix_restore_pending(const struct sk_rec *s, int *ret_fd);
bool sk_is_pair(const struct sk_rec *a, const struct sk_rec *b);

/* Restore side, in the controller. peer: NULL, or the record of s's peer
 * when sk_needs_peer(s) (then *ret_peer_fd gets the peer's fd). Logs its
 * errors. */
int sk_restore(const struct sk_rec *s, const struct sk_rec *peer, int *ret_fd, int *ret_peer_fd);

/* --- shared by the socket files --- */

/* "unix stream socket", "TCPv6 socket", ... for messages. */
const char *sk_kind_name(const struct sk_rec *s);
/* fd's own address (peer: its peer's) into *ret; an unconnected socket's
 * peer leaves *ret as it is. */
int sk_get_addr(int fd, bool peer, struct sk_addr *ret);
/* "127.0.0.1:80", "[::1]:80", "/run/x.sock", "@abstract", "(unbound)". */
void sk_addr_format(int family, const struct sk_addr *a, char *buf, size_t size);
/* sk-queue.c. Copies the receive queue of fd without consuming it.
 * fds in flight are described (sk-scm.c); -EXDEV when one cannot be,
 * -EFBIG/-E2BIG past the bounds. */
int sk_queue_peek(int fd, struct sk_rec *s);
/* Sends s's queue from `from` (connected to the new s, or to `to`), the
 * fds in flight (scm[].made) and credentials with their messages. */
int sk_queue_fill(int from, const struct sk_rec *s, const struct sockaddr *to, socklen_t tolen);

/* sk-unix.c, sk-inet.c: the family parts of sk_collect and sk_restore.
 * sk: our copy of the target's fd. */
int sk_unix_collect(pid_t pid, int fd, int sk, struct sk_rec *s);
int sk_unix_restore(const struct sk_rec *s, const struct sk_rec *peer, int *ret_fd, int *ret_peer_fd);
int sk_inet_collect(pid_t pid, int fd, int sk, unsigned flags, struct sk_rec *s);
int sk_inet_restore(const struct sk_rec *s, int *ret_fd);
/* sk-unix-ext.c: s (of pid's fd) is connected to a socket outside the
 * tree: turned into what s->outside asks for, or refused (logged). */
int sk_unix_outside(pid_t pid, int fd, struct sk_rec *s);

/* sk-scm.c: control messages of the queue. */
/* Describes our copies of the fds that came with one message (closing
 * them) into e->fds; logs and refuses kinds that cannot come back. */
int sk_scm_describe(struct sk_scm *e, int *fds, size_t n);
/* The process and fd whose queue the next descriptions come from (messages). */
void sk_scm_holder(pid_t pid, int fd);
void sk_scm_free(struct sk_rec *s);
/* The data pass of the fds in flight (a pipe's size and bytes). */
int sk_scm_dump_data(struct image *img, struct sk_rec *s);
void sk_scm_to_json(const struct sk_rec *s, struct json_builder *b);
int sk_scm_from_json(const json_t *j, struct sk_rec *s);
/* The entry for message i (dgram) or starting at byte i (stream), or NULL. */
const struct sk_scm *sk_scm_at(const struct sk_rec *s, uint64_t i);
/* Calls fn on every socket record in flight in s's queue, nested ones too;
 * stops at the first fn that returns non-zero and returns that. */
int sk_scm_walk(const struct sk_rec *s, int (*fn)(const struct fd_rec *o, void *arg), void *arg);
/* Whether an fd in flight in s's queue (nested ones too) has this /proc
 * link text and access mode (O_RDONLY, O_WRONLY). */
bool sk_scm_holds(const struct sk_rec *s, const char *path, int accmode);
/* sockets.c: the same for every socket of the tree (pipes.c: a pipe's
 * end in flight). */
bool sk_tree_inflight(const struct files_proc *v, size_t n, const char *path, int accmode);
/* Restore: makes our fds for every fd in flight of s (scm[].made);
 * get_sk (sockets.c) returns a new fd of a socket in flight. Logs. */
int sk_scm_make(const struct fd_restore *x, const struct sk_rec *s,
		int (*get_sk)(const struct fd_restore *x, const struct fd_rec *o));
void sk_scm_close(const struct sk_rec *s);

/* sk-unix-path.c: relative unix names. The process' current directory
 * when the socket file with inode vfs_ino (0: any) is there, as a path
 * in its root; -ENOENT otherwise. */
int sk_unix_find_dir(pid_t pid, const struct sk_addr *a, uint32_t vfs_ino, char **ret);
/* dir + "/" + the relative name of a. */
int sk_unix_abs(const char *dir, const struct sk_addr *a, char *buf, size_t size);
/* bind() (or connect()) fd to the relative name a from dir, in a child. */
int sk_unix_at(const char *dir, int fd, const struct sk_addr *a, bool conn);

/* sk-raw.c: ICMP (ping) sockets, raw sockets, UDP-Lite. */
bool sk_raw_handles(const struct sk_rec *s);
const char *sk_raw_kind_name(const struct sk_rec *s);
int sk_raw_collect(pid_t pid, int fd, int sk, struct sk_rec *s);
int sk_raw_restore(const struct sk_rec *s, int *ret_fd);
/* sk-inet-diag.c: the shutdown() state of a UDP or UDP-Lite socket
 * (sk: our copy, s: its addresses filled), as sock_diag shows it. */
int sk_inet_diag_shutdown(int sk, const struct sk_rec *s, int *ret);
/* shutdown() with those bits again (ENOTCONN of an unconnected UDP
 * socket is not an error: the bits are set all the same). */
int sk_inet_shutdown_again(int fd, int bits);
/* sk-udp.c: the datagrams queued on a UDP socket, with their senders'
 * addresses; fill sends them to the new fd (bound, not yet connected)
 * from those addresses, through a raw socket. */
int sk_udp_collect_queue(int sk, struct sk_rec *s);
int sk_udp_fill(int fd, const struct sk_rec *s);

/* sk-tcp.c: established TCP connections through TCP repair mode.
 * collect: sk (our copy of the target's fd, in state `state`) is put into
 * repair mode and read into s->tcp; s->tcp keeps a copy of the socket
 * while it is in repair mode, until sk_tcp_leave_repair (a failed dump,
 * --leave-running) or sk_tcp_free (a dump that killed the tree: the
 * socket dies in repair mode, silently). */
struct sk_tcp;
int sk_tcp_collect(pid_t pid, int fd, int sk, int state, struct sk_rec *s, const char *name, const char *pname);
void sk_tcp_leave_repair(struct sk_tcp *t);
/* The connections that had SO_REUSEADDR before repair mode (which
 * overwrites it), by socket inode, for the guardian to give it back:
 * kept in the guard's shared memory (guard.h), which registers it with
 * sk_tcp_reuse_log while a dump runs (NULL: none). Beyond the last
 * slot a connection the guardian recovers is left without it. */
#define SK_TCP_REUSE_MAX 256
struct sk_tcp_reuse {
	size_t n;
	uint64_t ino[SK_TCP_REUSE_MAX];
};
void sk_tcp_reuse_log(struct sk_tcp_reuse *log);
/* The guardian's part (guard.c), when the dumper died: every TCP socket
 * of pid in repair mode leaves it (and our filter goes). */
void sk_tcp_recover(pid_t pid, const struct sk_tcp_reuse *log);
/* Sets *changed when the connection moved since it was read (data came
 * or was acknowledged); reread: read it again then. */
int sk_tcp_settle(struct sk_tcp *t, bool reread, bool *changed);
void sk_tcp_free(struct sk_tcp *t);
/* Whether the dump's drop-all filter is on the socket (not the application's). */
bool sk_tcp_blocked(const struct sk_tcp *t);
/* restore: fd is a new socket with s's options; it is left in repair
 * mode, connected, queues filled, until sk_tcp_finish once every socket
 * of the tree exists. */
int sk_tcp_restore(int fd, const struct sk_rec *s);
int sk_tcp_finish(int fd, const struct sk_rec *s);
void sk_tcp_to_json(const struct sk_tcp *t, struct json_builder *b);
int sk_tcp_from_json(const json_t *obj, struct sk_tcp **ret);
/* "established, 10 bytes to send (0 not sent yet), 4 to read" */
void sk_tcp_describe(const struct sk_tcp *t, char *buf, size_t size);

/* For the drivers (dump.c, restore.c, inspect.c), over the fds of one
 * process or of the tree. */
/* Takes the process's TCP sockets out of repair mode (before a thaw). */
void sk_leave_repair(const struct files_rec *f);
/* Once the image is written: -EAGAIN (logged) when a connection of the
 * process moved since it was read, so the image would lose bytes. */
int sk_check_unchanged(pid_t pid, const struct files_rec *f);
/* -EOPNOTSUPP (logged) when the tree holds an established TCP connection
 * and allowed (restore --tcp-established) is false. */
int sk_check_restore(const struct files_proc *all, size_t n, bool allowed);
/* Every restored TCP connection of the tree leaves repair mode; c holds
 * the sockets made (files_ctx). */
int sk_restore_finish(const struct files_ctx *c);
/* One line about o's connection for inspect, false when o is no
 * connected inet socket. */
bool sk_fd_describe(const struct fd_rec *o, char *buf, size_t size);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared between sockets.c, sk-unix.c, sk-inet.c and sk-diag.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sockets.h"

/* What sock_diag says of one unix socket. */
struct unix_diag_info {
	int type, state; /* state: TCP_LISTEN, TCP_ESTABLISHED, TCP_CLOSE */
	uint64_t ino;
	bool has_peer;
	uint64_t peer_ino; /* 0 with has_peer: the peer was closed */
	uint32_t rqueue;   /* listeners: connections not yet accepted */
	uint32_t wqueue;   /* listeners: the backlog */
	uint32_t nicons;   /* listeners: UNIX_DIAG_ICONS entries */
	int shutdown;
};

/* sk-diag.c. Parses one sock_diag reply (netlink messages) for inode ino:
 * pure, over a buffer. */
int unix_diag_parse(const void *buf, size_t len, uint64_t ino, struct unix_diag_info *ret);
/* Asks the kernel (this netns) about unix socket ino: -ENOENT if unknown. */
int unix_diag_query(uint64_t ino, struct unix_diag_info *ret);

/* sockets.c */
const char *sk_kind_name(const struct sk_rec *s);
/* fd's own address (peer: its peer's) into *ret; an unconnected socket's
 * peer leaves *ret as it is. */
int sk_get_addr(int fd, bool peer, struct sk_addr *ret);
/* "127.0.0.1:80", "[::1]:80", "/run/x.sock", "@abstract", "(unbound)". */
void sk_addr_format(int family, const struct sk_addr *a, char *buf, size_t size);
/* sk-opts.c */
const char *sk_opt_key(enum sk_opt o);
int sk_opts_collect(int fd, struct sk_rec *s);
int sk_opts_apply(int fd, const struct sk_rec *s);
/* Copies the receive queue of fd without consuming it. -EXDEV when it
 * holds fds in flight, -EFBIG/-E2BIG past the bounds. */
int sk_queue_peek(int fd, struct sk_rec *s);
/* Sends s's queue from `from` (connected to the new s, or to `to`). */
int sk_queue_fill(int from, const struct sk_rec *s, const struct sockaddr *to, socklen_t tolen);

/* sk-unix.c, sk-inet.c: the family parts of sk_collect and sk_restore. */
/* sk: our copy of the target's fd. */
int sk_unix_collect(pid_t pid, int fd, int sk, struct sk_rec *s);
int sk_unix_restore(const struct sk_rec *s, const struct sk_rec *peer, int *ret_fd, int *ret_peer_fd);
int sk_inet_collect(pid_t pid, int fd, int sk, unsigned flags, struct sk_rec *s);
int sk_inet_restore(const struct sk_rec *s, int *ret_fd);

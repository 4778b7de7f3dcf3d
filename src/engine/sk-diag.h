/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sock_diag for unix sockets (sk-diag.c): who a socket's peer is. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What sock_diag says of one unix socket. */
struct unix_diag_info {
	int type, state; /* state: TCP_LISTEN, TCP_ESTABLISHED, TCP_CLOSE */
	uint64_t ino;
	bool has_peer;
	uint64_t peer_ino; /* 0 with has_peer: the peer was closed */
	uint32_t rqueue;   /* listeners: connections not yet accepted */
	uint32_t wqueue;   /* listeners: the backlog */
	uint32_t nicons;   /* listeners: UNIX_DIAG_ICONS entries */
	/* listeners: the first UNIX_DIAG_MAX_ICONS of them, in accept order:
	 * the inode of each waiting connection's client, 0 if it closed */
#define UNIX_DIAG_MAX_ICONS 64
	uint32_t icons[UNIX_DIAG_MAX_ICONS];
	int shutdown;
	uint32_t vfs_ino;  /* the inode of the socket file it is bound to, 0 if none */
};

/* Parses one sock_diag reply (netlink messages) for inode ino: pure,
 * over a buffer. */
int unix_diag_parse(const void *buf, size_t len, uint64_t ino, struct unix_diag_info *ret);
/* Asks the kernel (this netns) about unix socket ino: -ENOENT if unknown. */
int unix_diag_query(uint64_t ino, struct unix_diag_info *ret);

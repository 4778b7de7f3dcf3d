/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The peer's FIN, given back to a restored TCP socket (sk-tcp-fin.c).
 *
 * Repair mode restores a connection as ESTABLISHED and has no way to put
 * a FIN that the peer sent into the receive queue. The socket learns it
 * the way it learnt it the first time: from a segment. Restore builds
 * that segment (FIN|ACK from the peer's address and port, at the sequence
 * number the FIN had) and sends it through a raw socket to the restored
 * socket, in its network namespace; the kernel then moves the socket to
 * CLOSE_WAIT (or CLOSING after our own FIN) by itself.
 *
 * The network lock drops the connection's packets until the tree runs:
 * the segment carries the mark NETLOCK_PASS_MARK (netlock.h), which the
 * lock's chains let through; the socket's answer (an ACK of a FIN the
 * peer already saw acknowledged) is dropped like any other packet. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcp_fin_seg {
	int family; /* on the wire: AF_INET or AF_INET6 */
	uint8_t src[16], dst[16]; /* src: the peer; dst: the restored socket */
	uint16_t sport, dport;    /* host order */
	uint32_t scope_id;        /* dst's, for a link-local IPv6 address */
	uint32_t seq;             /* the FIN's sequence number */
	uint32_t ack;             /* what the peer last acknowledged of ours */
	uint16_t win;             /* the peer's window, as on the wire (scaled) */
	bool tstamp;              /* the connection uses timestamps */
};

#define TCP_FIN_SEG_MAX 96

/* Pure: the IP packet (header included, checksums done) into buf of size
 * bytes; returns its length, or -ENOSPC / -EAFNOSUPPORT. */
int tcp_fin_build(const struct tcp_fin_seg *s, uint8_t *buf, size_t size);

/* Fills the addresses of seg from the socket's own (sockaddr_in or _in6;
 * an IPv6 socket with IPv4-mapped addresses gives IPv4, what is on the
 * wire). -EAFNOSUPPORT when they cannot make a segment. */
int tcp_fin_addrs(const void *name, const void *peer_name, int family, struct tcp_fin_seg *seg);

/* Sends seg into our network namespace until the socket fd reaches
 * want_state (TCP_CLOSE_WAIT or TCP_CLOSING), for a few seconds at
 * most. Returns how many copies it sent, -ETIMEDOUT when the socket
 * never took one. No logging. */
int tcp_fin_inject(int fd, const struct tcp_fin_seg *seg, int want_state);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Packets we write whole and send through a raw socket at restore: a
 * queued UDP datagram from its sender's address (sk-udp.c), the peer's
 * FIN given back to a TCP socket (sk-tcp-fin.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The Internet checksum (RFC 1071): add bytes to a running sum, then
 * fold it into the 16 bits that go in a header. */
uint32_t rawpkt_csum_add(uint32_t sum, const void *p, size_t len);
uint16_t rawpkt_csum_fold(uint32_t sum);
/* A raw socket of family that sends packets with our own IP header. */
int rawpkt_open(int family);

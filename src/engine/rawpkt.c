/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/rawpkt.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

uint32_t rawpkt_csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

uint16_t rawpkt_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* IPPROTO_RAW implies our own header for IPv4; IPv6 is told so. */
int rawpkt_open(int family)
{
	int one = 1;
	int raw = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw < 0)
		return -errno;
	if (family == AF_INET6 && setsockopt(raw, IPPROTO_IPV6, IPV6_HDRINCL, &one, sizeof(one)) < 0) {
		int r = -errno;
		close(raw);
		return r;
	}
	return raw;
}

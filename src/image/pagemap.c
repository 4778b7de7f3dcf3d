/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The page index: a fixed little-endian binary layout (see pagemap.h and
 * docs/FORMAT.md). Decoding is a pure function over a buffer, fuzzed, and
 * checks everything restore later relies on without re-checking. */
#include "image/pagemap.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/util.h"

#define HEADER_SIZE 16
#define ENTRY_SIZE 24
#define ADDR_LIMIT (1ull << 47) /* x86-64 user space with 4-level paging */

static void put_u64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

int pagemap_encode(const struct pagemap_entry *e, size_t n, void **ret_buf, size_t *ret_len)
{
	uint32_t version = htole32(PAGEMAP_VERSION);

	/* Never write what pagemap_decode would refuse. */
	if (n > PAGEMAP_MAX_ENTRIES)
		return -E2BIG;
	size_t len = HEADER_SIZE + n * ENTRY_SIZE;
	unsigned char *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, PAGEMAP_MAGIC, 4);
	memcpy(buf + 4, &version, 4);
	put_u64(buf + 8, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = buf + HEADER_SIZE + i * ENTRY_SIZE;
		put_u64(p, e[i].vaddr);
		put_u64(p + 8, e[i].nr_pages);
		put_u64(p + 16, e[i].offset);
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

static int check_header(const unsigned char *p, size_t len, uint64_t *ret_count)
{
	uint32_t version;
	uint64_t count;

	if (len < HEADER_SIZE || memcmp(p, PAGEMAP_MAGIC, 4) != 0)
		return -EBADMSG;
	memcpy(&version, p + 4, 4);
	if (le32toh(version) != PAGEMAP_VERSION)
		return -EBADMSG;
	count = get_u64(p + 8);
	if (count > PAGEMAP_MAX_ENTRIES || len - HEADER_SIZE != count * ENTRY_SIZE)
		return -EBADMSG;
	*ret_count = count;
	return 0;
}

/* One run: aligned, non-empty, inside user space, after the previous run,
 * and its data right where the previous run's data ended. */
static int check_entry(const struct pagemap_entry *e, uint64_t prev_end, uint64_t data_off)
{
	if (e->vaddr % PAGE_SIZE || e->vaddr >= ADDR_LIMIT)
		return -EBADMSG;
	if (e->nr_pages == 0 || e->nr_pages > (ADDR_LIMIT - e->vaddr) / PAGE_SIZE)
		return -EBADMSG;
	if (e->vaddr < prev_end || e->offset != data_off)
		return -EBADMSG;
	return 0;
}

int pagemap_decode(const void *buf, size_t len, uint64_t pages_size, struct pagemap_entry **ret, size_t *ret_n)
{
	const unsigned char *p = buf;
	uint64_t count, prev_end = 0, data_off = 0;

	int r = check_header(p, len, &count);
	if (r < 0)
		return r;
	_cleanup_free_ struct pagemap_entry *e = calloc(count ? count : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const unsigned char *q = p + HEADER_SIZE + i * ENTRY_SIZE;
		e[i] = (struct pagemap_entry){ get_u64(q), get_u64(q + 8), get_u64(q + 16) };
		r = check_entry(&e[i], prev_end, data_off);
		if (r < 0)
			return r;
		prev_end = e[i].vaddr + e[i].nr_pages * PAGE_SIZE;
		data_off += e[i].nr_pages * PAGE_SIZE;
	}
	if (data_off != pages_size)
		return -EBADMSG;
	*ret = TAKE_PTR(e);
	*ret_n = count;
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "image/pagesums.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "image/xxh3-fast.h"

#define HDR PAGESUMS_HEADER

int pagesums_encode(const uint64_t *sums, uint64_t n, uint64_t file_size, void **ret_buf, size_t *ret_len)
{
	size_t len = HDR + n * 8;
	uint8_t *b = malloc(len);
	if (!b)
		return -ENOMEM;
	memcpy(b, PAGESUMS_MAGIC, 4);
	uint32_t shift = htole32(PAGESUMS_SHIFT);
	uint64_t size = htole64(file_size);
	memcpy(b + 4, &shift, 4);
	memcpy(b + 8, &size, 8);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = htole64(sums[i]);
		memcpy(b + HDR + i * 8, &v, 8);
	}
	*ret_buf = b;
	*ret_len = len;
	return 0;
}

int pagesums_header(const void *buf, uint64_t len, uint64_t file_size, struct pagesums *ret)
{
	const uint8_t *b = buf;
	uint32_t shift;
	uint64_t size;
	if (len < HDR || memcmp(b, PAGESUMS_MAGIC, 4))
		return -EBADMSG;
	memcpy(&shift, b + 4, 4);
	memcpy(&size, b + 8, 8);
	size = le64toh(size);
	shift = le32toh(shift);
	if (shift < PAGESUMS_MIN_SHIFT || shift > PAGESUMS_BATCH_SHIFT)
		return -EBADMSG;
	uint64_t n = pagesums_count(size, shift);
	if (size != file_size || (len - HDR) / 8 != n || (len - HDR) % 8)
		return -EBADMSG;
	*ret = (struct pagesums){ size, n, shift, NULL };
	return 0;
}

void pagesums_entries(const void *buf, uint64_t n, uint64_t *sums)
{
	const uint8_t *b = buf;
	for (uint64_t i = 0; i < n; i++) {
		memcpy(&sums[i], b + i * 8, 8);
		sums[i] = le64toh(sums[i]);
	}
}

int pagesums_decode(const void *buf, size_t len, uint64_t file_size, struct pagesums *ret)
{
	struct pagesums ps;
	if (pagesums_header(buf, len, file_size, &ps) < 0)
		return -EBADMSG;
	uint64_t *s = malloc(ps.n ? ps.n * 8 : 1);
	if (!s)
		return -ENOMEM;
	pagesums_entries((const uint8_t *)buf + HDR, ps.n, s);
	ps.sums = s;
	*ret = ps;
	return 0;
}

size_t pagesums_max_len(uint64_t file_size)
{
	return HDR + pagesums_count(file_size, PAGESUMS_MIN_SHIFT) * 8;
}

int pagesums_check(const struct pagesums *ps, uint64_t off, const void *buf, size_t len, uint64_t *ret_bad)
{
	const uint64_t bs = 1ULL << ps->shift;
	const uint8_t *p = buf;
	if (off % bs || off > ps->file_size || len > ps->file_size - off ||
	    (len % bs && off + len != ps->file_size))
		return -EINVAL;
	for (uint64_t at = 0; at < len; at += bs) {
		uint64_t b = (off + at) >> ps->shift;
		size_t n = (size_t)(len - at < bs ? len - at : bs);
		if (xxh3_fast(p + at, n) != ps->sums[b]) {
			*ret_bad = b;
			return -EBADMSG;
		}
	}
	return 0;
}

struct block_hasher {
	char *name;
	XXH3_state_t *st;
	uint64_t used; /* bytes of the current block hashed */
	uint64_t *sums;
	uint64_t n, cap;
};

int block_hasher_new(const char *name, struct block_hasher **ret)
{
	struct block_hasher *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->name = strdup(name);
	h->st = XXH3_createState();
	if (!h->name || !h->st || XXH3_64bits_reset(h->st) != XXH_OK) {
		block_hasher_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

static int end_block(struct block_hasher *h)
{
	if (h->n == h->cap) {
		uint64_t nc = h->cap ? h->cap * 2 : 256;
		uint64_t *s = realloc(h->sums, nc * sizeof(*s));
		if (!s)
			return -ENOMEM;
		h->sums = s;
		h->cap = nc;
	}
	h->sums[h->n++] = XXH3_64bits_digest(h->st);
	h->used = 0;
	return XXH3_64bits_reset(h->st) == XXH_OK ? 0 : -EINVAL;
}

int block_hasher_update(struct block_hasher *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		const uint64_t bs = 1ULL << PAGESUMS_SHIFT;
		size_t k = bs - h->used < len ? bs - h->used : len;
		if (XXH3_64bits_update(h->st, p, k) != XXH_OK)
			return -EINVAL;
		h->used += k, p += k, len -= k;
		int r = h->used == bs ? end_block(h) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int block_hasher_finish(struct block_hasher *h, uint64_t file_size, void **ret_buf, size_t *ret_len)
{
	int r = h->used ? end_block(h) : 0;
	if (r >= 0 && h->n != pagesums_count(file_size, PAGESUMS_SHIFT))
		r = -EIO;
	return r < 0 ? r : pagesums_encode(h->sums, h->n, file_size, ret_buf, ret_len);
}

const char *block_hasher_name(const struct block_hasher *h)
{
	return h->name;
}

void block_hasher_free(struct block_hasher *h)
{
	if (!h)
		return;
	XXH3_freeState(h->st);
	free(h->sums);
	free(h->name);
	free(h);
}

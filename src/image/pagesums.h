/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checksums of a page data file in fixed blocks, so that a part of it can
 * be checked on its own (a lazy restore fills memory block by block and
 * must never hand a process a page it has not verified).
 *
 * On disk (little endian): header { char magic[4] = "STPS"; u32
 * block_shift; u64 file_size; } then one u64 XXH3-64 (seed 0) per block
 * of 1 << block_shift bytes of the file, the last block possibly short. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PAGESUMS_MAGIC "STPS"
#define PAGESUMS_SHIFT 22 /* 4 MiB: the lazy filler's batch */
#define PAGESUMS_BLOCK (1ULL << PAGESUMS_SHIFT)

struct pagesums {
	uint64_t file_size;
	uint64_t n;     /* blocks */
	uint64_t *sums; /* malloc'd */
};

static inline uint64_t pagesums_count(uint64_t size)
{
	return (size + PAGESUMS_BLOCK - 1) >> PAGESUMS_SHIFT;
}

int pagesums_encode(const uint64_t *sums, uint64_t n, uint64_t file_size, void **ret_buf, size_t *ret_len);
/* Checks magic, block size (PAGESUMS_SHIFT only), that file_size is the
 * page file's and the count matches it. -EBADMSG on anything wrong. */
int pagesums_decode(const void *buf, size_t len, uint64_t file_size, struct pagesums *ret);

/* Writing: the sums of a file as its bytes go through, in order
 * (image_stream_sum_blocks); finish encodes them, for the image file
 * `name`. */
struct block_hasher;
int block_hasher_new(const char *name, struct block_hasher **ret);
int block_hasher_update(struct block_hasher *h, const void *buf, size_t len);
int block_hasher_finish(struct block_hasher *h, uint64_t file_size, void **ret_buf, size_t *ret_len);
const char *block_hasher_name(const struct block_hasher *h);
void block_hasher_free(struct block_hasher *h);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checksums of a page data file in fixed blocks, so that a part of it can
 * be checked on its own (a lazy restore fills memory block by block and
 * must never hand a process a page it has not verified).
 *
 * On disk (little endian): header { char magic[4] = "STPS"; u32
 * block_shift; u64 file_size; } then one u64 XXH3-64 (seed 0) per block
 * of 1 << block_shift bytes of the file, the last block possibly short.
 *
 * Blocks are small (64 KiB) so that the few pages a lazy restore puts in
 * before the process runs are checked without reading megabytes around
 * them; the filler reads 4 MiB batches (PAGESUMS_BATCH) and checks each
 * block in it. Readers take any block size from a page to a batch. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PAGESUMS_MAGIC "STPS"
#define PAGESUMS_SHIFT 16 /* 64 KiB: what the dump writes */
#define PAGESUMS_MIN_SHIFT 12
#define PAGESUMS_BATCH_SHIFT 22 /* 4 MiB: the lazy filler's batch, the largest block */
#define PAGESUMS_BATCH (1ULL << PAGESUMS_BATCH_SHIFT)

struct pagesums {
	uint64_t file_size;
	uint64_t n;     /* blocks */
	uint32_t shift; /* block size: 1 << shift */
	uint64_t *sums; /* malloc'd */
};

static inline uint64_t pagesums_count(uint64_t size, uint32_t shift)
{
	return (size + (1ULL << shift) - 1) >> shift;
}

int pagesums_encode(const uint64_t *sums, uint64_t n, uint64_t file_size, void **ret_buf, size_t *ret_len);
/* Checks magic, block size (a page to a batch), that file_size is the
 * page file's and the count matches it. -EBADMSG on anything wrong. */
int pagesums_decode(const void *buf, size_t len, uint64_t file_size, struct pagesums *ret);
/* The same for a file of len bytes of which buf holds the header
 * (PAGESUMS_HEADER bytes) only: ret's sums stay NULL. */
#define PAGESUMS_HEADER 16
int pagesums_header(const void *buf, uint64_t len, uint64_t file_size, struct pagesums *ret);
/* n sums as the file stores them (after the header) into sums. */
void pagesums_entries(const void *buf, uint64_t n, uint64_t *sums);
/* The largest size of the encoded sums of a file of file_size bytes. */
size_t pagesums_max_len(uint64_t file_size);
/* Checks len bytes of the file read at off (a block boundary) against the
 * sums: each whole block, and the last one where the file ends. -EBADMSG
 * and *ret_bad = the first bad block's index; -EINVAL when the range is
 * not made of blocks. */
int pagesums_check(const struct pagesums *ps, uint64_t off, const void *buf, size_t len, uint64_t *ret_bad);

/* Writing: the sums of a file as its bytes go through, in order
 * (image_stream_sum_blocks); finish encodes them, for the image file
 * `name`. */
struct block_hasher;
int block_hasher_new(const char *name, struct block_hasher **ret);
int block_hasher_update(struct block_hasher *h, const void *buf, size_t len);
int block_hasher_finish(struct block_hasher *h, uint64_t file_size, void **ret_buf, size_t *ret_len);
const char *block_hasher_name(const struct block_hasher *h);
void block_hasher_free(struct block_hasher *h);

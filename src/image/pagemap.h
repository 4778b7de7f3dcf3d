/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The page index of one process: runs of saved pages, in ascending address
 * order, whose data lies back to back in the page data file.
 *
 * On disk (little endian): header { char magic[4] = "STPM"; u32 version = 1;
 * u64 count; } then count entries { u64 vaddr; u64 nr_pages; u64 offset; }.
 * offset is the run's byte offset in the page data file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PAGEMAP_MAGIC "STPM"
#define PAGEMAP_VERSION 1
#define PAGEMAP_MAX_ENTRIES (1u << 24)

struct pagemap_entry {
	uint64_t vaddr;
	uint64_t nr_pages;
	uint64_t offset;
};

/* Encodes entries into a malloc'd buffer. */
int pagemap_encode(const struct pagemap_entry *e, size_t n, void **ret_buf, size_t *ret_len);
/* Decodes and validates: magic, version, count against len and the cap,
 * page-aligned addresses below 2^47, no overflow, ascending and not
 * overlapping, offsets contiguous from 0 and ending exactly at
 * pages_size (the page data file's size). -EBADMSG on anything wrong. */
int pagemap_decode(const void *buf, size_t len, uint64_t pages_size, struct pagemap_entry **ret, size_t *ret_n);

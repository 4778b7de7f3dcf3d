/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared between the image writer (image.c) and reader (image-read.c),
 * which include image/image.h first; this header includes nothing of ours,
 * so the two stay one module without a circle. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAX_NAME 255

struct image {
	char *dir;
	int dirfd;
	bool writing;
	bool created;     /* writing: the directory was made by us */
	bool nosync;      /* writing: STASIS_NOSYNC set, no fsync (benchmarks) */
	struct image_journal *journal; /* writing: names recorded before creation */
	json_t *manifest; /* reading: the parsed manifest */
	json_t *files;    /* the "files" array (writing: built up here) */
	json_t *index;    /* name -> entry in files, for lookups and duplicates */
	int page_zstd;    /* writing: zstd level for page data, 0: none */
	struct image_reserved {
		char *name;
		int fd;
	} *reserved; /* writing: image_reserve's files not yet taken by a stream */
	size_t nreserved;
};

bool image_name_valid(const char *name);
void image_hash_hex(uint64_t h, char out[17]);
struct image *image_alloc(const char *dir);

/* zstd-stream.c: the compressing half of an image stream. */
struct zstd_out;
typedef int (*zstd_sink_fn)(void *arg, const void *buf, size_t len);
int zstd_out_new(int level, struct zstd_out **ret);
int zstd_out_write(struct zstd_out *z, const void *buf, size_t len, bool end, zstd_sink_fn sink, void *arg);
void zstd_out_free(struct zstd_out *z);

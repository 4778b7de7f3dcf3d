/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One libFuzzer entry point for every image reader; the first byte picks
 * the target so one corpus and one binary cover them all:
 *   0: the rest is manifest.json: image_open, then image_get_json on every
 *      listed file (a fixed set of real files lies next to it, so a seed
 *      with their right sizes and checksums reaches the record parsers);
 *   1: 8 bytes little-endian page data size, then a pagemap;
 *   2: record parsers, through the engine's fuzz_records() when linked;
 *   3: 8 bytes little-endian page data size, then a pagesums file;
 *   4: the rest is a compressed page file (dump --compress), listed with
 *      its right checksum, so only the zstd reader stands in the way. */
#include <endian.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "image/image.h"
#include "image/pagemap.h"
#include "image/pagesums.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
/* Provided by the engine (record parsers) when its fuzz source is linked. */
int fuzz_records(const uint8_t *data, size_t len) __attribute__((weak));

/* Files a fuzzed manifest may list; the seed corpus lists them with their
 * real sizes and checksums. */
static const struct {
	const char *name, *content;
} fixed_files[] = {
	{ "core-1.json", "{\"pid\":1,\"comm\":\"init\"}" },
	{ "list-1.json", "[1,2,3]" },
	{ "raw-1.img", "STPM" },
	{ "empty.img", "" },
};

static char fuzz_dir[64];
static int fuzz_dirfd = -1;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void remove_dir(void)
{
	nftw(fuzz_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* One directory per process, made on first use and removed at exit. */
static void setup_dir(void)
{
	if (fuzz_dirfd >= 0)
		return;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/stasis-fuzz-XXXXXX");
	if (!mkdtemp(fuzz_dir))
		abort();
	atexit(remove_dir);
	fuzz_dirfd = open(fuzz_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fuzz_dirfd < 0)
		abort();
	for (size_t i = 0; i < ARRAY_SIZE(fixed_files); i++)
		if (write_file_at(fuzz_dirfd, fixed_files[i].name, fixed_files[i].content,
				  strlen(fixed_files[i].content)) < 0)
			abort();
}

static void fuzz_manifest(const uint8_t *data, size_t len)
{
	struct image *img;
	json_t *e;
	size_t i;

	setup_dir();
	if (write_file_at(fuzz_dirfd, IMAGE_MANIFEST, data, len) < 0)
		abort();
	if (image_open(fuzz_dir, &img) < 0)
		return;
	json_array_foreach(json_object_get(image_manifest(img), "files"), i, e) {
		json_t *j;
		if (image_get_json(img, json_string_value(json_object_get(e, "name")), &j) == 0)
			json_decref(j);
	}
	image_free(img);
}

static void fuzz_pagemap(const uint8_t *data, size_t len)
{
	uint64_t pages_size;
	struct pagemap_entry *e;
	size_t n;

	if (len < 8)
		return;
	memcpy(&pages_size, data, 8);
	if (pagemap_decode(data + 8, len - 8, le64toh(pages_size), &e, &n) == 0) {
		/* Touch every entry so ASan sees a short allocation. */
		uint64_t sum = 0;
		for (size_t k = 0; k < n; k++)
			sum += e[k].nr_pages;
		if (sum * PAGE_SIZE != le64toh(pages_size))
			abort();
		free(e);
	}
}

static void fuzz_pagesums(const uint8_t *data, size_t len)
{
	uint64_t size;
	struct pagesums ps;

	if (len < 8)
		return;
	memcpy(&size, data, 8);
	if (pagesums_decode(data + 8, len - 8, le64toh(size), &ps) == 0) {
		uint64_t x = 0;
		for (uint64_t k = 0; k < ps.n; k++)
			x ^= ps.sums[k];
		if (ps.n != pagesums_count(le64toh(size), ps.shift) || (ps.n == 0 && x) ||
		    ps.shift < PAGESUMS_MIN_SHIFT || ps.shift > PAGESUMS_BATCH_SHIFT || len - 8 > pagesums_max_len(ps.file_size))
			abort();
		/* A check of the whole data against itself never reads outside it. */
		uint64_t bad;
		if (ps.file_size <= len)
			(void)pagesums_check(&ps, 0, data, (size_t)ps.file_size, &bad);
		free(ps.sums);
	}
}

#define ZPAGES "pages-1.img"
#define ZRAW (1u << 20)

static void read_compressed(struct image *img)
{
	struct image_zreader *z;
	static char buf[64 << 10];
	if (image_zread_open(img, ZPAGES, &z) < 0)
		return;
	int r = 0;
	for (size_t done = 0; done < ZRAW && r >= 0; done += sizeof(buf))
		r = image_zread(z, buf, sizeof(buf));
	if (r >= 0)
		image_zread_end(z);
	image_zread_close(z);
}

static void fuzz_compressed(const uint8_t *data, size_t len)
{
	char man[512];
	struct image *img;

	setup_dir();
	if (write_file_at(fuzz_dirfd, ZPAGES, data, len) < 0)
		abort();
	int n = snprintf(man, sizeof(man), "{\"type\": \"process\", \"format\": \"stasis-image\", \"version\": %d, "
			 "\"files\": [{\"name\": \"" ZPAGES "\", \"size\": %zu, \"xxh3\": \"%016llx\", "
			 "\"compression\": \"zstd\", \"raw_size\": %u}]}", IMAGE_VERSION, len,
			 (unsigned long long)XXH3_64bits(data, len), ZRAW);
	if (write_file_at(fuzz_dirfd, IMAGE_MANIFEST, man, (size_t)n) < 0)
		abort();
	if (image_open(fuzz_dir, &img) < 0)
		return;
	read_compressed(img);
	image_free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static bool init;

	/* Refusals are the expected outcome: keep them off the terminal. */
	if (!init) {
		log_set_level(getenv("STASIS_FUZZ_VERBOSE") ? LOG_DEBUG : LOG_QUIET);
		init = true;
	}
	if (len < 1)
		return 0;
	switch (data[0]) {
	case 0:
		fuzz_manifest(data + 1, len - 1);
		break;
	case 1:
		fuzz_pagemap(data + 1, len - 1);
		break;
	case 2:
		if (fuzz_records)
			fuzz_records(data + 1, len - 1);
		break;
	case 3:
		fuzz_pagesums(data + 1, len - 1);
		break;
	case 4:
		fuzz_compressed(data + 1, len - 1);
		break;
	}
	return 0;
}

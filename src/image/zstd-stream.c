/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* zstd for image files written as streams (page data, dump --compress).
 * The writer compresses what image.c's stream is given, multi-threaded
 * (ZSTD_c_nbWorkers), into one frame with zstd's own content checksum;
 * the manifest's size and xxh3 are those of the compressed bytes on disk,
 * so the usual trust checks (image_open, image_verify_file) apply as they
 * are. The reader streams the frame back in order: compressed page files
 * have no random access (restore --lazy refuses them). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "image/image.h"
#include "image/image-internal.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define ZOUT_SIZE (1u << 20)
#define ZSTD_MAX_WORKERS 8

struct zstd_out {
	ZSTD_CCtx *cctx;
	void *buf;
};

void zstd_out_free(struct zstd_out *z)
{
	if (!z)
		return;
	ZSTD_freeCCtx(z->cctx);
	free(z->buf);
	free(z);
}

static int workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > ZSTD_MAX_WORKERS ? ZSTD_MAX_WORKERS : (int)n;
}

int zstd_out_new(int level, struct zstd_out **ret)
{
	struct zstd_out *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->cctx = ZSTD_createCCtx();
	z->buf = malloc(ZOUT_SIZE);
	if (!z->cctx || !z->buf || ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1))) {
		zstd_out_free(z);
		return -ENOMEM;
	}
	/* A libzstd built without threads refuses workers: one thread then. */
	(void)ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, workers());
	*ret = z;
	return 0;
}

/* Compresses buf (end: and closes the frame), handing every piece of
 * output to sink in order. */
int zstd_out_write(struct zstd_out *z, const void *buf, size_t len, bool end, zstd_sink_fn sink, void *arg)
{
	ZSTD_inBuffer in = { buf, len, 0 };
	ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
	for (;;) {
		ZSTD_outBuffer out = { z->buf, ZOUT_SIZE, 0 };
		size_t left = ZSTD_compressStream2(z->cctx, &out, &in, mode);
		if (ZSTD_isError(left))
			return -EIO;
		if (out.pos > 0) {
			int r = sink(arg, z->buf, out.pos);
			if (r < 0)
				return r;
		}
		if (end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

void image_set_page_compression(struct image *img, int level)
{
	img->page_zstd = level;
}

int image_page_compression(const struct image *img)
{
	return img->page_zstd;
}

/* --- reading --- */

struct image_zreader {
	struct image *img;
	char *name;
	int fd;
	ZSTD_DCtx *dctx;
	void *in;
	ZSTD_inBuffer ib;
	bool eof, frame_done;
};

#define ZIN_SIZE (1u << 20)

bool image_compressed(const struct image *img, const char *name)
{
	json_t *e = img->index ? json_object_get(img->index, name) : NULL;
	return e && json_object_get(e, "compression");
}

uint64_t image_compressed_bytes(const struct image *img)
{
	uint64_t sum = 0;
	size_t i;
	json_t *e;
	json_array_foreach(img->files, i, e)
		if (json_object_get(e, "compression"))
			sum += (uint64_t)json_integer_value(json_object_get(e, "size"));
	return sum;
}

int image_raw_size(const struct image *img, const char *name, uint64_t *ret)
{
	json_t *e = img->index ? json_object_get(img->index, name) : NULL;
	json_t *v = e ? json_object_get(e, "raw_size") : NULL;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

void image_zread_close(struct image_zreader *z)
{
	if (!z)
		return;
	if (z->fd >= 0)
		close(z->fd);
	ZSTD_freeDCtx(z->dctx);
	free(z->in);
	free(z->name);
	free(z);
}

int image_zread_open(struct image *img, const char *name, struct image_zreader **ret)
{
	json_t *e = json_object_get(img->index, name);
	json_t *c = e ? json_object_get(e, "compression") : NULL;
	if (!json_is_string(c) || !streq(json_string_value(c), "zstd"))
		return log_error_errno(EBADMSG, "image file '%s' in %s: unknown compression", name, img->dir);
	_cleanup_free_ struct image_zreader *z = calloc(1, sizeof(*z));
	if (!z)
		return log_error_errno(ENOMEM, "cannot read image file '%s': %m", name);
	z->img = img;
	z->fd = -1;
	uint64_t size;
	int r = image_open_file(img, name, &z->fd, &size);
	if (r < 0)
		return r;
	z->dctx = ZSTD_createDCtx();
	z->in = malloc(ZIN_SIZE);
	z->name = strdup(name);
	if (!z->dctx || !z->in || !z->name) {
		image_zread_close(TAKE_PTR(z));
		return log_error_errno(ENOMEM, "cannot read image file '%s': %m", name);
	}
	z->ib = (ZSTD_inBuffer){ z->in, 0, 0 };
	*ret = TAKE_PTR(z);
	return 0;
}

static int zdamaged(struct image_zreader *z, const char *why)
{
	return log_error_errno(EBADMSG, "image file '%s' in %s is damaged: %s", z->name, z->img->dir, why);
}

static int refill(struct image_zreader *z)
{
	ssize_t n = read(z->fd, z->in, ZIN_SIZE);
	if (n < 0)
		return log_error_errno(errno, "cannot read image file '%s/%s': %m", z->img->dir, z->name);
	z->ib = (ZSTD_inBuffer){ z->in, (size_t)n, 0 };
	z->eof = n == 0;
	return 0;
}

/* Exactly len bytes of the data, or a logged -EBADMSG. */
int image_zread(struct image_zreader *z, void *buf, size_t len)
{
	ZSTD_outBuffer out = { buf, len, 0 };
	while (out.pos < len) {
		if (z->frame_done)
			return zdamaged(z, "compressed data ends early");
		if (z->ib.pos == z->ib.size) {
			int r = refill(z);
			if (r < 0)
				return r;
			if (z->eof)
				return zdamaged(z, "compressed data is truncated");
		}
		size_t left = ZSTD_decompressStream(z->dctx, &out, &z->ib);
		if (ZSTD_isError(left))
			return zdamaged(z, ZSTD_getErrorName(left));
		z->frame_done = left == 0;
	}
	return 0;
}

/* After the last byte: the frame must be complete (its checksum checked)
 * and nothing may follow it. */
int image_zread_end(struct image_zreader *z)
{
	char c;
	while (!z->frame_done) {
		ZSTD_outBuffer out = { &c, 1, 0 };
		if (z->ib.pos == z->ib.size) {
			int r = refill(z);
			if (r < 0)
				return r;
			if (z->eof)
				return zdamaged(z, "compressed data is truncated");
		}
		size_t left = ZSTD_decompressStream(z->dctx, &out, &z->ib);
		if (ZSTD_isError(left))
			return zdamaged(z, ZSTD_getErrorName(left));
		if (out.pos)
			return zdamaged(z, "more data than its page index lists");
		z->frame_done = left == 0;
	}
	if (z->ib.pos == z->ib.size && refill(z) >= 0 && z->eof)
		return 0;
	return zdamaged(z, "data after the end of its compressed frame");
}

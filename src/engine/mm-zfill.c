/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restore of a compressed page file (dump --compress): the process cannot
 * read a zstd frame itself, so we decompress it here, in file order, and
 * write each piece into its memory through /proc/PID/mem. The page index
 * lists runs in file order (the writer appends), which is checked: the
 * stream cannot seek. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "engine/mm.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/util.h"

#define ZFILL_CHUNK (4u << 20)

static int fill_run(struct remote *r, struct image_zreader *z, char *buf, const struct pagemap_entry *e)
{
	uint64_t addr = e->vaddr, left = e->nr_pages * PAGE_SIZE;
	while (left > 0) {
		size_t len = left < ZFILL_CHUNK ? (size_t)left : ZFILL_CHUNK;
		int ret = image_zread(z, buf, len);
		if (ret < 0)
			return ret; /* logged */
		ret = remote_write(r, addr, buf, len);
		if (ret < 0)
			return log_error_errno(ret, "pid %d: cannot fill memory at 0x%" PRIx64 ": %m", r->pid, addr);
		progress_add(len);
		addr += len;
		left -= len;
	}
	return 0;
}

static void zreader_closep(struct image_zreader **z)
{
	image_zread_close(*z);
}

int mm_fill_zstd(struct remote *r, struct image *img, const char *pages, const struct pagemap_entry *pm, size_t n)
{
	__attribute__((cleanup(zreader_closep))) struct image_zreader *z = NULL;
	_cleanup_free_ char *buf = malloc(ZFILL_CHUNK);
	uint64_t pos = 0;
	if (!buf)
		return log_error_errno(-ENOMEM, "pid %d: cannot fill memory: %m", r->pid);
	int ret = image_zread_open(img, pages, &z);
	if (ret < 0)
		return ret;
	log_debug("pid %d: filling %zu page runs from compressed %s", r->pid, n, pages);
	for (size_t i = 0; i < n; i++) {
		if (pm[i].offset != pos)
			return log_error_errno(-EBADMSG, "image file '%s' is damaged: its page index is not in "
					       "file order", pages);
		if ((ret = fill_run(r, z, buf, &pm[i])) < 0)
			return ret;
		pos += pm[i].nr_pages * PAGE_SIZE;
	}
	return image_zread_end(z);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pre-dumps, restore side (predump.h): the pages an image names in
 * chainpages-PID.img are at the same address in its parent image, or
 * in that one's parent, and so on. Each parent is checked against the
 * checksum its child recorded before anything is read from it. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/predump.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define CHAIN_BUF (4u << 20)
#define PM_MAX ((size_t)PAGEMAP_MAX_ENTRIES * sizeof(struct pagemap_entry) + 64)

int predump_open_parent(struct image *img, struct image **ret)
{
	const json_t *p = json_object_get(image_manifest(img), "parent");
	const char *rel;
	uint64_t want, got;
	char path[PATH_MAX];
	*ret = NULL;
	if (!p)
		return 0;
	if (json_get_str(p, "path", &rel) < 0 || json_get_x64(p, "digest", &want) < 0)
		return log_error_errno(-EBADMSG, "image %s: its manifest's \"parent\" is damaged", image_dir(img));
	if (rel[0] == '/')
		snprintf(path, sizeof(path), "%s", rel);
	else
		snprintf(path, sizeof(path), "%s/%s", image_dir(img), rel);
	int r = predump_digest(path, &got);
	if (r < 0)
		return log_error_errno(r, "parent image %s of %s is missing (%m): an incremental image needs its whole "
				       "chain", path, image_dir(img));
	if (got != want)
		return log_error_errno(-EBADMSG, "parent image %s has changed since %s was dumped (its manifest's "
				       "checksum differs): refusing to restore", path, image_dir(img));
	return image_open(path, ret);
}

struct run {
	uint64_t start, end;
};

/* Copies [start, end) from the page file at off into the process. */
static int copy_in(struct remote *r, int fd, uint64_t start, uint64_t end, uint64_t off, uint8_t *buf)
{
	while (start < end) {
		size_t len = end - start < CHAIN_BUF ? end - start : CHAIN_BUF;
		int e = pread_exact(fd, buf, len, (off_t)off);
		if (e < 0 || (e = remote_write(r, start, buf, len)) < 0)
			return e;
		start += len, off += len;
	}
	return 0;
}

static int add(struct run **v, size_t *n, uint64_t start, uint64_t end)
{
	struct run *x = realloc(*v, (*n + 1) * sizeof(**v));
	if (!x)
		return -ENOMEM;
	x[(*n)++] = (struct run){ start, end };
	*v = x;
	return 0;
}

/* One image of the chain: fills the parts of want[] its page file holds
 * (both in address order), and lists the rest in *rest. */
static int fill_level(struct remote *r, struct image *pimg, const struct run *want, size_t nwant, struct run **rest,
		      size_t *nrest)
{
	char name[IMAGE_NAME_MAX], pages[IMAGE_NAME_MAX];
	_cleanup_free_ void *enc = NULL;
	_cleanup_free_ struct pagemap_entry *pm = NULL;
	_cleanup_free_ uint8_t *buf = malloc(CHAIN_BUF);
	_cleanup_close_ int fd = -1;
	size_t len, n = 0;
	uint64_t size = 0;
	int e = buf ? 0 : -ENOMEM;
	if (e >= 0 && image_has(pimg, image_name_pagemap(name, r->pid))) {
		/* Read at offsets: a dump refuses --compress with --pre-dump and
		 * --parent, so a compressed parent is an image made up. */
		if (image_compressed(pimg, image_name_pages(pages, r->pid)))
			return log_error_errno(-EBADMSG, "parent image %s: the pages of pid %d are compressed, which an image "
					       "chain cannot hold", image_dir(pimg), r->pid);
		if ((e = image_verify_file(pimg, image_name_pages(pages, r->pid))) < 0 ||
		    (e = image_open_file(pimg, pages, &fd, &size)) < 0 || (e = image_get(pimg, name, PM_MAX, &enc, &len)) < 0)
			return log_error_errno(e, "parent image %s: pages of pid %d are damaged or unreadable: %m",
					       image_dir(pimg), r->pid);
		if ((e = pagemap_decode(enc, len, size, &pm, &n)) < 0)
			return log_error_errno(e, "parent image %s: file '%s' is damaged", image_dir(pimg), name);
	}
	size_t j = 0;
	for (size_t i = 0; i < nwant && e >= 0; i++) {
		uint64_t pos = want[i].start;
		while (pos < want[i].end && e >= 0) {
			while (j < n && pm[j].vaddr + pm[j].nr_pages * PAGE_SIZE <= pos)
				j++;
			uint64_t pend = j < n ? pm[j].vaddr + pm[j].nr_pages * PAGE_SIZE : 0;
			uint64_t end = want[i].end;
			if (j < n && pm[j].vaddr <= pos) {
				end = end < pend ? end : pend;
				e = copy_in(r, fd, pos, end, pm[j].offset + (pos - pm[j].vaddr), buf);
			} else {
				end = j < n && pm[j].vaddr < end ? pm[j].vaddr : end;
				e = add(rest, nrest, pos, end);
			}
			pos = end;
		}
	}
	if (e < 0)
		log_error_errno(e, "pid %d: cannot fill memory from parent image %s: %m", r->pid, image_dir(pimg));
	return e;
}

static int load_want(struct image *img, const struct mm_rec *m, pid_t pid, struct run **want, size_t *nwant)
{
	char name[IMAGE_NAME_MAX];
	_cleanup_free_ void *enc = NULL;
	_cleanup_free_ struct pagemap_entry *pm = NULL;
	size_t len, n;
	int e = image_get(img, image_name_chainpages(name, pid), PM_MAX, &enc, &len);
	if (e >= 0 && (e = pagemap_decode(enc, len, m->chain_pages * PAGE_SIZE, &pm, &n)) < 0)
		return log_error_errno(e, "image file '%s' is damaged", name);
	for (size_t i = 0; e >= 0 && i < n; i++)
		e = add(want, nwant, pm[i].vaddr, pm[i].vaddr + pm[i].nr_pages * PAGE_SIZE);
	return e;
}

int predump_restore_chain(struct remote *r, struct image *img, const struct mm_rec *m)
{
	struct run *want = NULL;
	size_t nwant = 0;
	struct image *cur = NULL;
	if (!m->chain_pages)
		return 0;
	int e = load_want(img, m, r->pid, &want, &nwant);
	while (e >= 0 && nwant) {
		struct image *next = NULL;
		struct run *rest = NULL;
		size_t nrest = 0;
		e = predump_open_parent(cur ? cur : img, &next);
		if (e >= 0 && !next)
			e = log_error_errno(-EBADMSG, "image %s: pages of pid %d are missing from the whole parent chain",
					    image_dir(img), r->pid);
		if (e >= 0)
			e = fill_level(r, next, want, nwant, &rest, &nrest);
		image_free(cur);
		cur = next;
		free(want);
		want = rest, nwant = nrest;
	}
	image_free(cur);
	free(want);
	if (e >= 0)
		log_debug("pid %d: %" PRIu64 " pages filled from the parent image chain", r->pid, m->chain_pages);
	return e;
}

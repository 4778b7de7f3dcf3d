/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Incremental dumps without soft-dirty (DESIGN.md §7): a pre-dump saves
 * the tree's memory while it keeps running and starts tracking writes
 * with userfaultfd write-protection in async mode (no fault handler: a
 * write only clears the page's write-protect bit, which PAGEMAP_SCAN
 * reports as PAGE_IS_WRITTEN). The userfaultfds live in a keeper, a
 * small detached process of ours, until the next dump takes them over
 * (or a timeout). A dump with --parent saves only the pages written
 * since, and names the others in chainpages-PID.img; restore takes those
 * from the parent image chain (predump-chain.c). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "engine/mm.h"
#include "engine/remote.h"
#include "image/image.h"
#include "image/json.h"

struct predump;

/* Before the freeze. NULL in *ret: neither --pre-dump nor --parent.
 * With --parent the parent image is opened and checksummed, and its
 * keeper's userfaultfds are taken over; when the keeper is gone the
 * dump saves everything and says so (-v). */
int predump_begin(bool pre_dump, const char *parent, struct predump **ret);
/* Before the freeze, with --parent: the pages written since, read once
 * ahead (mm_pages_warm), and about as much of each page file of img
 * reserved (image_reserve), to make their copy while frozen cheaper. */
void predump_warm(struct predump *pd, struct image *img);
/* Frozen, before the process's pages are saved: whether its mappings
 * are tracked since the parent image (m->tracked). */
void predump_mark(struct predump *pd, pid_t pid, struct mm_rec *m);
/* Frozen, after its pages are saved (--pre-dump): starts, or re-arms,
 * the tracking of its private anonymous mappings. A mapping that cannot
 * be tracked is saved in full by the next dump. */
int predump_track(struct predump *pd, struct remote *r, pid_t pid, int pidfd, int procfd, const struct mm_rec *m);
/* The manifest's "parent": where the parent image is, relative to dir,
 * and the checksum of its manifest. Nothing without a parent. */
void predump_to_json(const struct predump *pd, const char *dir, struct json_builder *b);
/* After the image is committed (--pre-dump): a keeper takes the
 * userfaultfds until the next dump of dir connects (or a timeout). */
int predump_keep(struct predump *pd, const char *dir);
void predump_free(struct predump *pd);

/* predump-chain.c, restore. The parent image of img (its manifest's
 * "parent"), opened and checked against its recorded checksum; *ret
 * NULL: img has none. One line when it is missing or changed. */
int predump_open_parent(struct image *img, struct image **ret);
/* Fills the pages chainpages-PID.img names from the parent chain,
 * through the process's /proc/PID/mem (r->mem_fd). */
int predump_restore_chain(struct remote *r, struct image *img, const struct mm_rec *m);
/* The checksum recorded for an image: XXH3-64 of its manifest.json (which
 * lists every file's size and checksum). */
int predump_digest(const char *dir, uint64_t *ret);

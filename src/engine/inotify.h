/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* inotify's record (inotify.c), for its parsers' unit tests. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "image/json.h"

#define MAX_INOTIFY_WATCHES 65536

struct inotify_watch {
	int wd;
	uint32_t mask;   /* as fdinfo shows it (IN_ONESHOT, IN_EXCL_UNLINK kept) */
	uint64_t ino, dev; /* the watched inode (dev as userspace dev_t) */
	char *path;      /* where restore finds it again */
	/* dump only: the file handle fdinfo shows */
	int handle_type;
	unsigned handle_bytes;
	unsigned char handle[128];
};

/* The state of an inotify fd: its watches in ascending wd order. */
struct inotify_rec {
	struct inotify_watch *watches;
	size_t nwatches;
};

void inotify_rec_free(struct inotify_rec *w);
/* Pure: the watches of an fdinfo text, without their paths. */
int inotify_parse_fdinfo(const char *buf, size_t len, struct inotify_rec *w);
void inotify_to_json(const struct inotify_rec *w, struct json_builder *b);
int inotify_from_json(const json_t *j, struct inotify_rec *w);

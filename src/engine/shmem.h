/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared memory objects: anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS,
 * shared across fork), memfds, and files deleted while mapped or open
 * (a POSIX semaphore in /dev/shm, unlinked at once). Each object is saved
 * once per image, whoever maps it or holds an fd to it, and made once by
 * the restorer, which hands it to every process (fdpass.h), so sharing
 * survives. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "engine/files.h"
#include "engine/shobj.h"
#include "image/image.h"
#include "image/json.h"

/* Fills o from our fd to the object. */
int shobj_stat(int fd, struct shobj *ret);
/* Saves the content (the parts that are not holes) once per image. */
int shobj_save(struct image *img, int fd, const struct shobj *o);
/* The "obj" key of a mapping's or fd's record. */
void shobj_to_jb(struct json_builder *b, const struct shobj *o);
int shobj_from_json(const json_t *j, struct shobj *o);
/* Our fd to the object, made and filled the first time; path is how
 * /proc showed it ("/dev/zero (deleted)", "/memfd:NAME (deleted)",
 * "/dir/file (deleted)") and decides how it is made. */
int shobj_get(struct files_ctx *c, const char *path, const struct shobj *o);
/* Our fd to the object (made already) becomes a read-only one: a file
 * that is some process's executable may have no writer (the kernel
 * denies PR_SET_MM_MAP's exe_fd then). Later opens of it go through
 * /proc/self/fd with their own flags. */
int shobj_readonly(struct files_ctx *c, const struct shobj *o);
/* A read-only open of our fd to an object (for a private mapping). */
int shobj_reopen_ro(int fd);

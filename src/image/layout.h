/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one list of the files an image holds (docs/FORMAT.md describes each
 * one): every writer and reader names its file through here, so a name is
 * spelled once and the document can be checked against image_files[].
 *
 * Names with a number take a buffer of IMAGE_NAME_MAX bytes and return it,
 * so they can be used inline: image_put(img, image_name_pages(n, pid), ...). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IMAGE_NAME_MAX 64

/* Fixed names. */
#define IMAGE_MANIFEST "manifest.json"     /* written last; lists the others */
#define IMAGE_IPC "ipc.json"               /* the tree's System V IPC namespace */
#define IMAGE_CONFIG "config.json"         /* containers: the runtime's description */
#define IMAGE_ROOTFS_DIFF "rootfs-diff.tar" /* Docker/containerd: the writable layer's changes */

/* Per process (the records of process.c, the page store of mm-pages.c). */
char *image_name_core(char buf[static IMAGE_NAME_MAX], pid_t pid);
char *image_name_mm(char buf[static IMAGE_NAME_MAX], pid_t pid);
char *image_name_fds(char buf[static IMAGE_NAME_MAX], pid_t pid);
char *image_name_pagemap(char buf[static IMAGE_NAME_MAX], pid_t pid);
char *image_name_pages(char buf[static IMAGE_NAME_MAX], pid_t pid);
char *image_name_pagerefs(char buf[static IMAGE_NAME_MAX], pid_t pid);
char *image_name_pagesums(char buf[static IMAGE_NAME_MAX], pid_t pid);
char *image_name_chainpages(char buf[static IMAGE_NAME_MAX], pid_t pid);
/* Per object, saved once however many processes share it. */
char *image_name_pipe(char buf[static IMAGE_NAME_MAX], uint64_t ino);
char *image_name_shmem(char buf[static IMAGE_NAME_MAX], uint64_t dev, uint64_t ino);
char *image_name_sysvshm(char buf[static IMAGE_NAME_MAX], int shmid);
/* Containers: the contents of the container's Nth tmpfs mount. */
char *image_name_tmpfs(char buf[static IMAGE_NAME_MAX], size_t n);

/* The table the names above follow, for documentation and tests:
 * pattern is the name as docs/FORMAT.md writes it (PID, INO, DEV, ID, N
 * stand for the numbers). */
struct image_file {
	const char *pattern;
	const char *holds;
	const char *owner; /* the source that writes and reads it */
};

extern const struct image_file image_files[];
extern const size_t image_nfiles;

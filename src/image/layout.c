/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The names of the image's files (layout.h). Each name function spells
 * its pattern of image_files[] with the numbers filled in; the unit test
 * checks the two agree, and that docs/FORMAT.md lists every pattern. */
#include "image/layout.h"

#include <inttypes.h>
#include <stdio.h>

#include "util/cleanup.h"

const struct image_file image_files[] = {
	{ IMAGE_MANIFEST, "format, version, process tree, and every other file with its size and checksum",
	  "image/image.c, engine/dump.c" },
	{ "core-PID.json", "threads, registers, credentials, signals, timers, file locks of process PID",
	  "engine/process.c" },
	{ "mm-PID.json", "the memory map of process PID", "engine/process.c, engine/mm.c" },
	{ "fds-PID.json", "the file descriptors of process PID", "engine/process.c, engine/files.c" },
	{ "pagemap-PID.img", "page index of process PID (binary)", "engine/mm-pages.c, image/pagemap.c" },
	{ "pages-PID.img", "page data of process PID (raw)", "engine/mm-pages.c" },
	{ "pagerefs-PID.img", "pages process PID shares with its parent (binary, optional)",
	  "engine/mm-pages.c, engine/mm-cow.c" },
	{ "pagesums-PID.img", "checksums of pages-PID.img in 64 KiB blocks (optional)", "engine/mm-pages.c, image/pagesums.c" },
	{ "chainpages-PID.img", "pages of process PID that are in the parent image chain (binary, optional)",
	  "engine/mm-pages.c, engine/predump-chain.c" },
	{ "pipe-INO.data", "bytes queued in pipe INO (saved once per pipe)", "engine/pipes.c" },
	{ "shmem-DEV-INO.data", "content of a shared memory object or deleted file (saved once)",
	  "engine/shmem.c" },
	{ IMAGE_IPC, "the System V IPC objects of the tree's IPC namespace", "engine/ipc.c, engine/ipc-restore.c" },
	{ "sysvshm-ID.data", "content of System V shared memory segment ID", "engine/ipc.c, engine/ipc-restore.c" },
	{ IMAGE_CONFIG, "containers: the runtime's own description", "runtime/" },
	{ IMAGE_ROOTFS_DIFF, "Docker/containerd: the writable layer's changes", "runtime/docker.c" },
	{ "tmpfs-N.tar", "Docker/containerd: the contents of tmpfs mount N", "runtime/docker.c" },
};

const size_t image_nfiles = ARRAY_SIZE(image_files);

char *image_name_core(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "core-%d.json", (int)pid);
	return buf;
}

char *image_name_mm(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "mm-%d.json", (int)pid);
	return buf;
}

char *image_name_fds(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "fds-%d.json", (int)pid);
	return buf;
}

char *image_name_pagemap(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "pagemap-%d.img", (int)pid);
	return buf;
}

char *image_name_pages(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "pages-%d.img", (int)pid);
	return buf;
}

char *image_name_pagerefs(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "pagerefs-%d.img", (int)pid);
	return buf;
}

char *image_name_pagesums(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "pagesums-%d.img", (int)pid);
	return buf;
}

char *image_name_pipe(char buf[static IMAGE_NAME_MAX], uint64_t ino)
{
	snprintf(buf, IMAGE_NAME_MAX, "pipe-%" PRIu64 ".data", ino);
	return buf;
}

/* DEV in hex, INO in decimal. */
char *image_name_shmem(char buf[static IMAGE_NAME_MAX], uint64_t dev, uint64_t ino)
{
	snprintf(buf, IMAGE_NAME_MAX, "shmem-%" PRIx64 "-%" PRIu64 ".data", dev, ino);
	return buf;
}

char *image_name_sysvshm(char buf[static IMAGE_NAME_MAX], int shmid)
{
	snprintf(buf, IMAGE_NAME_MAX, "sysvshm-%d.data", shmid);
	return buf;
}

char *image_name_tmpfs(char buf[static IMAGE_NAME_MAX], size_t n)
{
	snprintf(buf, IMAGE_NAME_MAX, "tmpfs-%zu.tar", n);
	return buf;
}

char *image_name_chainpages(char buf[static IMAGE_NAME_MAX], pid_t pid)
{
	snprintf(buf, IMAGE_NAME_MAX, "chainpages-%d.img", (int)pid);
	return buf;
}

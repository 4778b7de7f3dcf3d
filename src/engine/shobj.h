/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The identity of a shared memory object (see shmem.h), kept in the
 * records of the mappings and fds that use it. */
#pragma once

#include <stdint.h>

#define MAX_SHOBJ_SIZE (64ULL << 30)

struct shobj {
	uint64_t dev, ino; /* identity at dump; names the saved content */
	uint64_t size;
	uint32_t seals; /* F_GET_SEALS (memfds); F_SEAL_SEAL alone: sealing not allowed */
	uint32_t mode;  /* permission bits (07777); 0 in images that lack them */
	int64_t uid, gid; /* owner; -1 in images that lack them */
};

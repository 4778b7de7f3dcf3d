/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* XXH3-64 (seed 0) of a buffer, the same value as libxxhash's XXH3_64bits,
 * with AVX2 where the CPU has it (xxh3-fast.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

uint64_t xxh3_fast(const void *buf, size_t len);

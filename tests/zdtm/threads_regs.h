/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
#include <stdint.h>

#define REGS_WORDS 267 /* 256 vector words, 7 mask regs, 4 GPRs (offset 263) */

void regs_spin_avx512(const uint64_t *in, uint64_t *out, volatile int *flag);
void regs_spin_avx2(const uint64_t *in, uint64_t *out, volatile int *flag);

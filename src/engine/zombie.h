/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Zombies on restore (zombie.c). */
#pragma once

#include <stdbool.h>

/* Whether a zombie's core-dump bit can be made again here: the kernel
 * sets it only for a core it writes, which we can keep to a directory of
 * ours only when core_pattern is a plain name (no pipe, no directory). */
bool zombie_core_bit_kept(void);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kept only for the fd-kind files (files*.c, inotify.c, shmem.c, sk-*.c)
 * while they are restructured: they should include image/image.h (or
 * image/json.h) themselves, and this header then goes. */
#pragma once

#include "image/image.h"

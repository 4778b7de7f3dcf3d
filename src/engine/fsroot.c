/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/fsroot.h"

#include <stdio.h>

static char prefix[64];

void fsroot_set(const char *p)
{
	snprintf(prefix, sizeof(prefix), "%s", p ? p : "");
}

const char *fsroot_path(const char *path, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s%s", prefix, path);
	return n < 0 || (size_t)n >= size ? NULL : buf;
}

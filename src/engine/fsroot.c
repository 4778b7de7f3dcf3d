/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/fsroot.h"

#include <stdio.h>

const char *fsroot_path(const char *root, const char *path, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s%s", root ? root : "", path);
	return n < 0 || (size_t)n >= size ? NULL : buf;
}

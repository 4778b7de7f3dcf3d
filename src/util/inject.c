/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/inject.h"

#include <errno.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/util.h"

int inject_fail(const char *point)
{
	const char *e = getenv("STASIS_INJECT_FAIL");
	if (e && streq(e, point))
		return log_error_errno(-EIO, "injected failure at %s (STASIS_INJECT_FAIL)", point);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/rec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/util.h"

int json_set_x64(json_t *obj, const char *key, uint64_t v)
{
	char buf[17];
	snprintf(buf, sizeof(buf), "%016" PRIx64, v);
	return json_object_set_new(obj, key, json_string(buf)) < 0 ? -ENOMEM : 0;
}

int json_get_x64(const json_t *obj, const char *key, uint64_t *ret)
{
	const char *s;
	int r = json_get_str(obj, key, &s);
	if (r < 0)
		return r;
	if (strlen(s) != 16)
		return -EBADMSG;
	return parse_u64(s, 16, ret) < 0 ? -EBADMSG : 0;
}

int json_set_u64(json_t *obj, const char *key, uint64_t v)
{
	if (v > INT64_MAX)
		return -ERANGE;
	return json_object_set_new(obj, key, json_integer((json_int_t)v)) < 0 ? -ENOMEM : 0;
}

int json_set_str(json_t *obj, const char *key, const char *s)
{
	return json_object_set_new(obj, key, json_string(s)) < 0 ? -ENOMEM : 0;
}

int inject_fail(const char *point)
{
	const char *e = getenv("STASIS_INJECT_FAIL");
	if (e && streq(e, point))
		return log_error_errno(-EIO, "injected failure at %s (STASIS_INJECT_FAIL)", point);
	return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Typed field access for record readers. A missing key, a wrong type or a
 * value out of range are all the same to a reader: a damaged record
 * (-EBADMSG). They do not log; the record reader knows which file it is. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "image/image.h"
#include "util/cleanup.h"
#include "util/util.h"

int json_get_i64(const json_t *obj, const char *key, int64_t *ret)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return -EBADMSG;
	*ret = (int64_t)json_integer_value(v);
	return 0;
}

/* JSON integers are signed 64-bit in jansson: u64 values above INT64_MAX
 * cannot be stored, so writers keep such values (addresses) below 2^63. */
int json_get_u64(const json_t *obj, const char *key, uint64_t *ret)
{
	int64_t v;
	int r = json_get_i64(obj, key, &v);
	if (r < 0)
		return r;
	if (v < 0)
		return -EBADMSG;
	*ret = (uint64_t)v;
	return 0;
}

int json_get_int(const json_t *obj, const char *key, int *ret)
{
	int64_t v;
	int r = json_get_i64(obj, key, &v);
	if (r < 0)
		return r;
	if (v < INT_MIN || v > INT_MAX)
		return -EBADMSG;
	*ret = (int)v;
	return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool *ret)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_boolean(v))
		return -EBADMSG;
	*ret = json_is_true(v);
	return 0;
}

int json_get_str(const json_t *obj, const char *key, const char **ret)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return -EBADMSG;
	*ret = json_string_value(v);
	return 0;
}

int json_get_hex(const json_t *obj, const char *key, void *buf, size_t len)
{
	const char *s;
	int r = json_get_str(obj, key, &s);
	if (r < 0)
		return r;
	return hex_decode(s, buf, len) < 0 ? -EBADMSG : 0;
}

int json_get_hex_alloc(const json_t *obj, const char *key, size_t max, void **ret_buf, size_t *ret_len)
{
	const char *s;
	int r = json_get_str(obj, key, &s);
	if (r < 0)
		return r;
	size_t n = json_string_length(json_object_get(obj, key));
	if (n % 2 || n / 2 > max)
		return -EBADMSG;
	_cleanup_free_ void *buf = malloc(n / 2 ? n / 2 : 1);
	if (!buf)
		return -ENOMEM;
	if (hex_decode(s, buf, n / 2) < 0)
		return -EBADMSG;
	*ret_buf = TAKE_PTR(buf);
	*ret_len = n / 2;
	return 0;
}

int json_get_array(const json_t *obj, const char *key, size_t max, json_t **ret)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_array(v) || json_array_size(v) > max)
		return -EBADMSG;
	*ret = v;
	return 0;
}

int json_set_hex(json_t *obj, const char *key, const void *buf, size_t len)
{
	_cleanup_free_ char *s = hex_encode(buf, len);
	if (!s)
		return -ENOMEM;
	return json_object_set_new(obj, key, json_string(s)) < 0 ? -ENOMEM : 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The records' JSON both ways: typed getters (a missing key, a wrong type
 * or a value out of range are all the same to a reader: a damaged record,
 * -EBADMSG) and the setters and builder of the writers (image/json.h). */
#include "image/json.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* json_object_set_new takes v over even when it fails, and fails (besides
 * on memory) only for a NULL value or a key that is not UTF-8. */
static int set(json_t *obj, const char *key, json_t *v, int err_if_null)
{
	if (!v)
		return err_if_null;
	return json_object_set_new(obj, key, v) < 0 ? -ENOMEM : 0;
}

int json_set_u64(json_t *obj, const char *key, uint64_t v)
{
	if (v > INT64_MAX)
		return -ERANGE;
	return set(obj, key, json_integer((json_int_t)v), -ENOMEM);
}

int json_set_x64(json_t *obj, const char *key, uint64_t v)
{
	char buf[17];
	snprintf(buf, sizeof(buf), "%016" PRIx64, v);
	return set(obj, key, json_string(buf), -ENOMEM);
}

int json_set_str(json_t *obj, const char *key, const char *s)
{
	if (!s)
		return -EINVAL;
	/* jansson refuses a string that is not UTF-8 (a file name may be
	 * any bytes): say so rather than "out of memory". */
	return set(obj, key, json_string(s), -EINVAL);
}

int json_set_hex(json_t *obj, const char *key, const void *buf, size_t len)
{
	_cleanup_free_ char *s = hex_encode(buf, len);
	if (!s)
		return -ENOMEM;
	return set(obj, key, json_string(s), -ENOMEM);
}

void jb_begin(struct json_builder *b)
{
	b->obj = json_object();
	b->err = b->obj ? 0 : -ENOMEM;
	b->err_key = b->obj ? NULL : "(object)";
}

int jb_fail(struct json_builder *b, const char *key, int err)
{
	if (!b->err && err < 0) {
		b->err = err;
		b->err_key = key;
	}
	return b->err;
}

void jb_u64(struct json_builder *b, const char *key, uint64_t v)
{
	if (!b->err)
		jb_fail(b, key, json_set_u64(b->obj, key, v));
}

void jb_i64(struct json_builder *b, const char *key, int64_t v)
{
	if (!b->err)
		jb_fail(b, key, set(b->obj, key, json_integer((json_int_t)v), -ENOMEM));
}

void jb_int(struct json_builder *b, const char *key, int v)
{
	jb_i64(b, key, v);
}

void jb_bool(struct json_builder *b, const char *key, bool v)
{
	if (!b->err)
		jb_fail(b, key, set(b->obj, key, json_boolean(v), -ENOMEM));
}

void jb_x64(struct json_builder *b, const char *key, uint64_t v)
{
	if (!b->err)
		jb_fail(b, key, json_set_x64(b->obj, key, v));
}

void jb_str(struct json_builder *b, const char *key, const char *s)
{
	if (!b->err)
		jb_fail(b, key, json_set_str(b->obj, key, s));
}

void jb_hex(struct json_builder *b, const char *key, const void *buf, size_t len)
{
	if (!b->err)
		jb_fail(b, key, json_set_hex(b->obj, key, buf, len));
}

void jb_put(struct json_builder *b, const char *key, json_t *v)
{
	if (b->err) {
		json_decref(v);
		return;
	}
	jb_fail(b, key, set(b->obj, key, v, -ENOMEM));
}

void jb_obj(struct json_builder *b, const char *key, struct json_builder *sub)
{
	json_t *v = NULL;
	int r = jb_end(sub, &v);
	if (r < 0) {
		jb_fail(b, sub->err_key ? sub->err_key : key, r);
		return;
	}
	jb_put(b, key, v);
}

json_t *jb_array(struct json_builder *b, const char *key)
{
	json_t *a = json_array();
	jb_put(b, key, a);
	return b->err ? NULL : a;
}

void jb_append(struct json_builder *b, json_t *array, json_t *v)
{
	if (b->err || !array) {
		json_decref(v);
		return;
	}
	if (!v || json_array_append_new(array, v) < 0)
		jb_fail(b, "(array element)", -ENOMEM);
}

void jb_append_obj(struct json_builder *b, json_t *array, struct json_builder *sub)
{
	json_t *v = NULL;
	int r = jb_end(sub, &v);
	if (r < 0) {
		jb_fail(b, sub->err_key ? sub->err_key : "(array element)", r);
		return;
	}
	jb_append(b, array, v);
}

int jb_end(struct json_builder *b, json_t **ret)
{
	if (b->err) {
		json_decref(b->obj);
		b->obj = NULL;
		return b->err;
	}
	*ret = b->obj;
	b->obj = NULL;
	return 0;
}

const char *jb_key(const struct json_builder *b)
{
	return b->err_key ? b->err_key : "";
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON of the image's records, both ways (docs/FORMAT.md).
 *
 * Reading: typed getters that return -EBADMSG when a key is missing or has
 * the wrong type or range; they do not log, the record reader knows which
 * file it is reading.
 *
 * Writing: a builder that sets field after field and keeps the first
 * error with its real cause and the key it happened on, so a writer checks
 * once at the end instead of folding every call into "out of memory".
 *
 * Values that may use all 64 bits (signal masks, rlimits) are kept as
 * 16-digit hex strings ("x64"), since JSON integers here are signed 64-bit. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- reading --- */
int json_get_u64(const json_t *obj, const char *key, uint64_t *ret);
int json_get_i64(const json_t *obj, const char *key, int64_t *ret);
int json_get_int(const json_t *obj, const char *key, int *ret);
int json_get_bool(const json_t *obj, const char *key, bool *ret);
int json_get_x64(const json_t *obj, const char *key, uint64_t *ret);
/* Borrowed string, valid while obj lives. */
int json_get_str(const json_t *obj, const char *key, const char **ret);
/* Hex string of exactly len bytes decoded into buf. */
int json_get_hex(const json_t *obj, const char *key, void *buf, size_t len);
/* Hex string of at most max bytes, decoded into a malloc'd buffer. */
int json_get_hex_alloc(const json_t *obj, const char *key, size_t max, void **ret_buf, size_t *ret_len);
int json_get_array(const json_t *obj, const char *key, size_t max, json_t **ret);

/* --- writing: single fields (0, or -ENOMEM, -ERANGE, -EINVAL) --- */
int json_set_u64(json_t *obj, const char *key, uint64_t v);
int json_set_x64(json_t *obj, const char *key, uint64_t v);
/* -EINVAL when s is not valid UTF-8 (jansson refuses it). */
int json_set_str(json_t *obj, const char *key, const char *s);
int json_set_hex(json_t *obj, const char *key, const void *buf, size_t len);

/* --- writing: the builder ---
 *
 *	struct json_builder b;
 *	jb_begin(&b);
 *	jb_int(&b, "fd", o->fd);
 *	jb_str(&b, "path", o->path);
 *	r = jb_end(&b, &j);
 *	if (r < 0)
 *		return log_error_errno(r, "cannot encode %s: %m", jb_key(&b));
 *
 * After the first error every later call does nothing. Keys must outlive
 * the builder (string literals), since the key of the error is kept. */
struct json_builder {
	json_t *obj;
	int err;             /* the first error, 0 while none */
	const char *err_key; /* the key it happened on */
};

void jb_begin(struct json_builder *b);
/* Records err (< 0) on key unless an earlier error is kept; returns the
 * kept error. For a nested encoder that failed: jb_fail(b, key, r). */
int jb_fail(struct json_builder *b, const char *key, int err);
void jb_u64(struct json_builder *b, const char *key, uint64_t v);
void jb_i64(struct json_builder *b, const char *key, int64_t v);
void jb_int(struct json_builder *b, const char *key, int v);
void jb_bool(struct json_builder *b, const char *key, bool v);
void jb_x64(struct json_builder *b, const char *key, uint64_t v);
void jb_str(struct json_builder *b, const char *key, const char *s);
void jb_hex(struct json_builder *b, const char *key, const void *buf, size_t len);
/* Takes v over (NULL: out of memory). */
void jb_put(struct json_builder *b, const char *key, json_t *v);
/* Ends a nested builder and puts its object under key, keeping its error. */
void jb_obj(struct json_builder *b, const char *key, struct json_builder *sub);
/* A new array under key (borrowed, NULL after an error) and appending to
 * it: v is taken over, NULL means out of memory. */
json_t *jb_array(struct json_builder *b, const char *key);
void jb_append(struct json_builder *b, json_t *array, json_t *v);
/* Ends a nested builder and appends its object to array, keeping its
 * error (an array of records: one sub-builder per element). */
void jb_append_obj(struct json_builder *b, json_t *array, struct json_builder *sub);
/* The object (on success, *ret owns it) or the first error (everything
 * built is freed). */
int jb_end(struct json_builder *b, json_t **ret);
/* The key of the first error, for the message; "" when none. */
const char *jb_key(const struct json_builder *b);

/* jansson >= 2.11 has json_decrefp (with json_auto_t); older ones do not. */
#ifndef json_auto_t
static inline void json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#endif
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

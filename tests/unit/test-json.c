/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* image/json.c: the builder keeps the first error with its cause and key,
 * and the getters refuse what a damaged record may hold. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "image/json.h"
#include "util/cleanup.h"

static const char not_utf8[] = "caf\xe9"; /* Latin-1, as a file name may be */

static void test_builder_roundtrip(void **state)
{
	struct json_builder b;
	_cleanup_json_ json_t *j = NULL;
	const unsigned char bytes[3] = { 0x00, 0xab, 0xff };

	jb_begin(&b);
	jb_u64(&b, "u", INT64_MAX);
	jb_i64(&b, "i", -5);
	jb_int(&b, "n", 7);
	jb_bool(&b, "t", true);
	jb_x64(&b, "x", UINT64_MAX);
	jb_str(&b, "s", "hello");
	jb_hex(&b, "h", bytes, sizeof(bytes));
	jb_put(&b, "null", json_null());
	json_t *a = jb_array(&b, "a");
	assert_non_null(a);
	jb_append(&b, a, json_integer(1));
	struct json_builder e;
	jb_begin(&e);
	jb_int(&e, "k", 2);
	jb_append_obj(&b, a, &e);
	struct json_builder sub;
	jb_begin(&sub);
	jb_str(&sub, "inner", "v");
	jb_obj(&b, "o", &sub);
	assert_int_equal(jb_end(&b, &j), 0);
	assert_string_equal(jb_key(&b), "");

	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"u\":9223372036854775807,\"i\":-5,\"n\":7,\"t\":true,\"x\":\"ffffffffffffffff\","
			       "\"s\":\"hello\",\"h\":\"00abff\",\"null\":null,\"a\":[1,{\"k\":2}],"
			       "\"o\":{\"inner\":\"v\"}}");
}

/* The first error wins, with its own cause and key; every later call,
 * even one that would fail differently, does nothing. */
static void test_builder_first_error(void **state)
{
	struct json_builder b;
	json_t *j = (json_t *)0x1;

	jb_begin(&b);
	jb_int(&b, "ok", 1);
	jb_u64(&b, "addr", (uint64_t)INT64_MAX + 1);
	jb_str(&b, "name", not_utf8);
	jb_int(&b, "after", 2);
	assert_null(jb_array(&b, "list"));
	jb_put(&b, "v", json_integer(3)); /* taken over and freed: ASan checks */
	assert_int_equal(jb_fail(&b, "other", -EIO), -ERANGE);
	assert_int_equal(jb_end(&b, &j), -ERANGE);
	assert_string_equal(jb_key(&b), "addr");
	assert_ptr_equal(j, (json_t *)0x1); /* not written on failure */
}

static void test_builder_not_utf8(void **state)
{
	struct json_builder b;
	json_t *j = NULL;

	jb_begin(&b);
	jb_str(&b, "path", not_utf8);
	jb_u64(&b, "big", UINT64_MAX);
	assert_int_equal(jb_end(&b, &j), -EINVAL);
	assert_string_equal(jb_key(&b), "path");
	assert_null(j);
}

static void test_builder_null_string(void **state)
{
	struct json_builder b;
	json_t *j = NULL;

	jb_begin(&b);
	jb_str(&b, "comm", NULL);
	assert_int_equal(jb_end(&b, &j), -EINVAL);
	assert_string_equal(jb_key(&b), "comm");
}

/* A nested builder's error reaches the outer one with the inner key, and
 * everything built on both sides is freed (ASan checks the leaks). */
static void test_builder_nested_error(void **state)
{
	struct json_builder b, sub;
	json_t *j = NULL;

	jb_begin(&b);
	jb_int(&b, "pid", 1);
	jb_begin(&sub);
	jb_int(&sub, "fsuid", 0);
	jb_str(&sub, "label", not_utf8);
	jb_obj(&b, "creds", &sub);
	jb_int(&b, "later", 3);
	assert_int_equal(jb_end(&b, &j), -EINVAL);
	assert_string_equal(jb_key(&b), "label");
	assert_null(j);
}

static void test_builder_array_element_error(void **state)
{
	struct json_builder b, e;
	json_t *j = NULL;

	jb_begin(&b);
	json_t *a = jb_array(&b, "timers");
	jb_begin(&e);
	jb_u64(&e, "value_ns", UINT64_MAX);
	jb_append_obj(&b, a, &e);
	jb_append(&b, a, json_integer(1)); /* ignored, freed */
	assert_int_equal(jb_end(&b, &j), -ERANGE);
	assert_string_equal(jb_key(&b), "value_ns");
	/* A NULL element (its constructor ran out of memory). */
	jb_begin(&b);
	a = jb_array(&b, "a");
	jb_append(&b, a, NULL);
	assert_int_equal(jb_end(&b, &j), -ENOMEM);
	assert_string_equal(jb_key(&b), "(array element)");
	/* jb_put of NULL: out of memory, on that key. */
	jb_begin(&b);
	jb_put(&b, "x", NULL);
	assert_int_equal(jb_end(&b, &j), -ENOMEM);
	assert_string_equal(jb_key(&b), "x");
}

/* A nested encoder that failed by other means reports through jb_fail. */
static void test_builder_fail(void **state)
{
	struct json_builder b;
	json_t *j = NULL;

	jb_begin(&b);
	assert_int_equal(jb_fail(&b, "ignored", 0), 0);
	assert_int_equal(jb_fail(&b, "sockets", -EOPNOTSUPP), -EOPNOTSUPP);
	assert_int_equal(jb_fail(&b, "later", -ENOMEM), -EOPNOTSUPP);
	assert_int_equal(jb_end(&b, &j), -EOPNOTSUPP);
	assert_string_equal(jb_key(&b), "sockets");
}

static void test_setters(void **state)
{
	_cleanup_json_ json_t *o = json_object();
	assert_int_equal(json_set_u64(o, "a", (uint64_t)INT64_MAX + 1), -ERANGE);
	assert_int_equal(json_set_str(o, "s", not_utf8), -EINVAL);
	assert_int_equal(json_set_str(o, "s", NULL), -EINVAL);
	assert_int_equal(json_set_x64(o, "x", 0x1234), 0);
	assert_int_equal(json_set_hex(o, "h", "", 0), 0);
	assert_int_equal(json_object_size(o), 2);
	assert_string_equal(json_string_value(json_object_get(o, "x")), "0000000000001234");
	assert_string_equal(json_string_value(json_object_get(o, "h")), "");
}

static void test_getters(void **state)
{
	_cleanup_json_ json_t *o = json_loads("{\"neg\":-1,\"big\":4294967296,\"s\":\"x\",\"b\":true,"
					      "\"x\":\"00000000000000ff\",\"x15\":\"0000000000000ff\","
					      "\"xg\":\"000000000000000g\",\"h\":\"0a0b\",\"hodd\":\"0a0\","
					      "\"hbad\":\"zz\",\"a\":[1,2,3],\"f\":1.5}",
					      JSON_REJECT_DUPLICATES, NULL);
	uint64_t u;
	int64_t i;
	int n;
	bool b;
	const char *s;
	unsigned char buf[2];
	void *p;
	size_t len;
	json_t *a;

	assert_non_null(o);
	assert_int_equal(json_get_i64(o, "neg", &i), 0);
	assert_int_equal(i, -1);
	assert_int_equal(json_get_u64(o, "neg", &u), -EBADMSG);
	assert_int_equal(json_get_int(o, "big", &n), -EBADMSG);
	assert_int_equal(json_get_u64(o, "big", &u), 0);
	assert_int_equal(json_get_i64(o, "missing", &i), -EBADMSG);
	assert_int_equal(json_get_i64(o, "s", &i), -EBADMSG);
	assert_int_equal(json_get_i64(o, "f", &i), -EBADMSG);
	assert_int_equal(json_get_bool(o, "neg", &b), -EBADMSG);
	assert_int_equal(json_get_bool(o, "b", &b), 0);
	assert_true(b);
	assert_int_equal(json_get_str(o, "neg", &s), -EBADMSG);
	assert_int_equal(json_get_x64(o, "x", &u), 0);
	assert_int_equal(u, 0xff);
	assert_int_equal(json_get_x64(o, "x15", &u), -EBADMSG);
	assert_int_equal(json_get_x64(o, "xg", &u), -EBADMSG);
	assert_int_equal(json_get_x64(o, "neg", &u), -EBADMSG);
	assert_int_equal(json_get_hex(o, "h", buf, 2), 0);
	assert_int_equal(buf[1], 0x0b);
	assert_int_equal(json_get_hex(o, "h", buf, 1), -EBADMSG);
	assert_int_equal(json_get_hex(o, "hbad", buf, 1), -EBADMSG);
	assert_int_equal(json_get_hex_alloc(o, "hodd", 8, &p, &len), -EBADMSG);
	assert_int_equal(json_get_hex_alloc(o, "h", 1, &p, &len), -EBADMSG);
	assert_int_equal(json_get_hex_alloc(o, "hbad", 8, &p, &len), -EBADMSG);
	assert_int_equal(json_get_hex_alloc(o, "h", 2, &p, &len), 0);
	assert_int_equal(len, 2);
	free(p);
	assert_int_equal(json_get_array(o, "a", 2, &a), -EBADMSG);
	assert_int_equal(json_get_array(o, "s", 9, &a), -EBADMSG);
	assert_int_equal(json_get_array(o, "a", 3, &a), 0);
	assert_int_equal(json_array_size(a), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder_roundtrip),
		cmocka_unit_test(test_builder_first_error),
		cmocka_unit_test(test_builder_not_utf8),
		cmocka_unit_test(test_builder_null_string),
		cmocka_unit_test(test_builder_nested_error),
		cmocka_unit_test(test_builder_array_element_error),
		cmocka_unit_test(test_builder_fail),
		cmocka_unit_test(test_setters),
		cmocka_unit_test(test_getters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

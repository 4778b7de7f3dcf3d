/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/cleanup.h"
#include "util/dynlib.h"
#include "util/log.h"
#include "util/util.h"

static void test_parse_u64(void **state)
{
	uint64_t v = 7;

	assert_int_equal(parse_u64("0", 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64("18446744073709551615", 10, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_u64("18446744073709551616", 10, &v), -ERANGE);
	assert_int_equal(parse_u64("ff", 16, &v), 0);
	assert_int_equal(v, 255);
	v = 7;
	assert_int_equal(parse_u64("", 10, &v), -EINVAL);
	assert_int_equal(parse_u64(NULL, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("-1", 10, &v), -EINVAL);
	assert_int_equal(parse_u64("+1", 10, &v), -EINVAL);
	assert_int_equal(parse_u64(" 1", 10, &v), -EINVAL);
	assert_int_equal(parse_u64("1 ", 10, &v), -EINVAL);
	assert_int_equal(parse_u64("12x", 10, &v), -EINVAL);
	assert_int_equal(v, 7); /* untouched on failure */
}

static void test_parse_int(void **state)
{
	int v = 7;

	assert_int_equal(parse_int("-2147483648", &v), 0);
	assert_int_equal(v, -2147483648);
	assert_int_equal(parse_int("2147483647", &v), 0);
	assert_int_equal(v, 2147483647);
	assert_int_equal(parse_int("2147483648", &v), -ERANGE);
	assert_int_equal(parse_int("-2147483649", &v), -ERANGE);
	assert_int_equal(parse_int("99999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_int("", &v), -EINVAL);
	assert_int_equal(parse_int(" 3", &v), -EINVAL);
	assert_int_equal(parse_int("3a", &v), -EINVAL);
	assert_int_equal(parse_int("0x10", &v), -EINVAL);
}

static void test_parse_pid(void **state)
{
	pid_t p = 7;

	assert_int_equal(parse_pid("1", &p), 0);
	assert_int_equal(p, 1);
	assert_int_equal(parse_pid("4194304", &p), 0);
	assert_int_equal(parse_pid("4194305", &p), -ERANGE);
	assert_int_equal(parse_pid("0", &p), -ERANGE);
	assert_int_equal(parse_pid("-1", &p), -EINVAL);
	assert_int_equal(parse_pid("1.0", &p), -EINVAL);
	assert_int_equal(parse_pid("", &p), -EINVAL);
}

static void test_hex(void **state)
{
	const unsigned char in[] = { 0x00, 0x01, 0xab, 0xff };
	unsigned char out[4];
	_cleanup_free_ char *s = hex_encode(in, sizeof(in));
	_cleanup_free_ char *empty = hex_encode(in, 0);

	assert_string_equal(s, "0001abff");
	assert_string_equal(empty, "");
	assert_int_equal(hex_decode("0001ABff", out, 4), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(hex_decode("0001abf", out, 4), -EINVAL);
	assert_int_equal(hex_decode("0001abfff0", out, 4), -EINVAL);
	assert_int_equal(hex_decode("0001abfg", out, 4), -EINVAL);
	assert_int_equal(hex_decode(" 001abff", out, 4), -EINVAL);
	assert_int_equal(hex_decode("", out, 0), 0);
}

static void test_strings(void **state)
{
	assert_true(streq("a", "a"));
	assert_false(streq("a", "b"));
	assert_false(streq(NULL, "a"));
	assert_true(startswith("pagemap-1.img", "pagemap-"));
	assert_false(startswith("page", "pagemap-"));
	assert_true(now_ns() > 0);
}

static void test_path_is_normal(void **state)
{
	static const char *const good[] = { "/", "/etc/hostname", "/a/b c/.hidden", "/memfd:x (deleted)", "/a/..b" };
	static const char *const bad[] = { "", "rel", "bin/sh", "../../../bin/sh", "/a//b", "/a/./b", "/a/../b",
					   "/..", "/.", "/a/", "//", "/a/.." };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!path_is_normal(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (path_is_normal(bad[i]))
			fail_msg("'%s' taken", bad[i]);
	assert_false(path_is_normal(NULL));
}

static void test_read_file_cap(void **state)
{
	char dir[] = "/tmp/stasis-test-XXXXXX", path[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(write_file_at(AT_FDCWD, path, "0123456789", 10), 0);
	assert_int_equal(read_file_at(AT_FDCWD, path, 9, &buf, &len), -EFBIG);
	assert_null(buf);
	assert_int_equal(read_file_at(AT_FDCWD, path, 10, &buf, &len), 0);
	assert_int_equal(len, 10);
	assert_string_equal(buf, "0123456789");
	free(TAKE_PTR(buf));
	/* /proc files report size 0: read until EOF, still capped. */
	assert_int_equal(read_file_at(AT_FDCWD, "/proc/self/status", 1 << 20, &buf, &len), 0);
	assert_true(len > 0 && strlen(buf) == len);
	free(TAKE_PTR(buf));
	assert_int_equal(read_file_at(AT_FDCWD, "/proc/self/status", 16, &buf, &len), -EFBIG);
	assert_int_equal(read_file_at(AT_FDCWD, "/nonexistent", 16, &buf, &len), -ENOENT);
	unlink(path);
	rmdir(dir);
}

static void test_log_file(void **state)
{
	char dir[] = "/tmp/stasis-test-XXXXXX", path[64];
	_cleanup_free_ char *buf = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/log", dir);
	log_set_level(LOG_QUIET);
	assert_int_equal(log_open_file(path), 0);
	errno = EAGAIN;
	assert_int_equal(log_error_errno(-ENOENT, "cannot open '%s': %m", "x"), -ENOENT);
	assert_int_equal(errno, EAGAIN); /* logging leaves errno alone */
	assert_int_equal(log_warn_errno(EPERM, "w %m"), -EPERM);
	log_info("info %d", 3);
	log_debug("debug %s", "too");
	log_close_file();
	log_set_level(LOG_WARN);
	assert_int_equal(read_file_at(AT_FDCWD, path, 1 << 16, &buf, NULL), 0);
	assert_non_null(strstr(buf, "error: cannot open 'x': No such file or directory\n"));
	assert_non_null(strstr(buf, "warn: w Operation not permitted\n"));
	assert_non_null(strstr(buf, "info: info 3\n"));
	assert_non_null(strstr(buf, "debug: debug too\n"));
	unlink(path);
	rmdir(dir);
}

/* A library that is there fills the table; one that is not, or lacks a
 * function, fails with -ENOPKG, and keeps failing without a new try. */
static void test_dynlib(void **state)
{
#define FNS(X) X(getpid) X(getppid)
	static struct {
		FNS(DYNLIB_PTR)
	} t;
	static const char *const names[] = { FNS(DYNLIB_NAME) };
	struct dynlib ok = { "libc.so.6", "for the test", "libc6", names, (void **)&t, ARRAY_SIZE(names), 0 };
	assert_int_equal(dynlib_load(&ok), 0);
	assert_int_equal(t.getpid(), getpid());
	assert_int_equal(t.getppid(), getppid());
	assert_int_equal(dynlib_load(&ok), 0);
	void *fns[2];
	struct dynlib none = { "libstasis-none.so.0", "for the test", "none", names, fns, 2, 0 };
	assert_int_equal(dynlib_load(&none), -ENOPKG);
	assert_int_equal(dynlib_load(&none), -ENOPKG);
	static const char *const bad[] = { "getpid", "stasis_no_such_function" };
	struct dynlib lacks = { "libc.so.6", "for the test", "libc6", bad, fns, 2, 0 };
	assert_int_equal(dynlib_load(&lacks), -ENOPKG);
#undef FNS
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_path_is_normal),
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_parse_pid),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_read_file_cap),
		cmocka_unit_test(test_log_file),
		cmocka_unit_test(test_dynlib),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

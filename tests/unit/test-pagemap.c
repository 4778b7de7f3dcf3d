/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "image/pagemap.h"
#include "util/cleanup.h"
#include "util/util.h"

#define P PAGE_SIZE

static const struct pagemap_entry good[] = {
	{ 0x400000, 2, 0 },
	{ 0x402000, 1, 2 * P }, /* adjacent to the previous run: allowed */
	{ 0x7fff0000, 16, 3 * P },
};
#define GOOD_PAGES (19 * P)

/* Encodes e, decodes with pages_size, returns decode's result. */
static int roundtrip(const struct pagemap_entry *e, size_t n, uint64_t pages_size)
{
	_cleanup_free_ void *buf = NULL;
	_cleanup_free_ struct pagemap_entry *out = NULL;
	size_t len, n_out;

	assert_int_equal(pagemap_encode(e, n, &buf, &len), 0);
	assert_int_equal(len, 16 + 24 * n);
	int r = pagemap_decode(buf, len, pages_size, &out, &n_out);
	if (r == 0) {
		assert_int_equal(n_out, n);
		if (n)
			assert_memory_equal(out, e, n * sizeof(*e));
	}
	return r;
}

static void test_roundtrip(void **state)
{
	assert_int_equal(roundtrip(good, 3, GOOD_PAGES), 0);
	assert_int_equal(roundtrip(NULL, 0, 0), 0);
}

/* A good encoding with one byte range overwritten. */
static int decode_patched(size_t off, const void *patch, size_t plen, size_t len_delta)
{
	_cleanup_free_ unsigned char *buf = NULL;
	_cleanup_free_ struct pagemap_entry *out = NULL;
	size_t len, n;

	assert_int_equal(pagemap_encode(good, 3, (void **)&buf, &len), 0);
	memcpy(buf + off, patch, plen);
	return pagemap_decode(buf, len - len_delta, GOOD_PAGES, &out, &n);
}

static void test_header(void **state)
{
	uint32_t v2 = htole32(2);
	uint64_t big = htole64(UINT64_MAX / 24 + 2), four = htole64(4), many = htole64(PAGEMAP_MAX_ENTRIES + 1);
	_cleanup_free_ struct pagemap_entry *out = NULL;
	size_t n;

	assert_int_equal(decode_patched(0, "XTPM", 4, 0), -EBADMSG);
	assert_int_equal(decode_patched(4, &v2, 4, 0), -EBADMSG);
	assert_int_equal(decode_patched(8, &big, 8, 0), -EBADMSG); /* count * 24 overflows */
	assert_int_equal(decode_patched(8, &four, 8, 0), -EBADMSG);
	assert_int_equal(decode_patched(8, &many, 8, 0), -EBADMSG);
	assert_int_equal(decode_patched(0, "STPM", 4, 1), -EBADMSG); /* short */
	assert_int_equal(pagemap_decode("STPM", 4, 0, &out, &n), -EBADMSG);
	assert_int_equal(pagemap_decode("", 0, 0, &out, &n), -EBADMSG);
}

static void expect_bad(const struct pagemap_entry *e, size_t n, uint64_t pages_size)
{
	assert_int_equal(roundtrip(e, n, pages_size), -EBADMSG);
}

static void test_entries(void **state)
{
	const struct pagemap_entry misaligned[] = { { 0x400010, 1, 0 } };
	const struct pagemap_entry empty_run[] = { { 0x400000, 0, 0 } };
	const struct pagemap_entry high[] = { { 1ull << 47, 1, 0 } };
	const struct pagemap_entry past_end[] = { { (1ull << 47) - P, 2, 0 } };
	const struct pagemap_entry huge[] = { { 0x1000, UINT64_MAX / P + 2, 0 } };
	const struct pagemap_entry overlap[] = { { 0x400000, 2, 0 }, { 0x401000, 1, 2 * P } };
	const struct pagemap_entry unsorted[] = { { 0x500000, 1, 0 }, { 0x400000, 1, P } };
	const struct pagemap_entry same[] = { { 0x400000, 1, 0 }, { 0x400000, 1, P } };
	const struct pagemap_entry gap[] = { { 0x400000, 1, 0 }, { 0x500000, 1, 2 * P } };
	const struct pagemap_entry back[] = { { 0x400000, 2, 0 }, { 0x500000, 1, P } };
	const struct pagemap_entry start[] = { { 0x400000, 1, P } };

	expect_bad(misaligned, 1, P);
	expect_bad(empty_run, 1, 0);
	expect_bad(high, 1, P);
	expect_bad(past_end, 1, 2 * P);
	expect_bad(huge, 1, 0);
	expect_bad(overlap, 2, 3 * P);
	expect_bad(unsorted, 2, 2 * P);
	expect_bad(same, 2, 2 * P);
	expect_bad(gap, 2, 3 * P);
	expect_bad(back, 2, 3 * P);
	expect_bad(start, 1, 2 * P);
	/* The highest user page is fine. */
	const struct pagemap_entry top[] = { { (1ull << 47) - P, 1, 0 } };
	assert_int_equal(roundtrip(top, 1, P), 0);
}

static void test_size_mismatch(void **state)
{
	assert_int_equal(roundtrip(good, 3, GOOD_PAGES - P), -EBADMSG);
	assert_int_equal(roundtrip(good, 3, GOOD_PAGES + 1), -EBADMSG);
	assert_int_equal(roundtrip(NULL, 0, P), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_size_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

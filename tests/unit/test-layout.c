/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* image/layout.c: each name function spells its pattern, and
 * docs/FORMAT.md lists every pattern of the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "image/layout.h"
#include "util/cleanup.h"
#include "util/util.h"

static const char *find_pattern(const char *pattern)
{
	for (size_t i = 0; i < image_nfiles; i++)
		if (streq(image_files[i].pattern, pattern))
			return image_files[i].pattern;
	return NULL;
}

/* The name made with the numbers of the example must be the pattern with
 * the same numbers written in: a name function and its table line agree. */
static void check(const char *name, const char *pattern, const char *example)
{
	assert_non_null(find_pattern(pattern));
	assert_string_equal(name, example);
}

static void test_names_follow_table(void **state)
{
	char n[IMAGE_NAME_MAX];

	check(IMAGE_MANIFEST, "manifest.json", "manifest.json");
	check(IMAGE_IPC, "ipc.json", "ipc.json");
	check(IMAGE_CONFIG, "config.json", "config.json");
	check(IMAGE_ROOTFS_DIFF, "rootfs-diff.tar", "rootfs-diff.tar");
	check(image_name_core(n, 4242), "core-PID.json", "core-4242.json");
	check(image_name_mm(n, 4242), "mm-PID.json", "mm-4242.json");
	check(image_name_fds(n, 4242), "fds-PID.json", "fds-4242.json");
	check(image_name_pagemap(n, 4242), "pagemap-PID.img", "pagemap-4242.img");
	check(image_name_pages(n, 4242), "pages-PID.img", "pages-4242.img");
	check(image_name_pagerefs(n, 4242), "pagerefs-PID.img", "pagerefs-4242.img");
	check(image_name_pagesums(n, 4242), "pagesums-PID.img", "pagesums-4242.img");
	check(image_name_chainpages(n, 4242), "chainpages-PID.img", "chainpages-4242.img");
	check(image_name_pipe(n, UINT64_MAX), "pipe-INO.data", "pipe-18446744073709551615.data");
	check(image_name_shmem(n, 0x7fffff, 12), "shmem-DEV-INO.data", "shmem-7fffff-12.data");
	check(image_name_sysvshm(n, 2147483647), "sysvshm-ID.data", "sysvshm-2147483647.data");
	check(image_name_tmpfs(n, 3), "tmpfs-N.tar", "tmpfs-3.tar");
	/* Every line of the table is checked above. */
	assert_int_equal(image_nfiles, 16);
}

static void test_table_unique(void **state)
{
	for (size_t i = 0; i < image_nfiles; i++) {
		assert_non_null(image_files[i].holds);
		assert_non_null(image_files[i].owner);
		for (size_t k = i + 1; k < image_nfiles; k++)
			assert_string_not_equal(image_files[i].pattern, image_files[k].pattern);
	}
}

/* The document's directory layout lists every file, as `PATTERN` or at the
 * start of a line of the layout block. */
static void test_format_md_lists_all(void **state)
{
	_cleanup_fclose_ FILE *f = fopen(FORMAT_MD, "re");
	_cleanup_free_ char *doc = NULL;
	size_t len = 0;

	assert_non_null(f);
	assert_int_equal(getdelim(&doc, &len, '\0', f) > 0, 1);
	for (size_t i = 0; i < image_nfiles; i++) {
		char line[128];
		snprintf(line, sizeof(line), "\n  %s ", image_files[i].pattern);
		if (!strstr(doc, line))
			fail_msg("docs/FORMAT.md's directory layout does not list %s", image_files[i].pattern);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_follow_table),
		cmocka_unit_test(test_table_unique),
		cmocka_unit_test(test_format_md_lists_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The option tables of src/cli: what the parser returns, how it stops, and
 * that the help shows every entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/cli-options.h"
#include "util/log.h"

static const struct cli_option toy_options[] = {
	{ "dir", 'D', true, "DIR", "a directory" },
	{ "flag", 'F', false, NULL, "a long-only flag" },
	{ "count", 'c', false, "N", "a long-only option with an argument" },
	CLI_COMMON_OPTIONS,
	{ 0 },
};

static const struct cli_command toy = { "toy", NULL, "a toy command", "-D DIR [OPTIONS]", toy_options };

/* Parses argv (NULL-terminated, argv[0] = "toy"); the vals returned, as a
 * string, then 'S' and the status when it stopped. */
static void parse(char **argv, char *ret, size_t size, int *ret_status)
{
	struct cli_parser p;
	int argc = 0, c;
	size_t n = 0;

	while (argv[argc])
		argc++;
	cli_parser_init(&p, &toy);
	while ((c = cli_next(&p, argc, argv)) > 0 && n + 1 < size)
		ret[n++] = (char)c;
	ret[n] = 0;
	*ret_status = c == CLI_STOP ? p.status : -1;
}

static void test_options(void **state)
{
	char *argv[] = { "toy", "op1", "-D", "d", "--flag", "--count=3", "--dir", "e", "op2", NULL };
	char got[16];
	int status;

	parse(argv, got, sizeof(got), &status);
	assert_string_equal(got, "DFcD");
	assert_int_equal(status, -1);
	/* getopt moved the operands to the end */
	assert_int_equal(optind, 7);
	assert_string_equal(argv[optind], "op1");
}

static void test_stops(void **state)
{
	char *unknown[] = { "toy", "--nope", NULL }, *missing[] = { "toy", "-D", NULL },
	     *noarg[] = { "toy", "--flag=1", NULL }, *longonly[] = { "toy", "-F", NULL },
	     *help[] = { "toy", "-D", "d", "--help", "--nope", NULL };
	char got[16];
	int status;

	parse(unknown, got, sizeof(got), &status);
	assert_int_equal(status, 2);
	parse(missing, got, sizeof(got), &status);
	assert_int_equal(status, 2);
	parse(noarg, got, sizeof(got), &status);
	assert_int_equal(status, 2);
	parse(longonly, got, sizeof(got), &status);
	assert_int_equal(status, 2);
	parse(help, got, sizeof(got), &status);
	assert_string_equal(got, "D");
	assert_int_equal(status, 0);
}

static void test_common(void **state)
{
	char *argv[] = { "toy", "-v", "--verbose", "--flag", NULL };
	char got[16];
	int status;

	log_set_level(LOG_WARN);
	parse(argv, got, sizeof(got), &status);
	assert_string_equal(got, "F");
	assert_int_equal(log_get_level(), LOG_DEBUG);
	log_set_level(LOG_WARN);
}

static void test_help(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	cli_print_help(f, &toy);
	fclose(f);
	assert_non_null(strstr(text, "usage: stasis toy -D DIR [OPTIONS]\n"));
	assert_non_null(strstr(text, "  -D, --dir DIR "));
	assert_non_null(strstr(text, "      --flag "));
	assert_non_null(strstr(text, "      --count N "));
	assert_non_null(strstr(text, "      --log-file FILE "));
	assert_non_null(strstr(text, "  -h, --help "));
	for (const struct cli_option *o = toy_options; o->name; o++)
		assert_non_null(strstr(text, o->help));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_stops),
		cmocka_unit_test(test_common),
		cmocka_unit_test(test_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

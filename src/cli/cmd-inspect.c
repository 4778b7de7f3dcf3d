/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdbool.h>

#include "cli/cli.h"
#include "runtime/runtime.h"

static const struct cli_option options[] = {
	{ "json", 'j', false, NULL, "print it all as one JSON document" },
	CLI_COMMON_OPTIONS,
	{ 0 },
};

const struct cli_command cli_inspect = {
	"inspect", cmd_inspect, "show what an image holds: tree, memory maps, fds",
	"DIR [--json] [OPTIONS]",
	options,
};

int cmd_inspect(int argc, char **argv)
{
	bool as_json = false;
	struct cli_parser parser;
	int c;

	cli_parser_init(&parser, &cli_inspect);
	while ((c = cli_next(&parser, argc, argv)) > 0)
		if (c == 'j')
			as_json = true;
	if (c == CLI_STOP)
		return parser.status;
	if (optind + 1 != argc)
		return usage_error("inspect", "expected one checkpoint directory");
	return rt_inspect(argv[optind], as_json) < 0 ? cli_failed("inspect") : 0;
}

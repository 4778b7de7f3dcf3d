/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>
#include <sys/utsname.h>

#include "cli/cli.h"
#include "runtime/runtime.h"

static const struct cli_option options[] = {
	CLI_COMMON_OPTIONS,
	{ 0 },
};

const struct cli_command cli_check = {
	"check", cmd_check, "list the kernel features stasis needs, and which are here",
	"[OPTIONS]",
	options,
};

int cmd_check(int argc, char **argv)
{
	struct utsname u;
	struct cli_parser parser;
	size_t n;
	int missing = 0, c;

	cli_parser_init(&parser, &cli_check);
	while ((c = cli_next(&parser, argc, argv)) > 0)
		; /* only the common options, which cli_next handles */
	if (c == CLI_STOP)
		return parser.status;
	if (optind < argc)
		return usage_error("check", "unexpected argument '%s'", argv[optind]);
	uname(&u);
	printf("kernel %s %s\n", u.release, u.machine);
	const struct kfeature *f = rt_kernel_features(&n);
	for (size_t i = 0; i < n; i++) {
		printf("  %-4s %-34s %s%s\n", f[i].present ? "yes" : "NO", f[i].name, f[i].why,
		       f[i].required ? "" : " [optional]");
		if (f[i].required && !f[i].present)
			missing++;
	}
	if (missing) {
		fprintf(stderr, "stasis: %d required feature%s missing\n", missing, missing > 1 ? "s are" : " is");
		return 1;
	}
	printf("all required features are present\n");
	return 0;
}

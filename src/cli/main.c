/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "cli/cli.h"
#include "runtime/runtime.h"
#include "util/log.h"
#include "util/util.h"

static const struct cli_command *const commands[] = { &cli_dump, &cli_restore, &cli_inspect, &cli_check };

static void print_usage(FILE *f)
{
	fprintf(f, "usage: stasis COMMAND [OPTIONS]\n"
		   "       stasis COMMAND --help, stasis help COMMAND\n"
		   "       stasis --version\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\nEvery command takes -v/--verbose, --log-file FILE and -h/--help.\n"
		   "'stasis COMMAND --help' lists a command's options; 'man stasis' tells more.\n"
		   "Exit status: 0 done, 1 failed, 2 bad usage.\n");
}

int cli_failed(const char *cmd)
{
	/* Every failure says why in one line; a path that forgot to is a bug,
	 * but the user still gets a line to act on. */
	if (log_errors_shown() == 0)
		log_error("%s failed without saying why (a bug in stasis): run it again with -v "
			  "--log-file FILE and report what the log shows", cmd);
	return 1;
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (streq(name, commands[i]->name))
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	mark_start();
	log_set_level(LOG_WARN);
	if (argc < 2) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	if (streq(argv[1], "-h") || streq(argv[1], "--help") || streq(argv[1], "help")) {
		const struct cli_command *about = argc > 2 ? find_command(argv[2]) : NULL;
		if (about)
			cli_print_help(stdout, about);
		else
			print_usage(stdout);
		return 0;
	}
	if (streq(argv[1], "--version")) {
		printf("stasis %s\n", STASIS_VERSION);
		return 0;
	}
	if (streq(argv[1], RT_LAZY_FILLER_ARG)) /* not a command: restore --lazy starts it */
		return rt_lazy_filler(argc, argv);
	const struct cli_command *cmd = find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr, "stasis: unknown command '%s'\n", argv[1]);
		print_usage(stderr);
		return EXIT_USAGE;
	}
	int r = cmd->run(argc - 1, argv + 1);
	log_close_file();
	return r;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"
#include "util/util.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "dump", cmd_dump, "checkpoint a process: dump --type process --pid PID -D DIR [--leave-running]" },
	{ "restore", cmd_restore, "restore a checkpoint: restore -D DIR [--detach] [--inherit-fd N:M]" },
	{ "inspect", cmd_inspect, "show what a checkpoint holds: inspect DIR [--json]" },
	{ "check", cmd_check, "show which kernel features stasis needs and has" },
};

static void print_usage(FILE *f)
{
	fprintf(f, "usage: stasis COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\ncommon options: -v/--verbose, --log-file FILE, -h/--help\n");
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "stasis %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'stasis --help')\n");
	return EXIT_USAGE;
}

int cli_common_option(int opt, const char *arg)
{
	if (opt == 'v') {
		log_set_level(log_get_level() < LOG_INFO ? LOG_INFO : LOG_DEBUG);
		return 1;
	}
	if (opt == 'L') {
		if (log_open_file(arg) < 0) {
			fprintf(stderr, "stasis: cannot open log file %s\n", arg);
			return -1;
		}
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	log_set_level(LOG_WARN);
	if (argc < 2) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	if (streq(argv[1], "-h") || streq(argv[1], "--help") || streq(argv[1], "help")) {
		print_usage(stdout);
		return 0;
	}
	if (streq(argv[1], "--version")) {
		printf("stasis %s\n", STASIS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (streq(argv[1], commands[i].name)) {
			int r = commands[i].run(argc - 1, argv + 1);
			log_close_file();
			return r;
		}
	fprintf(stderr, "stasis: unknown command '%s'\n", argv[1]);
	print_usage(stderr);
	return EXIT_USAGE;
}

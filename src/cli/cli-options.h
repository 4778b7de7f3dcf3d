/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One table per command describes its options; the getopt arrays and the
 * help text are both made from it, so `stasis CMD --help` cannot drift
 * from what the parser accepts (and tests/t_manpage.py checks the man
 * page against that help). */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

struct cli_option {
	const char *name;  /* long name, without "--" */
	int val;           /* what the parser returns for it */
	bool has_short;    /* also accepted as -val */
	const char *arg;   /* its argument's name in the help ("DIR"); NULL: takes none;
			    * "[=LEVEL]": optional, given as --name=LEVEL (long only) */
	const char *help;  /* one line */
};

/* -v/--verbose, --log-file and -h/--help: every command takes them, and
 * cli_next handles them itself. */
#define CLI_COMMON_OPTIONS                                                                              \
	{ "verbose", 'v', true, NULL, "say more (-vv: debug detail)" },                                 \
	{ "log-file", 'L', false, "FILE", "write everything, at debug level, to FILE" },                \
	{ "help", 'h', true, NULL, "show this help and exit" }

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;                /* one line, for `stasis --help` */
	const char *synopsis;               /* usage lines without "stasis CMD", '\n' between */
	const struct cli_option *options;   /* ends with an entry whose name is NULL */
};

#define CLI_MAX_OPTIONS 24

/* The parser of one command's arguments; made by cli_parser_init. */
struct cli_parser {
	const struct cli_command *cmd;
	int status;  /* the exit status when cli_next returns CLI_STOP */
	char shortopts[2 * CLI_MAX_OPTIONS + 2];
	struct option longopts[CLI_MAX_OPTIONS + 1];
};

enum {
	CLI_DONE = 0,  /* the options are over: argv[optind] is the first operand */
	CLI_STOP = -1, /* the command must end now with parser.status (help shown, bad usage) */
};

void cli_parser_init(struct cli_parser *p, const struct cli_command *cmd);
/* The next option of the command (its val, optarg set), CLI_DONE or
 * CLI_STOP. */
int cli_next(struct cli_parser *p, int argc, char **argv);

void cli_print_help(FILE *f, const struct cli_command *cmd);

#define EXIT_USAGE 2

/* Prints "stasis CMD: <message> (see 'stasis CMD --help')"; returns
 * EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Subcommands. Each returns the process exit status: 0 done, 1 failed,
 * 2 bad usage. */
#pragma once

#define EXIT_USAGE 2

int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

/* Handles -v and --log-file (shared by all subcommands); returns 1 when
 * the option was one of them, -1 on error. */
int cli_common_option(int opt, const char *arg);
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define COMMON_LONG_OPTIONS \
	{ "verbose", no_argument, NULL, 'v' }, { "log-file", required_argument, NULL, 'L' }, \
	{ "help", no_argument, NULL, 'h' }

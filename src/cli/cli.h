/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Subcommands. Each returns the process exit status: 0 done, 1 failed,
 * 2 bad usage. */
#pragma once

#include "cli/cli-options.h"

int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

/* A command's engine call failed: exit status 1, and the one line that
 * says why if the failure printed none. */
int cli_failed(const char *cmd);

/* Each command's name, summary, synopsis and option table, next to its
 * code; main dispatches on them. */
extern const struct cli_command cli_dump, cli_restore, cli_inspect, cli_check;


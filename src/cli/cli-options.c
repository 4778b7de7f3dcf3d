/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdarg.h>
#include <string.h>

#include "cli/cli-options.h"
#include "util/log.h"
#include "util/util.h"

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "stasis %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'stasis %s --help')\n", cmd);
	return EXIT_USAGE;
}

void cli_parser_init(struct cli_parser *p, const struct cli_command *cmd)
{
	char *s = p->shortopts;
	size_t n = 0;

	p->cmd = cmd;
	p->status = 0;
	/* A leading ':' makes getopt return ':' for a missing argument, so
	 * both kinds of mistakes get our one-line message. */
	*s++ = ':';
	for (const struct cli_option *o = cmd->options; o->name; o++, n++) {
		assert(n < CLI_MAX_OPTIONS);
		int has = !o->arg ? no_argument : o->arg[0] == '[' ? optional_argument : required_argument;
		p->longopts[n] = (struct option){ o->name, has, NULL, o->val };
		if (!o->has_short)
			continue;
		*s++ = (char)o->val;
		if (o->arg)
			*s++ = ':';
	}
	*s = 0;
	p->longopts[n] = (struct option){ 0 };
	optind = 1;
	opterr = 0;
}

/* The option getopt just complained about, as the user wrote it: a long
 * one is the last argument it read (getopt sets optopt to its val, or 0
 * when unknown), a short one is optopt. */
static void offending(char **argv, char *buf, size_t size)
{
	const char *last = optind > 0 ? argv[optind - 1] : NULL;
	if (last && startswith(last, "--"))
		snprintf(buf, size, "%.*s", (int)strcspn(last, "="), last);
	else
		snprintf(buf, size, "-%c", optopt);
}

/* Whether "--name" is one of cmd's options (given an argument it does not
 * take, as --name=x). */
static bool known(const struct cli_command *cmd, const char *opt)
{
	for (const struct cli_option *o = cmd->options; o->name; o++)
		if (startswith(opt, "--") && streq(opt + 2, o->name))
			return true;
	return false;
}

/* The options every command takes; 1 when handled, CLI_STOP on error. */
static int common_option(struct cli_parser *p, int c, char **argv)
{
	char opt[64];

	switch (c) {
	case 'v':
		log_set_level(log_get_level() < LOG_INFO ? LOG_INFO : LOG_DEBUG);
		return 1;
	case 'L':
		if (log_open_file(optarg) < 0) {
			fprintf(stderr, "stasis: cannot open log file %s\n", optarg);
			p->status = 1;
			return CLI_STOP;
		}
		return 1;
	case 'h':
		cli_print_help(stdout, p->cmd);
		p->status = 0;
		return CLI_STOP;
	case ':':
		offending(argv, opt, sizeof(opt));
		p->status = usage_error(p->cmd->name, "option '%s' needs an argument", opt);
		return CLI_STOP;
	case '?':
		offending(argv, opt, sizeof(opt));
		p->status = usage_error(p->cmd->name, known(p->cmd, opt) ? "option '%s' takes no argument" : "unknown option '%s'",
					opt);
		return CLI_STOP;
	}
	return 0;
}

int cli_next(struct cli_parser *p, int argc, char **argv)
{
	for (;;) {
		int c = getopt_long(argc, argv, p->shortopts, p->longopts, NULL);
		if (c < 0)
			return CLI_DONE;
		int r = common_option(p, c, argv);
		if (r == 0)
			return c;
		if (r < 0)
			return r;
	}
}

/* "-D, --checkpoint-dir DIR" or "    --leave-running"; its length. */
static int option_label(const struct cli_option *o, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%c%c%c --%s%s%s", o->has_short ? '-' : ' ', o->has_short ? o->val : ' ',
			 o->has_short ? ',' : ' ', o->name, o->arg && o->arg[0] != '[' ? " " : "", o->arg ? o->arg : "");
	return n < 0 ? 0 : n;
}

void cli_print_help(FILE *f, const struct cli_command *cmd)
{
	const char *line = cmd->synopsis;
	char label[80];
	int width = 0;

	for (bool first = true; *line; first = false) {
		size_t len = strcspn(line, "\n");
		fprintf(f, "%s stasis %s %.*s\n", first ? "usage:" : "      ", cmd->name, (int)len, line);
		line += len + (line[len] == '\n');
	}
	fprintf(f, "\n%s\n\noptions:\n", cmd->summary);
	for (const struct cli_option *o = cmd->options; o->name; o++) {
		int n = option_label(o, label, sizeof(label));
		if (n > width)
			width = n;
	}
	for (const struct cli_option *o = cmd->options; o->name; o++) {
		option_label(o, label, sizeof(label));
		fprintf(f, "  %-*s  %s\n", width, label, o->help);
	}
}

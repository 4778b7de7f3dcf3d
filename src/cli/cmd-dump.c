/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "runtime/runtime.h"
#include "util/util.h"

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' }, { "pid", required_argument, NULL, 'p' },
		{ "checkpoint-dir", required_argument, NULL, 'D' }, { "leave-running", no_argument, NULL, 'R' },
		{ "tcp-close", no_argument, NULL, 'T' }, { "id", required_argument, NULL, 'i' },
		{ "namespace", required_argument, NULL, 'n' },
		COMMON_LONG_OPTIONS, { 0 },
	};
	struct dump_opts o = { 0 };
	const char *type = "process", *dir = NULL, *id = NULL, *ns = NULL;
	pid_t pid = 0;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:p:D:vh", opts, NULL)) >= 0) {
		int r = cli_common_option(c, optarg);
		if (r < 0)
			return 1;
		if (r)
			continue;
		switch (c) {
		case 't': type = optarg; break;
		case 'p':
			if (parse_pid(optarg, &pid) < 0)
				return usage_error("dump", "invalid pid '%s'", optarg);
			break;
		case 'D': dir = optarg; break;
		case 'R': o.leave_running = true; break;
		case 'T': o.tcp_close = true; break;
		case 'i': id = optarg; break;
		case 'n': ns = optarg; break;
		case 'h':
			printf("usage: stasis dump --type process --pid PID -D DIR [--leave-running] [--tcp-close] [-v] [--log-file F]\n"
			       "       stasis dump --type runc|docker --id ID -D DIR [...]\n"
			       "       stasis dump --type containerd --namespace NS --id ID -D DIR [...]\n");
			return 0;
		default: return usage_error("dump", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("dump", "unexpected argument '%s'", argv[optind]);
	const struct rt_ops *ops = rt_find(type);
	if (!ops)
		return usage_error("dump", "--type %s is not supported (supported: %s)", type, rt_names());
	if (ops->target == RT_BY_PID && (id || ns || !pid))
		return usage_error("dump", "--type %s takes --pid PID (not --id or --namespace)", type);
	if (ops->target != RT_BY_PID && (!id || pid))
		return usage_error("dump", "--type %s takes --id ID (and no --pid)", type);
	if ((ops->target == RT_BY_ID_NS) != (ns != NULL))
		return usage_error("dump", "--namespace goes with --type containerd (and is required there)");
	if (!dir)
		return usage_error("dump", "-D/--checkpoint-dir is required");
	struct rt_target t = { .pid = pid, .id = id, .ns = ns };
	return rt_dump(ops, &t, dir, &o) < 0 ? 1 : 0;
}

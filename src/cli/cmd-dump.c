/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#include "cli/cli.h"
#include "runtime/runtime.h"
#include "util/interrupt.h"
#include "util/util.h"

static const struct cli_option options[] = {
	{ "type", 't', true, "TYPE", "process (the default), runc, docker, containerd or podman" },
	{ "pid", 'p', true, "PID", "root of the process tree to dump (--type process)" },
	{ "id", 'i', false, "ID", "the container's id or name (the container types)" },
	{ "namespace", 'n', false, "NS", "containerd namespace of the container (Docker's: moby)" },
	{ "address", 'A', false, "SOCKET", "containerd's socket (default: $CONTAINERD_ADDRESS, dockerd's, "
					    "/run/containerd/containerd.sock)" },
	{ "checkpoint-dir", 'D', true, "DIR", "write the image into DIR (default: a new directory under "
					       RT_CHECKPOINT_ROOT ", printed)" },
	{ "leave-running", 'R', false, NULL, "the tree carries on after the dump (default: killed)" },
	{ "tcp-close", 'T', false, NULL, "save established TCP connections as closed sockets" },
	{ "tcp-established", 'E', false, NULL, "keep established TCP connections (the network is locked meanwhile)" },
	{ "unix-close", 'U', false, NULL, "unix connections to a process outside the tree come back closed (EOF)" },
	{ "unix-reconnect", 'N', false, NULL, "unix connections to a named socket outside the tree connect to it again" },
	{ "print-stats", 'S', false, NULL, "print the dump's statistics (JSON) on stdout" },
	{ "compress", 'Z', false, "[=LEVEL]", "compress the page data with zstd, multi-threaded (LEVEL 1-19, default 3); "
					      "such an image cannot be restored --lazy" },
	{ "pre-dump", 'P', false, NULL, "save memory, keep the tree running and track its writes for a dump with --parent" },
	{ "parent", 'a', false, "DIR", "save only the memory written since the (pre-)dump in DIR; restore needs DIR" },
	CLI_COMMON_OPTIONS,
	{ 0 },
};

const struct cli_command cli_dump = {
	"dump", cmd_dump, "checkpoint a process tree or a container into an image directory",
	"--type process --pid PID [-D DIR] [OPTIONS]\n"
	"--type runc|docker|podman --id ID [-D DIR] [OPTIONS]\n"
	"--type containerd --namespace NS --id ID [--address SOCKET] [-D DIR] [OPTIONS]",
	options,
};

/* --compress[=LEVEL]: zstd's levels that still stream fast enough. */
static int parse_compress(const char *arg, int *ret)
{
	int level = 3;
	if (arg && (parse_int(arg, &level) < 0 || level < 1 || level > 19))
		return -EINVAL;
	*ret = level;
	return 0;
}

/* Without -D the image goes into a new directory under the checkpoint
 * root, which is then the one line on stdout. */
static int dump_to(const struct rt_ops *ops, const struct rt_target *t, const char *dir, struct dump_opts *o)
{
	char path[PATH_MAX];
	if (!dir && rt_default_dir(ops, t, path, sizeof(path)) < 0)
		return cli_failed("dump");
	if (rt_dump(ops, t, dir ? dir : path, o) < 0)
		return cli_failed("dump");
	if (!dir)
		printf("%s\n", path);
	if (o->stats) { /* one line of JSON, as Podman's --print-stats: microseconds */
		printf("{\"dump_time\": %.0f, \"frozen_time\": %.0f, \"pages_written\": %" PRIu64
		       ", \"pages_skipped\": %" PRIu64 ", \"bytes_written\": %" PRIu64,
		       (double)o->stats->total_ns / 1e3, (double)o->stats->frozen_ns / 1e3, o->stats->pages_written,
		       o->stats->pages_skipped, o->stats->bytes_written);
		if (o->compress_level)
			printf(", \"bytes_compressed\": %" PRIu64, o->stats->bytes_compressed);
		printf("}\n");
	}
	fflush(stdout);
	return 0;
}

int cmd_dump(int argc, char **argv)
{
	struct dump_opts o = { 0 };
	struct dump_stats stats = { 0 };
	const char *type = "process", *dir = NULL, *id = NULL, *ns = NULL, *address = NULL;
	pid_t pid = 0;
	struct cli_parser parser;
	int c;

	cli_parser_init(&parser, &cli_dump);
	while ((c = cli_next(&parser, argc, argv)) > 0) {
		switch (c) {
		case 't': type = optarg; break;
		case 'p':
			if (parse_pid(optarg, &pid) < 0)
				return usage_error("dump", "invalid pid '%s'", optarg);
			break;
		case 'D': dir = optarg; break;
		case 'R': o.leave_running = true; break;
		case 'T': o.tcp_close = true; break;
		case 'E': o.tcp_established = true; break;
		case 'U': o.unix_close = true; break;
		case 'N': o.unix_reconnect = true; break;
		case 'i': id = optarg; break;
		case 'n': ns = optarg; break;
		case 'A': address = optarg; break;
		case 'S': o.stats = &stats; break;
		case 'Z':
			if (parse_compress(optarg, &o.compress_level) < 0)
				return usage_error("dump", "--compress takes a level from 1 to 19, not '%s'", optarg);
			break;
		case 'P': o.pre_dump = o.leave_running = true; break;
		case 'a': o.parent = optarg; break;
		}
	}
	if (c == CLI_STOP)
		return parser.status;
	if (optind < argc)
		return usage_error("dump", "unexpected argument '%s'", argv[optind]);
	/* A parent's page data is read at offsets (predump-chain.c), which a
	 * zstd stream does not give. */
	if (o.compress_level && (o.pre_dump || o.parent))
		return usage_error("dump", "--compress does not go with --pre-dump or --parent (a chain's page data is "
					   "read at offsets)");
	const struct rt_ops *ops = rt_find(type);
	if (!ops)
		return usage_error("dump", "--type %s is not supported (supported: %s)", type, rt_names());
	if (ops->target == RT_BY_PID && (id || ns || !pid))
		return usage_error("dump", "--type %s takes --pid PID (not --id or --namespace)", type);
	if (ops->target != RT_BY_PID && (!id || pid))
		return usage_error("dump", "--type %s takes --id ID (and no --pid)", type);
	if ((ops->target == RT_BY_ID_NS) != (ns != NULL))
		return usage_error("dump", "--namespace goes with --type containerd (and is required there)");
	if (address && ops->target != RT_BY_ID_NS)
		return usage_error("dump", "--address goes with --type containerd");
	struct rt_target t = { .pid = pid, .id = id, .ns = ns, .address = address };
	/* From here on these signals roll the dump back instead of killing us
	 * in the middle of it (util/interrupt.h). */
	interrupt_arm();
	return dump_to(ops, &t, dir, &o);
}

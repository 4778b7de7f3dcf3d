/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "runtime/runtime.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_INHERIT 32

static int parse_inherit(const char *arg, struct inherit_fd *ret)
{
	char a[32];
	const char *colon = strchr(arg, ':');
	if (!colon || (size_t)(colon - arg) >= sizeof(a))
		return -EINVAL;
	memcpy(a, arg, (size_t)(colon - arg));
	a[colon - arg] = 0;
	if (parse_int(a, &ret->target_fd) < 0 || parse_int(colon + 1, &ret->our_fd) < 0 || ret->target_fd < 0 ||
	    ret->our_fd < 0 || ret->our_fd >= 64)
		return -EINVAL;
	return 0;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* One JSON line, as Podman's --print-stats: durations in microseconds. */
static void print_restore_stats(const struct restore_stats *s, bool lazy)
{
	printf("{\"restore_time\": %.0f, \"resume_time\": %.0f, \"pages_restored\": %" PRIu64, ms(s->resume_ns) * 1e3,
	       ms(s->resume_ns) * 1e3, s->pages);
	if (lazy)
		printf(", \"lazy_bytes\": %" PRIu64 ", \"lazy_filled\": %" PRIu64 ", \"lazy_faults\": %" PRIu64
		       ", \"full_time\": %.0f, \"lazy_state\": \"%s\"", s->lazy_bytes, s->lazy_done, s->faults,
		       s->lazy_state == LAZY_DONE ? ms(s->full_ns) * 1e3 : -1.0,
		       s->lazy_state == LAZY_DONE ? "done" : s->lazy_state == LAZY_FAILED ? "failed" : "filling");
	printf("}\n");
}

static const struct cli_option options[] = {
	{ "checkpoint-dir", 'D', true, "DIR", "the image to restore (required); its type comes from it" },
	{ "type", 't', true, "TYPE", "refuse an image of another type (process, runc, docker, containerd)" },
	{ "namespace", 'n', false, "NS", "refuse a containerd image of another namespace" },
	{ "detach", 'd', false, NULL, "print the root's pid and return once the tree runs" },
	{ "pidns", 'P', false, NULL, "restore into a new pid namespace (when a pid is taken)" },
	{ "inherit-fd", 'I', false, "FD:OURFD", "fd FD that led outside the tree becomes our OURFD" },
	{ "id", 'i', false, "NEW", "name of the new container (default: the old name)" },
	{ "keep-ip", 'K', false, NULL, "the container keeps its IP address (Docker, user-defined network)" },
	{ "tcp-established", 'E', false, NULL, "restore the image's established TCP connections (network locked meanwhile)" },
	{ "address", 'A', false, "SOCKET", "containerd's socket, for an image of a containerd namespace other "
					   "than moby (default: as for dump)" },
	{ "lazy", 'l', false, NULL, "resume at once; anonymous memory is filled from the image on use and "
				    "in the background" },
	{ "wait-lazy", 'W', false, NULL, "with --lazy: return (or wait for the tree) only once every page is in" },
	{ "print-stats", 'S', false, NULL, "print the restore's statistics (JSON) on stdout" },
	CLI_COMMON_OPTIONS,
	{ 0 },
};

const struct cli_command cli_restore = {
	"restore", cmd_restore, "restore a process tree or a container from an image directory",
	"-D DIR [--detach] [--pidns] [--inherit-fd FD:OURFD] [OPTIONS]\n"
	"-D DIR [--type TYPE] [--namespace NS] [--address SOCKET] [--id NEW] [--keep-ip] [OPTIONS]    (a container image)",
	options,
};

int cmd_restore(int argc, char **argv)
{
	struct inherit_fd inh[MAX_INHERIT];
	struct rt_restore_req q = { .o = { .inherit = inh } };
	struct restore_opts *o = &q.o;
	struct rt_restored res;
	struct cli_parser parser;
	bool stats = false;
	int c;

	cli_parser_init(&parser, &cli_restore);
	while ((c = cli_next(&parser, argc, argv)) > 0) {
		switch (c) {
		case 'D': q.dir = optarg; break;
		case 'd': o->detach = true; break;
		case 'P': o->pidns = true; break;
		case 'E': o->tcp_established = true; break;
		case 'i': q.new_id = optarg; break;
		case 'K': q.keep_ip = true; break;
		case 't': q.type = optarg; break;
		case 'n': q.ns = optarg; break;
		case 'A': q.address = optarg; break;
		case 'l': o->lazy = true; break;
		case 'W': o->wait_lazy = true; break;
		case 'S': stats = true; break;
		case 'I':
			if (o->ninherit == MAX_INHERIT || parse_inherit(optarg, &inh[o->ninherit]) < 0)
				return usage_error("restore", "bad --inherit-fd '%s' (want TARGETFD:OURFD)", optarg);
			o->ninherit++;
			break;
		}
	}
	if (c == CLI_STOP)
		return parser.status;
	if (optind < argc)
		return usage_error("restore", "unexpected argument '%s'", argv[optind]);
	if (!q.dir)
		return usage_error("restore", "-D/--checkpoint-dir is required");
	const struct rt_ops *ops = q.type ? rt_find(q.type) : NULL;
	if (q.type && !ops)
		return usage_error("restore", "--type %s is not supported (supported: %s)", q.type, rt_names());
	if (q.ns && ops && ops->target != RT_BY_ID_NS)
		return usage_error("restore", "--namespace goes with --type containerd");
	if (q.address && ops && ops->target != RT_BY_ID_NS)
		return usage_error("restore", "--address goes with --type containerd");
	if (o->wait_lazy && !o->lazy)
		return usage_error("restore", "--wait-lazy goes with --lazy");
	if (rt_restore(&q, &res) < 0)
		return cli_failed("restore");
	if (!res.waited)
		printf("%d\n", res.pid);
	if (stats)
		print_restore_stats(&res.stats, o->lazy);
	fflush(stdout);
	return res.waited ? res.status : 0;
}

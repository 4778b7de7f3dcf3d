/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stasis check: the kernel's features, or (with a target) what a dump of
 * a process tree or container would refuse or lose, without touching it. */
#include <getopt.h>
#include <stdio.h>
#include <sys/utsname.h>

#include "cli/cli.h"
#include "runtime/runtime.h"
#include "util/util.h"

static const struct cli_option options[] = {
	{ "type", 't', true, "TYPE", "process (the default with --pid), runc, docker, containerd or podman" },
	{ "pid", 'p', true, "PID", "look at this process tree as a dump would (--type process)" },
	{ "id", 'i', true, "ID", "look at this container (the container types)" },
	{ "namespace", 'n', true, "NS", "containerd namespace of the container (Docker's: moby)" },
	{ "address", 'A', true, "SOCKET", "containerd's socket (default: $CONTAINERD_ADDRESS, dockerd's, "
					   "/run/containerd/containerd.sock)" },
	CLI_COMMON_OPTIONS,
	{ 0 },
};

const struct cli_command cli_check = {
	"check", cmd_check, "list the kernel features stasis needs, or what a dump of a target would refuse or lose",
	"[OPTIONS]\n"
	"--pid PID [OPTIONS]\n"
	"--type runc|docker|podman --id ID [OPTIONS]\n"
	"--type containerd --namespace NS --id ID [--address SOCKET] [OPTIONS]",
	options,
};

static int print_kernel_features(void)
{
	struct utsname u;
	size_t n;
	int missing = 0;
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

/* One line a finding, on stdout, flushed: it may come from a child. */
static void print_finding(bool refused, const char *msg)
{
	printf("%s: %s\n", refused ? "refused" : "lost", msg);
	fflush(stdout);
}

static int check_target(const struct rt_ops *ops, const struct rt_target *t, struct dump_opts *o)
{
	struct rt_check_result rep;
	if (rt_check(ops, t, o, print_finding, &rep) < 0)
		return cli_failed("check");
	const char *what = rep.refused ? "a dump would be refused" : rep.lost ? "a dump would lose what is listed"
									       : "a dump would be exact";
	printf("%u process%s, %u fds looked at, nothing frozen: %s\n", rep.procs, rep.procs == 1 ? "" : "es",
	       rep.fds, what);
	return rep.refused || rep.lost ? 1 : 0;
}

int cmd_check(int argc, char **argv)
{
	struct dump_opts o = { 0 };
	const char *type = NULL, *id = NULL, *ns = NULL, *address = NULL;
	pid_t pid = 0;
	struct cli_parser parser;
	int c;

	cli_parser_init(&parser, &cli_check);
	while ((c = cli_next(&parser, argc, argv)) > 0) {
		switch (c) {
		case 't': type = optarg; break;
		case 'p':
			if (parse_pid(optarg, &pid) < 0)
				return usage_error("check", "invalid pid '%s'", optarg);
			break;
		case 'i': id = optarg; break;
		case 'n': ns = optarg; break;
		case 'A': address = optarg; break;
		}
	}
	if (c == CLI_STOP)
		return parser.status;
	if (optind < argc)
		return usage_error("check", "unexpected argument '%s'", argv[optind]);
	if (!type && !pid && !id && !ns && !address)
		return print_kernel_features();
	const struct rt_ops *ops = rt_find(type ? type : "process");
	if (!ops)
		return usage_error("check", "--type %s is not supported (supported: %s)", type, rt_names());
	if (ops->target == RT_BY_PID && (id || ns || !pid))
		return usage_error("check", "--type %s takes --pid PID (not --id or --namespace)", ops->name);
	if (ops->target != RT_BY_PID && (!id || pid))
		return usage_error("check", "--type %s takes --id ID (and no --pid)", ops->name);
	if ((ops->target == RT_BY_ID_NS) != (ns != NULL))
		return usage_error("check", "--namespace goes with --type containerd (and is required there)");
	if (address && ops->target != RT_BY_ID_NS)
		return usage_error("check", "--address goes with --type containerd");
	struct rt_target t = { .pid = pid, .id = id, .ns = ns, .address = address };
	return check_target(ops, &t, &o);
}

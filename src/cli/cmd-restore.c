/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
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

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "checkpoint-dir", required_argument, NULL, 'D' }, { "detach", no_argument, NULL, 'd' },
		{ "inherit-fd", required_argument, NULL, 'I' }, { "pidns", no_argument, NULL, 'P' },
		{ "id", required_argument, NULL, 'i' },
		COMMON_LONG_OPTIONS, { 0 },
	};
	struct inherit_fd inh[MAX_INHERIT];
	struct rt_restore_req q = { .o = { .inherit = inh } };
	struct restore_opts *o = &q.o;
	struct rt_restored res;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "D:vh", opts, NULL)) >= 0) {
		int r = cli_common_option(c, optarg);
		if (r < 0)
			return 1;
		if (r)
			continue;
		switch (c) {
		case 'D': q.dir = optarg; break;
		case 'd': o->detach = true; break;
		case 'P': o->pidns = true; break;
		case 'i': q.new_id = optarg; break;
		case 'I':
			if (o->ninherit == MAX_INHERIT || parse_inherit(optarg, &inh[o->ninherit]) < 0)
				return usage_error("restore", "bad --inherit-fd '%s' (want TARGETFD:OURFD)", optarg);
			o->ninherit++;
			break;
		case 'h':
			printf("usage: stasis restore -D DIR [--detach] [--pidns] [--inherit-fd N:M] [--id NEW] [-v] [--log-file F]\n");
			return 0;
		default: return usage_error("restore", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("restore", "unexpected argument '%s'", argv[optind]);
	if (!q.dir)
		return usage_error("restore", "-D/--checkpoint-dir is required");
	if (rt_restore(&q, &res) < 0)
		return 1;
	if (res.waited)
		return res.status;
	printf("%d\n", res.pid);
	fflush(stdout);
	return 0;
}

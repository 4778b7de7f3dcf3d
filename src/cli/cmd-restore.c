/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/dump.h"
#include "engine/files.h"
#include "image/image.h"
#include "runtime/runtime.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_INHERIT 32

/* The stub sits next to the binary (build tree or install), unless
 * STASIS_STUB says otherwise. */
static int find_stub(char *buf, size_t size)
{
	const char *env = getenv("STASIS_STUB");
	if (env) {
		snprintf(buf, size, "%s", env);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (l < 0)
		return -errno;
	self[l] = 0;
	/* once: dirname() cuts self in place, so a second call would give
	 * the parent */
	const char *bindir = dirname(self);
	snprintf(buf, size, "%s/stasis-stub", bindir);
	if (access(buf, X_OK) == 0)
		return 0;
	snprintf(buf, size, "%s/../libexec/stasis/stasis-stub", bindir);
	return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

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

/* The image's type (process, runc, ...), from its manifest. */
static int image_type(const char *dir, char *buf, size_t size)
{
	struct image *img;
	const char *t;
	int r = image_open(dir, &img);
	if (r < 0)
		return r;
	r = json_get_str(image_manifest(img), "type", &t);
	if (r < 0)
		log_error("manifest.json in %s has no type", dir);
	else
		snprintf(buf, size, "%s", t);
	image_free(img);
	return r;
}

static int wait_restored(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return log_error_errno(-errno, "cannot wait for pid %d: %m", pid), 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static const struct cli_option options[] = {
	{ "checkpoint-dir", 'D', true, "DIR", "the image to restore (required); its type comes from it" },
	{ "detach", 'd', false, NULL, "print the root's pid and return once the tree runs" },
	{ "pidns", 'P', false, NULL, "restore into a new pid namespace (when a pid is taken)" },
	{ "inherit-fd", 'I', false, "FD:OURFD", "fd FD that led outside the tree becomes our OURFD" },
	{ "id", 'i', false, "NEW", "name of the new container (default: the old name)" },
	CLI_COMMON_OPTIONS,
	{ 0 },
};

const struct cli_command cli_restore = {
	"restore", cmd_restore, "restore a process tree or a container from an image directory",
	"-D DIR [--detach] [--pidns] [--inherit-fd FD:OURFD] [OPTIONS]\n"
	"-D DIR [--id NEW] [OPTIONS]    (a container image)",
	options,
};

int cmd_restore(int argc, char **argv)
{
	struct inherit_fd inh[MAX_INHERIT];
	struct restore_opts o = { .inherit = inh };
	char stub[PATH_MAX];
	const char *dir = NULL, *new_id = NULL;
	pid_t pid;
	struct cli_parser parser;
	int c;

	cli_parser_init(&parser, &cli_restore);
	while ((c = cli_next(&parser, argc, argv)) > 0) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'd': o.detach = true; break;
		case 'P': o.pidns = true; break;
		case 'i': new_id = optarg; break;
		case 'I':
			if (o.ninherit == MAX_INHERIT || parse_inherit(optarg, &inh[o.ninherit]) < 0)
				return usage_error("restore", "bad --inherit-fd '%s' (want TARGETFD:OURFD)", optarg);
			o.ninherit++;
			break;
		}
	}
	if (c == CLI_STOP)
		return parser.status;
	if (optind < argc)
		return usage_error("restore", "unexpected argument '%s'", argv[optind]);
	if (!dir)
		return usage_error("restore", "-D/--checkpoint-dir is required");
	if (find_stub(stub, sizeof(stub)) < 0) {
		log_error("cannot find the restore stub (stasis-stub next to the stasis binary, or set STASIS_STUB)");
		return 1;
	}
	o.stub_path = stub;
	char type[64];
	if (image_type(dir, type, sizeof(type)) < 0)
		return 1;
	if (!streq(type, "process")) {
		/* A container: it runs under its runtime once restored. */
		if (o.pidns || o.ninherit)
			return usage_error("restore", "--pidns and --inherit-fd are for process images");
		if (rt_restore(dir, type, new_id, &o, &pid) < 0)
			return 1;
		printf("%d\n", pid);
		return 0;
	}
	if (new_id)
		return usage_error("restore", "--id is for container images");
	pid_t init = 0;
	if ((o.pidns ? restore_pidns(dir, &o, &pid, &init) : restore_process(dir, &o, &pid)) < 0)
		return 1;
	if (o.detach) {
		printf("%d\n", pid);
		fflush(stdout);
		return 0;
	}
	/* In a pid namespace the root is not our child: its init is, and
	 * passes the root's status on. */
	return wait_restored(init ? init : pid);
}

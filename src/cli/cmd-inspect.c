/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "image/image.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static json_t *load(struct image *img, const char *fmt, json_int_t pid)
{
	char name[64];
	json_t *j = NULL;
	snprintf(name, sizeof(name), fmt, (int)pid);
	return image_get_json(img, name, &j) < 0 ? NULL : j;
}

static void print_vmas(const json_t *mm)
{
	const json_t *vmas = json_object_get(mm, "vmas"), *v;
	size_t i;
	printf("  memory map (%zu mappings, %" JSON_INTEGER_FORMAT " pages saved):\n", json_array_size(vmas),
	       json_integer_value(json_object_get(mm, "pages")));
	json_array_foreach(vmas, i, v) {
		json_int_t s = json_integer_value(json_object_get(v, "start"));
		json_int_t e = json_integer_value(json_object_get(v, "end"));
		json_int_t p = json_integer_value(json_object_get(v, "prot"));
		const char *path = json_string_value(json_object_get(v, "path"));
		printf("    %012llx-%012llx %c%c%c%c %8lld KiB %-11s %s\n", (long long)s, (long long)e, p & 1 ? 'r' : '-',
		       p & 2 ? 'w' : '-', p & 4 ? 'x' : '-', json_is_true(json_object_get(v, "shared")) ? 's' : 'p',
		       (long long)(e - s) / 1024, json_string_value(json_object_get(v, "kind")), path ? path : "");
	}
}

static void print_fds(const json_t *fds)
{
	const json_t *f;
	size_t i;
	printf("  file descriptors:\n");
	json_array_foreach(fds, i, f)
		printf("    %4lld %-8s pos %-10lld flags 0%llo %s%s%s\n", (long long)json_integer_value(json_object_get(f, "fd")),
		       json_string_value(json_object_get(f, "kind")), (long long)json_integer_value(json_object_get(f, "pos")),
		       (long long)json_integer_value(json_object_get(f, "flags")),
		       json_string_value(json_object_get(f, "path")), json_object_get(f, "obj") ? " [content saved]" : "",
		       json_is_true(json_object_get(f, "shared")) ? " [shared with other processes]" : "");
}

static const struct cli_option options[] = {
	{ "json", 'j', false, NULL, "print it all as one JSON document" },
	CLI_COMMON_OPTIONS,
	{ 0 },
};

const struct cli_command cli_inspect = {
	"inspect", cmd_inspect, "show what an image holds: tree, memory maps, fds",
	"DIR [--json] [OPTIONS]",
	options,
};

int cmd_inspect(int argc, char **argv)
{
	bool as_json = false;
	struct cli_parser parser;
	int c;

	cli_parser_init(&parser, &cli_inspect);
	while ((c = cli_next(&parser, argc, argv)) > 0)
		if (c == 'j')
			as_json = true;
	if (c == CLI_STOP)
		return parser.status;
	if (optind + 1 != argc)
		return usage_error("inspect", "expected one checkpoint directory");
	struct image *img;
	if (image_open(argv[optind], &img) < 0)
		return 1;
	json_t *man = image_manifest(img), *tree = json_object_get(man, "tree"), *p;
	_cleanup_json_ json_t *out = json_pack("{s:O,s:[]}", "manifest", man, "processes");
	size_t i;
	int ret = 0;
	if (!as_json)
		printf("image %s: type %s, made %s on kernel %s by stasis %s\n", argv[optind],
		       json_string_value(json_object_get(man, "type")), json_string_value(json_object_get(man, "created")),
		       json_string_value(json_object_get(man, "kernel")),
		       json_string_value(json_object_get(man, "stasis_version")));
	if (!as_json) {
		printf("process tree (%zu):\n", json_array_size(tree));
		json_array_foreach(tree, i, p)
			printf("  pid %-7lld parent %-7lld group %-7lld session %-7lld %s%s\n",
			       (long long)json_integer_value(json_object_get(p, "pid")),
			       (long long)json_integer_value(json_object_get(p, "ppid")),
			       (long long)json_integer_value(json_object_get(p, "pgid")),
			       (long long)json_integer_value(json_object_get(p, "sid")),
			       json_string_value(json_object_get(p, "comm")),
			       json_is_true(json_object_get(p, "zombie")) ? " (zombie)" : "");
	}
	json_array_foreach(tree, i, p) {
		json_int_t pid = json_integer_value(json_object_get(p, "pid"));
		if (json_is_true(json_object_get(p, "zombie")))
			continue;
		json_t *core = load(img, "core-%d.json", pid), *mm = load(img, "mm-%d.json", pid),
		       *fds = load(img, "fds-%d.json", pid);
		if (!core || !mm || !fds) {
			json_decref(core), json_decref(mm), json_decref(fds);
			ret = 1;
			break;
		}
		if (as_json) {
			json_t *threads = json_object_get(p, "threads");
			json_array_append_new(json_object_get(out, "processes"),
					      json_pack("{s:I,s:s,s:O,s:O,s:O}", "pid", pid, "comm",
							json_string_value(json_object_get(core, "comm")), "threads", threads,
							"mm", mm, "fds", fds));
		} else {
			printf("process %lld (%s), parent %lld, %zu thread(s):", (long long)pid,
			       json_string_value(json_object_get(core, "comm")),
			       (long long)json_integer_value(json_object_get(p, "ppid")),
			       json_array_size(json_object_get(p, "threads")));
			const json_t *t;
			size_t k;
			json_array_foreach(json_object_get(p, "threads"), k, t)
				printf(" %lld", (long long)json_integer_value(t));
			printf("\n  cwd %s, exe %s\n", json_string_value(json_object_get(core, "cwd")),
			       json_string_value(json_object_get(mm, "exe")));
			print_vmas(mm);
			print_fds(fds);
		}
		json_decref(core), json_decref(mm), json_decref(fds);
	}
	if (as_json && !ret)
		json_dumpf(out, stdout, JSON_INDENT(2)), putchar('\n');
	image_free(img);
	return ret;
}

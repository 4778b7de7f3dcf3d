/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Podman (rootful), through its CLI: `podman` is what its users run, it
 * finds its own storage and state (the defaults, or CONTAINERS_CONF and
 * CONTAINERS_STORAGE_CONF), and rootful Podman has no daemon whose API we
 * could call without starting one. The dump keeps `podman inspect`'s view
 * of the container and the changes of its writable layer (the overlay
 * upper directory) and tmpfs mounts, as Docker's does. The restore makes
 * the new container with the command that made the original
 * (Config.CreateCommand, `podman run` turned into `podman create`), so
 * it gets the same options: network, ulimits, limits, mounts, tmpfs, env,
 * restart policy, and the same entrypoint, user, capabilities and
 * security options (DESIGN.md §5a). Only --pull is ours (never: the image
 * must be here). The stub gets in once, as for Docker (exec-stub.c): at
 * the path the runtime will execute, in the new container's writable
 * layer, given back as soon as the stub runs, so `podman restart` runs
 * the original application. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* The flags of `podman run` (and of podman itself) that take no value
 * (podman 4.3's help); every other flag takes one. */
static const char *const run_bools[] = {
	"detach", "disable-content-trust", "env-host", "help", "http-proxy", "init", "interactive", "no-healthcheck",
	"no-hosts", "oom-kill-disable", "passwd", "privileged", "publish-all", "quiet", "read-only",
	"read-only-tmpfs", "replace", "rm", "rmi", "rootfs", "sig-proxy", "tls-verify", "tty", "unsetenv-all",
};
static const char *const global_bools[] = { "help", "noout", "remote", "syslog", "version" };
#define RUN_SHORT_BOOLS "diPqt"
#define GLOBAL_SHORT_BOOLS "rv"

/* run's options that `podman create` lacks, or that the restore sets. */
static const char *const dropped[] = { "name", "detach", "detach-keys", "passwd", "preserve-fds", "rmi",
				       "sig-proxy", "replace", "pull" };

static bool in(const char *const *set, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(set[i]) == len && strncmp(set[i], s, len) == 0)
			return true;
	return false;
}

static const char *arg(const json_t *cmd, size_t i)
{
	return json_string_value(json_array_get(cmd, i)) ?: "";
}

/* The index of `run` or `create` in the command, past podman's own
 * flags; 0 when there is none. */
static size_t subcommand(const json_t *cmd)
{
	size_t n = json_array_size(cmd);
	for (size_t i = 1; i < n; i++) {
		const char *s = arg(cmd, i);
		if (streq(s, "run") || streq(s, "create"))
			return i;
		if (streq(s, "container"))
			continue;
		if (s[0] != '-' || !s[1])
			return 0;
		bool flag_long = s[1] == '-', has_value = strchr(s, '=') || (!flag_long && s[2]);
		if (!has_value && !(flag_long ? in(global_bools, ARRAY_SIZE(global_bools), s + 2, strlen(s + 2))
					      : strchr(GLOBAL_SHORT_BOOLS, s[1]) != NULL))
			i++;
	}
	return 0;
}

/* A long option at cmd[*i] copied to out unless dropped, with its value. */
static int long_option(const json_t *cmd, size_t *i, json_t *out)
{
	const char *s = arg(cmd, *i);
	if (strlen(s) < 3)
		return -EBADMSG;
	s += 2;
	const char *eq = strchr(s, '=');
	size_t len = eq ? (size_t)(eq - s) : strlen(s);
	bool takes_next = !eq && !in(run_bools, ARRAY_SIZE(run_bools), s, len);
	bool keep = !in(dropped, ARRAY_SIZE(dropped), s, len);
	if (takes_next && *i + 1 >= json_array_size(cmd))
		return -EBADMSG;
	if (keep && json_array_append(out, json_array_get(cmd, *i)) < 0)
		return -ENOMEM;
	if (takes_next && keep && json_array_append(out, json_array_get(cmd, *i + 1)) < 0)
		return -ENOMEM;
	*i += takes_next;
	return 0;
}

/* A group of short options ("-dit", "-e", "-eK=V") less -d, with the
 * value of its last option when that takes one. */
static int short_options(const json_t *cmd, size_t *i, json_t *out)
{
	const char *s = arg(cmd, *i);
	char group[256];
	size_t n = 0;
	bool takes_next = false;
	for (const char *p = s + 1; *p && n < sizeof(group) - 1; p++) {
		if (!strchr(RUN_SHORT_BOOLS, *p)) { /* the rest is its value, or the next argument is */
			takes_next = !p[1];
			n += (size_t)snprintf(group + n, sizeof(group) - n, "%s", p);
			break;
		}
		if (*p != 'd')
			group[n++] = *p;
	}
	group[n] = 0;
	if (takes_next && *i + 1 >= json_array_size(cmd))
		return -EBADMSG;
	if (n && json_array_append_new(out, json_sprintf("-%s", group)) < 0)
		return -ENOMEM;
	if (takes_next && json_array_append(out, json_array_get(cmd, *i + 1)) < 0)
		return -ENOMEM;
	*i += takes_next;
	return 0;
}

/* The user's command after the image is the container's Cmd, or there
 * is none (the image's): else we misread the options. */
static bool tail_is_cmd(const json_t *cmd, size_t from, const json_t *config_cmd)
{
	size_t n = json_array_size(cmd) - from;
	if (n == 0)
		return true;
	if (n != json_array_size(config_cmd))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!streq(arg(cmd, from + i), json_string_value(json_array_get(config_cmd, i)) ?: ""))
			return false;
	return true;
}

static int push(json_t *out, const char *const *args, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!args[i] || json_array_append_new(out, json_string(args[i])) < 0)
			return -ENOMEM;
	return 0;
}

/* What the restore adds: no pull, the image must be here. Everything else
 * (entrypoint, user, capabilities, seccomp) stays the original's. */
static int append_overrides(json_t *out)
{
	const char *const o[] = { "--pull", "never" };
	return push(out, o, ARRAY_SIZE(o));
}

/* `podman create` with the options of the command that made the
 * container (CreateCommand): -EBADMSG when it cannot be read. */
static int create_argv(const json_t *insp, const char *name, json_t **ret)
{
	const json_t *config = json_object_get(insp, "Config"), *cmd = json_object_get(config, "CreateCommand");
	const char *runtime = json_string_value(json_object_get(insp, "OCIRuntime"));
	size_t i = subcommand(cmd), n = json_array_size(cmd);
	_cleanup_json_ json_t *out = json_pack("[s]", "podman");
	int r = 0;
	if (!i)
		return -EBADMSG;
	const char *const rt[] = { "--runtime", runtime }, *const create[] = { "create", "--name", name };
	if (!out || (runtime && *runtime && push(out, rt, 2) < 0) || push(out, create, 3) < 0)
		return -ENOMEM;
	for (i++; r >= 0 && i < n && arg(cmd, i)[0] == '-' && arg(cmd, i)[1]; i++)
		r = arg(cmd, i)[1] == '-' ? long_option(cmd, &i, out) : short_options(cmd, &i, out);
	if (r < 0)
		return r;
	if (i >= n || !tail_is_cmd(cmd, i + 1, json_object_get(config, "Cmd")))
		return -EBADMSG;
	if ((r = append_overrides(out)) < 0)
		return r;
	for (; i < n; i++)
		if (json_array_append(out, json_array_get(cmd, i)) < 0)
			return -ENOMEM;
	*ret = TAKE_PTR(out);
	return 0;
}

/* Runs podman with the arguments of a JSON array; its stdout in *ret_out. */
static int podman_json(const json_t *args, char **ret_out)
{
	size_t n = json_array_size(args);
	_cleanup_free_ char **argv = calloc(n + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		argv[i] = (char *)json_string_value(json_array_get(args, i));
	return rt_run(argv, ret_out);
}

static int podman(char **ret_out, const char *a, const char *b, const char *c, const char *d)
{
	char *const argv[] = { (char *)"podman", (char *)a, (char *)b, (char *)c, (char *)d, NULL };
	return rt_run(argv, ret_out);
}

/* The full id of the container that id names (a name, an id or an id's
 * prefix), from `podman ps -a`: a missing one is one line of ours. */
static int find(const char *id, char ret[static 65])
{
	_cleanup_free_ char *out = NULL;
	int r = podman(&out, "ps", "-a", "--no-trunc", "--format={{.ID}} {{.Names}}");
	if (r == -ENOENT)
		return log_error_errno(r, "podman is not installed");
	if (r < 0)
		return log_error_errno(r, "cannot list Podman's containers (podman ps -a)");
	int found = 0;
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char full[65], name[256];
		if (sscanf(line, "%64s %255s", full, name) != 2)
			continue;
		if (streq(name, id) || streq(full, id))
			return snprintf(ret, 65, "%s", full), 0;
		if (strncmp(full, id, strlen(id)) == 0 && found++ == 0)
			snprintf(ret, 65, "%s", full);
	}
	if (found == 1 && strlen(id) >= 3)
		return 0;
	return log_error_errno(found ? -EINVAL : -ENOENT, "%s Podman container '%s'",
			       found ? "more than one" : "no", id);
}

static int inspect(const char *full, json_t **ret)
{
	_cleanup_free_ char *out = NULL;
	int r = podman(&out, "container", "inspect", full, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot inspect Podman container %.12s", full);
	json_t *a = json_loads(out, 0, NULL), *j = json_incref(json_array_get(a, 0));
	json_decref(a);
	if (!json_is_object(j)) {
		json_decref(j);
		return log_error_errno(-EBADMSG, "podman inspect %.12s: not a container description", full);
	}
	*ret = j;
	return 0;
}

static const char *upper_dir(const json_t *insp)
{
	const json_t *drv = json_object_get(insp, "GraphDriver");
	if (!streq(json_string_value(json_object_get(drv, "Name")) ?: "", "overlay"))
		return NULL;
	return json_string_value(json_object_get(json_object_get(drv, "Data"), "UpperDir"));
}

/* Its tmpfs mounts: --tmpfs ones, and --mount type=tmpfs ones. */
static json_t *tmpfs_mounts(const json_t *insp)
{
	json_t *a = json_array(), *m, *v;
	const char *k;
	size_t i;
	json_object_foreach(json_object_get(json_object_get(insp, "HostConfig"), "Tmpfs"), k, v)
		json_array_append_new(a, json_string(k));
	json_array_foreach(json_object_get(insp, "Mounts"), i, m)
		if (streq(json_string_value(json_object_get(m, "Type")) ?: "", "tmpfs"))
			json_array_append(a, json_object_get(m, "Destination"));
	return a;
}

/* The container can be made again from what is saved: refused at the
 * dump, not found out at the restore. */
static int check_recreatable(const json_t *insp, const char *id)
{
	_cleanup_json_ json_t *argv = NULL;
	if (!upper_dir(insp))
		return log_error_errno(-EOPNOTSUPP, "Podman container '%s' is not on the overlay storage driver", id);
	/* Its first process is Podman's init, bind-mounted where the stub
	 * would have to be. */
	if (json_is_true(json_object_get(json_object_get(insp, "HostConfig"), "Init")))
		return log_error_errno(-EOPNOTSUPP, "Podman container '%s' runs with --init, which cannot be "
				       "restored yet", id);
	int r = create_argv(insp, "check", &argv);
	if (r == -EBADMSG)
		return log_error_errno(r, "Podman container '%s' was not made by `podman run` or `podman create` "
				       "as stasis can read them (Config.CreateCommand); it cannot be restored", id);
	return r;
}

static int podman_locate(const struct rt_target *t, struct rt_found *ret)
{
	char full[65];
	json_t *insp;
	int r = find(t->id, full);
	if (r < 0 || (r = inspect(full, &insp)) < 0)
		return r;
	const json_t *state = json_object_get(insp, "State");
	int pid = (int)json_integer_value(json_object_get(state, "Pid"));
	const char *name = json_string_value(json_object_get(insp, "Name"));
	const char *image = json_string_value(json_object_get(insp, "ImageName"));
	if (!json_is_true(json_object_get(state, "Running")) || pid <= 0)
		r = log_error_errno(-ESRCH, "Podman container '%s' is not running", t->id);
	else if ((r = check_recreatable(insp, t->id)) >= 0)
		ret->meta = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "runtime", "podman", "id", full, "name", name ?: "",
				      "image", image ?: "", "upper", upper_dir(insp), "tmpfs", tmpfs_mounts(insp));
	if (r >= 0 && !ret->meta)
		r = -ENOMEM;
	if (r < 0) {
		json_decref(insp);
		return r;
	}
	ret->config = insp;
	ret->pid = pid;
	return 0;
}

/* The new container, made and not started: its id in sb. */
static int create(const json_t *insp, const char *name, struct rt_sandbox *sb)
{
	_cleanup_json_ json_t *argv = NULL;
	_cleanup_free_ char *out = NULL;
	int r = create_argv(insp, name, &argv);
	if (r < 0)
		return log_error_errno(r, "cannot make the podman create command of '%s' from the image", name);
	if ((r = podman_json(argv, &out)) < 0)
		return log_error_errno(r, "podman could not create container '%s'", name);
	size_t l = strcspn(out, "\n");
	if (l == 0 || l >= sizeof(sb->id))
		return log_error_errno(-EBADMSG, "podman create %s printed no container id", name);
	snprintf(sb->id, sizeof(sb->id), "%.*s", (int)l, out);
	sb->created = true;
	return 0;
}

/* Started: its first process's host pid in sb. */
static int start(struct rt_sandbox *sb)
{
	_cleanup_json_ json_t *now = NULL;
	int r = podman(NULL, "start", sb->id, NULL, NULL);
	if (r < 0)
		return log_error_errno(r, "podman could not start the new container %.12s", sb->id);
	if ((r = inspect(sb->id, &now)) < 0)
		return r;
	sb->pid = (pid_t)json_integer_value(json_object_get(json_object_get(now, "State"), "Pid"));
	if (sb->pid <= 0)
		return log_error_errno(-ESRCH, "the new Podman container %.12s did not start", sb->id);
	return 0;
}

/* The new container runs the stub once, from its writable layer
 * (exec-stub.c): its configuration stays the original's, and so does
 * every later start of it. */
static int podman_create_sandbox(struct image *img, const json_t *meta, const json_t *insp, const char *new_id,
				 const char *stub_path, int stub_tfd, struct rt_sandbox *sb)
{
	_cleanup_json_ json_t *now = NULL;
	struct rt_exec_stub es;
	(void)stub_tfd; /* `podman start` hands no fds over: the stub connects to us */
	int r = create(insp, new_id, sb);
	if (r < 0 || (r = inspect(sb->id, &now)) < 0)
		return r;
	const char *upper = upper_dir(now);
	struct rt_exec_args a = rt_ovl_exec_args(now);
	if (!upper || !a.arg0)
		return log_error_errno(-EOPNOTSUPP, "the new Podman container %.12s has no overlay upper directory "
				       "or command", sb->id);
	/* The saved layer changes go into the new upper directory as they
	 * were (whiteouts and opaque directories too). */
	if ((r = rt_archive_apply(img, IMAGE_ROOTFS_DIFF, upper)) < 0 ||
	    (r = rt_exec_stub_place(&a, upper, rt_ovl_lower_dirs(now), stub_path, &es)) < 0 || (r = start(sb)) < 0 ||
	    (r = rt_exec_stub_unplace(&es, upper, sb->pid)) < 0)
		return r;
	return rt_ovl_fill_tmpfs(img, meta, sb->pid);
}

static void podman_finish(struct rt_sandbox *sb, bool ok)
{
	if (ok || !sb->created)
		return;
	if (podman(NULL, "rm", "--force", "--time=0", sb->id) < 0)
		log_warn("could not remove the half-made Podman container %.12s; remove it with podman rm -f", sb->id);
}

const struct rt_ops rt_podman = {
	.name = "podman",
	.target = RT_BY_ID,
	.locate = podman_locate,
	.in_container = true,
	.before_commit = rt_ovl_save,
	.restore = rt_restore_sandbox,
	.create_sandbox = podman_create_sandbox,
	.finish = podman_finish,
	.uses_fd = false,
};

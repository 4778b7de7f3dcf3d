/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* runc: found with `runc state`, its OCI config.json read from the bundle.
 * The restore makes a new bundle with the same config, whose process is
 * the stub (placed in the container's root filesystem for the time of the
 * restore), and starts it with `runc run -d --preserve-fds 1`: runc builds
 * namespaces, mounts, cgroups and network exactly as for the original.
 * The root filesystem is the original's (runc keeps it in place): a
 * restore on this host, not yet on another. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define BUNDLES "/run/stasis/runc"

/* `runc state ID` succeeds: quietly, as "does not exist" is the hope. */
static bool exists(const char *id)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0)
			dup2(null, 0), dup2(null, 1), dup2(null, 2);
		execlp("runc", "runc", "state", id, (char *)NULL);
		_exit(127);
	}
	return pid > 0 && rt_wait(pid) == 0;
}

static int state(const char *id, json_t **ret)
{
	char *const argv[] = { (char *)"runc", (char *)"state", (char *)id, NULL };
	_cleanup_free_ char *out = NULL;
	/* Asked quietly first: a container that is not there is this
	 * message, not runc's own line before it (one failure, one line). */
	if (!exists(id))
		return log_error_errno(-ESRCH, "no runc container '%s' (runc state %s fails; is runc installed?)", id, id);
	int r = rt_run(argv, &out);
	if (r == -ENOENT)
		return log_error_errno(r, "runc is not installed");
	if (r < 0)
		return log_error_errno(r, "no runc container '%s'", id);
	json_t *j = json_loads(out, 0, NULL);
	if (!j)
		return log_error_errno(-EBADMSG, "runc state %s: not JSON", id);
	*ret = j;
	return 0;
}

static int runc_locate(const struct rt_target *t, struct rt_found *ret)
{
	_cleanup_json_ json_t *st = NULL;
	const char *id = t->id;
	const char *status, *bundle, *rootfs;
	int pid, r = state(id, &st);
	if (r < 0)
		return r;
	if (json_get_str(st, "status", &status) < 0 || json_get_str(st, "bundle", &bundle) < 0 ||
	    json_get_str(st, "rootfs", &rootfs) < 0 || json_get_int(st, "pid", &pid) < 0)
		return log_error_errno(-EBADMSG, "runc state %s: missing fields", id);
	if (!streq(status, "running"))
		return log_error_errno(-ESRCH, "runc container '%s' is %s, not running", id, status);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	json_t *config = json_load_file(path, 0, NULL);
	if (!config)
		return log_error_errno(-ENOENT, "cannot read %s of runc container '%s'", path, id);
	ret->meta = json_pack("{s:s,s:s,s:s,s:s}", "runtime", "runc", "id", id, "bundle", bundle, "rootfs", rootfs);
	ret->config = config;
	ret->pid = pid;
	if (!ret->meta) {
		json_decref(config);
		return -ENOMEM;
	}
	return 0;
}

/* The original's config, but its process is the stub, run as root with
 * every capability we have and no seccomp filter: the restore needs them (clone3
 * with set_tid, PR_SET_MM_MAP's exe, credentials), and puts back exactly
 * the original's credentials, capabilities, no_new_privs and filters. */
static json_t *stub_config(const json_t *config, const char *rootfs, const char *stub_name)
{
	json_t *c = json_deep_copy(config), *all = rt_our_caps("CAP_", 63);
	json_t *proc = json_object_get(c, "process"), *root = json_object_get(c, "root");
	if (!c || !all || !json_is_object(proc) || !json_is_object(root)) {
		json_decref(c), json_decref(all);
		return NULL;
	}
	int r = json_object_set_new(proc, "args", json_pack("[s]", stub_name)) |
		json_object_set_new(proc, "terminal", json_false()) |
		json_object_set_new(proc, "cwd", json_string("/")) |
		json_object_set_new(proc, "user", json_pack("{s:i,s:i}", "uid", 0, "gid", 0)) |
		json_object_set_new(proc, "noNewPrivileges", json_false()) |
		json_object_set_new(proc, "capabilities",
				    json_pack("{s:O,s:O,s:O,s:O,s:O}", "bounding", all, "effective", all, "inheritable",
					      all, "permitted", all, "ambient", all)) |
		json_object_set_new(root, "path", json_string(rootfs));
	json_decref(all);
	json_object_del(json_object_get(c, "linux"), "seccomp");
	if (r) {
		json_decref(c);
		return NULL;
	}
	return c;
}

static int runc_create_sandbox(struct image *img, const json_t *meta, const json_t *config, const char *new_id,
			       const char *stub_path, int stub_tfd, struct rt_sandbox *sb)
{
	const char *rootfs;
	char stub_name[64], path[PATH_MAX + 32];
	struct stat st;
	int r;
	(void)img; /* runc keeps the root filesystem in place: nothing to apply */

	if (json_get_str(meta, "rootfs", &rootfs) < 0)
		return log_error_errno(-EBADMSG, "the image lacks the container's root filesystem");
	if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
		return log_error_errno(-ENOENT, "the container's root filesystem %s is not on this host", rootfs);
	if (exists(new_id))
		return log_error_errno(-EEXIST, "runc container '%s' exists; delete it or restore with --id NEW", new_id);
	snprintf(sb->id, sizeof(sb->id), "%s", new_id);
	snprintf(stub_name, sizeof(stub_name), "/.stasis-stub-%d", getpid());
	snprintf(sb->stub_file, sizeof(sb->stub_file), "%s%s", rootfs, stub_name);
	snprintf(sb->stub_in, sizeof(sb->stub_in), "%s", stub_name);
	if ((r = rt_copy_file(stub_path, sb->stub_file, 0755)) < 0)
		return log_error_errno(r, "cannot place the restore stub in %s: %m", rootfs);
	snprintf(sb->bundle, sizeof(sb->bundle), "%s/%s", BUNDLES, new_id);
	(void)!mkdir("/run/stasis", 0700);
	(void)!mkdir(BUNDLES, 0700);
	/* A bundle left by an earlier restore under this id is made anew. */
	if (mkdir(sb->bundle, 0700) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "cannot make bundle %s: %m", sb->bundle);
	_cleanup_json_ json_t *c = stub_config(config, rootfs, stub_name);
	snprintf(path, sizeof(path), "%s/config.json", sb->bundle);
	if (!c || json_dump_file(c, path, 0) < 0)
		return log_error_errno(-EIO, "cannot write %s", path);

	/* The stub's stdio is ours, as for any `runc run -d`; its fd 3 is
	 * the transport. */
	pid_t pid = fork();
	if (pid == 0) {
		if (dup2(stub_tfd, 3) < 0)
			_exit(127);
		execlp("runc", "runc", "run", "-d", "--preserve-fds", "1", "--bundle", sb->bundle, new_id, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || rt_wait(pid) < 0)
		return log_error_errno(-EIO, "runc could not create container '%s' (see its message above)", new_id);
	sb->created = true;
	_cleanup_json_ json_t *now = NULL;
	int spid;
	if ((r = state(new_id, &now)) < 0 || (r = json_get_int(now, "pid", &spid)) < 0)
		return r < 0 ? r : -EBADMSG;
	sb->pid = spid;
	return 0;
}

static void runc_finish(struct rt_sandbox *sb, bool ok)
{
	if (sb->stub_file[0])
		unlink(sb->stub_file);
	if (ok || !sb->bundle[0])
		return;
	char *const argv[] = { (char *)"runc", (char *)"delete", (char *)"--force", sb->id, NULL };
	if (sb->created)
		(void)rt_run(argv, NULL);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/config.json", sb->bundle);
	unlink(path);
	rmdir(sb->bundle);
}

const struct rt_ops rt_runc = {
	.name = "runc",
	.target = RT_BY_ID,
	.locate = runc_locate,
	.in_container = true,
	.restore = rt_restore_sandbox,
	.create_sandbox = runc_create_sandbox,
	.finish = runc_finish,
	.uses_fd = true,
};

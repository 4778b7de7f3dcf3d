/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* containerd's own containers (a namespace other than Docker's "moby"),
 * through ctr. The dump keeps `ctr containers info` (image, snapshotter,
 * snapshot key, runtime and OCI spec) and the changes of the writable
 * snapshot: its overlayfs upper directory, from `ctr snapshots mounts`.
 * The restore asks containerd for a new container of the same image and
 * snapshotter (`ctr containers create`), whose process is the stub, puts
 * the saved changes and the stub into the new snapshot's upper directory,
 * and starts its task (`ctr tasks start -d --null-io`): containerd and its
 * shim make namespaces, mounts and cgroup as for any container of theirs.
 *
 * The new container's spec is ctr's default for the image plus what the
 * stub needs (every capability we hold, no_new_privs off, no seccomp
 * filter, as runc.c's), with the original's runtime, host network and
 * memory limit: not yet the original spec as it was, as Docker's restore
 * keeps. ctr cannot hand the task an fd, so the stub connects to us. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"
#include "runtime/containerd.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define CTR_MAX_ARGS 160

/* ctr --address A --namespace NS args... (n of them). */
static int ctr(const char *address, const char *ns, const char *const *args, size_t n, char **out)
{
	const char *argv[CTR_MAX_ARGS] = { "ctr", "--address", address, "--namespace", ns };
	size_t k = 5;
	if (n > CTR_MAX_ARGS - k - 1)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	return rt_run((char *const *)argv, out);
}

static int container_info(const char *address, const char *ns, const char *id, json_t **ret)
{
	const char *args[] = { "containers", "info", id };
	_cleanup_free_ char *out = NULL;
	int r = ctr(address, ns, args, ARRAY_SIZE(args), &out);
	if (r < 0)
		return r;
	json_t *j = json_loads(out, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	*ret = j;
	return 0;
}

/* The upperdir= of the overlay mount that `ctr snapshots mounts` prints
 * ("mount -t overlay overlay TARGET -o index=off,workdir=W,upperdir=U,..."). */
static int snapshot_upper(const char *address, const char *ns, const char *snapshotter, const char *key, char *buf,
			  size_t size)
{
	const char *args[] = { "snapshots", "--snapshotter", snapshotter, "mounts", "/", key };
	_cleanup_free_ char *out = NULL;
	int r = ctr(address, ns, args, ARRAY_SIZE(args), &out);
	if (r < 0)
		return r;
	const char *u = strstr(out, "upperdir=");
	if (!u)
		return -EOPNOTSUPP;
	u += strlen("upperdir=");
	size_t len = strcspn(u, ", \n");
	if (len == 0 || len >= size || u[0] != '/')
		return -EBADMSG;
	memcpy(buf, u, len);
	buf[len] = 0;
	return 0;
}

static int describe(const char *ns, const char *id, const json_t *info, const char *upper, json_t **ret)
{
	const char *image, *snapshotter, *key;
	if (json_get_str(info, "Image", &image) < 0 || json_get_str(info, "Snapshotter", &snapshotter) < 0 ||
	    json_get_str(info, "SnapshotKey", &key) < 0 || !json_is_object(json_object_get(info, "Spec")))
		return log_error_errno(-EBADMSG, "ctr containers info %s: no image, snapshot or spec", id);
	/* No tmpfs list: the default spec's /dev and /dev/shm are the
	 * runtime's, made anew. */
	*ret = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[]}", "runtime", "containerd", "namespace", ns, "id", id,
			 "image", image, "snapshotter", snapshotter, "snapshot", key, "upper", upper, "tmpfs");
	return *ret ? 0 : -ENOMEM;
}

int ctrd_native_locate(const char *address, const char *ns, const char *id, pid_t pid, struct rt_found *ret)
{
	_cleanup_json_ json_t *info = NULL;
	const char *snapshotter, *key;
	char upper[PATH_MAX];
	int r = container_info(address, ns, id, &info);
	if (r < 0)
		return log_error_errno(r, "cannot describe containerd container '%s' in namespace '%s'", id, ns);
	if (json_get_str(info, "Snapshotter", &snapshotter) < 0 || json_get_str(info, "SnapshotKey", &key) < 0)
		return log_error_errno(-EBADMSG, "ctr containers info %s: no snapshotter or snapshot key", id);
	if (!streq(snapshotter, "overlayfs"))
		return log_error_errno(-EOPNOTSUPP, "containerd container '%s' uses snapshotter '%s'; only overlayfs "
				       "can be checkpointed", id, snapshotter);
	if ((r = snapshot_upper(address, ns, snapshotter, key, upper, sizeof(upper))) < 0)
		return log_error_errno(r, "cannot find the writable directory of snapshot '%s' of container '%s'",
				       key, id);
	if ((r = describe(ns, id, info, upper, &ret->meta)) < 0)
		return r;
	ret->config = json_incref(info);
	ret->pid = pid;
	return 0;
}

/* What the new container keeps of the original's spec. */
struct kept {
	const char *runtime;
	bool host_net;
	char memory[32]; /* "" for no limit */
};

static struct kept kept_of(const json_t *info)
{
	const json_t *linux_ = json_object_get(json_object_get(info, "Spec"), "linux"), *n;
	struct kept k = { json_string_value(json_object_get(json_object_get(info, "Runtime"), "Name")), true, "" };
	size_t i;
	json_array_foreach(json_object_get(linux_, "namespaces"), i, n)
		if (streq(json_string_value(json_object_get(n, "type")) ?: "", "network"))
			k.host_net = false;
	json_t *mem = json_object_get(json_object_get(json_object_get(linux_, "resources"), "memory"), "limit");
	if (json_integer_value(mem) > 0)
		snprintf(k.memory, sizeof(k.memory), "%lld", (long long)json_integer_value(mem));
	return k;
}

/* ctr containers create, the stub (stub_in) as its process. */
static int create(const char *address, const char *ns, const json_t *meta, const json_t *info, const char *new_id,
		  const char *stub_in)
{
	_cleanup_json_ json_t *caps = rt_our_caps("CAP_", 63);
	struct kept k = kept_of(info);
	const char *args[CTR_MAX_ARGS];
	size_t n = 0, i;
	json_t *c;
	if (!caps)
		return -ENOMEM;
	args[n++] = "containers", args[n++] = "create", args[n++] = "--allow-new-privs";
	args[n++] = "--snapshotter", args[n++] = json_string_value(json_object_get(meta, "snapshotter"));
	if (k.runtime)
		args[n++] = "--runtime", args[n++] = k.runtime;
	if (k.host_net)
		args[n++] = "--net-host";
	if (k.memory[0])
		args[n++] = "--memory-limit", args[n++] = k.memory;
	json_array_foreach(caps, i, c)
		if (n < CTR_MAX_ARGS - 16)
			args[n++] = "--cap-add", args[n++] = json_string_value(c);
	args[n++] = json_string_value(json_object_get(meta, "image")), args[n++] = new_id, args[n++] = stub_in;
	return ctr(address, ns, args, n, NULL);
}

/* Whether `ctr KIND ls -q` lists name (asked before the create, so that
 * the first error says what to do, not ctr's own words). */
static int listed(const char *address, const char *ns, const char *kind, const char *name)
{
	const char *args[] = { kind, "ls", "-q" };
	_cleanup_free_ char *out = NULL;
	int r = ctr(address, ns, args, ARRAY_SIZE(args), &out);
	if (r < 0)
		return log_error_errno(r, "cannot list containerd %s in namespace '%s' at %s", kind, ns, address);
	for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (streq(line, name))
			return 1;
	return 0;
}

static int check_create(const char *address, const char *ns, const char *image, const char *new_id)
{
	int r = listed(address, ns, "images", image);
	if (r == 0)
		return log_error_errno(-ENOENT, "image '%s' is not in containerd namespace '%s'; import or pull it "
				       "first", image, ns);
	if (r > 0 && (r = listed(address, ns, "containers", new_id)) > 0)
		return log_error_errno(-EEXIST, "containerd container '%s' exists in namespace '%s'; remove it or "
				       "restore with --id NEW", new_id, ns);
	return r;
}

/* The saved changes and the stub into the new snapshot, then the task. */
static int fill_and_start(struct image *img, const char *stub_path, struct rt_sandbox *sb, const char *snapshotter)
{
	_cleanup_json_ json_t *now = NULL;
	const char *key;
	char upper[PATH_MAX];
	int r = container_info(sb->address, sb->ns, sb->id, &now);
	if (r < 0 || json_get_str(now, "SnapshotKey", &key) < 0 ||
	    (r = snapshot_upper(sb->address, sb->ns, snapshotter, key, upper, sizeof(upper))) < 0)
		return log_error_errno(r < 0 ? r : -EBADMSG, "the new containerd container '%s' has no overlayfs "
				       "writable directory", sb->id);
	if ((r = rt_archive_apply(img, IMAGE_ROOTFS_DIFF, upper)) < 0)
		return r;
	if ((size_t)snprintf(sb->stub_file, sizeof(sb->stub_file), "%s%s", upper, sb->stub_in) >=
	    sizeof(sb->stub_file))
		return log_error_errno(-ENAMETOOLONG, "snapshot directory %s: path too long", upper);
	if ((r = rt_copy_file(stub_path, sb->stub_file, 0755)) < 0)
		return log_error_errno(r, "cannot place the restore stub in %s: %m", upper);
	const char *args[] = { "tasks", "start", "-d", "--null-io", sb->id };
	sb->pid = -1; /* a task may exist from here on */
	if ((r = ctr(sb->address, sb->ns, args, ARRAY_SIZE(args), NULL)) < 0)
		return log_error_errno(r, "containerd could not start the task of container '%s'", sb->id);
	return containerd_task_pid(sb->address, sb->ns, sb->id, &sb->pid);
}

int ctrd_native_create_sandbox(struct image *img, const json_t *meta, const json_t *info, const char *new_id,
			       const char *stub_path, int stub_tfd, struct rt_sandbox *sb)
{
	const char *ns, *snapshotter;
	(void)stub_tfd; /* ctr cannot hand fds over: the stub connects to us */
	if (json_get_str(meta, "namespace", &ns) < 0 || json_get_str(meta, "snapshotter", &snapshotter) < 0 ||
	    !json_string_value(json_object_get(meta, "image")))
		return log_error_errno(-EBADMSG, "the image lacks the containerd container's description");
	char given[PATH_MAX];
	snprintf(given, sizeof(given), "%s", sb->address);
	int r = containerd_address(given[0] ? given : NULL, ns, sb->address, sizeof(sb->address));
	if (r < 0)
		return r;
	snprintf(sb->ns, sizeof(sb->ns), "%s", ns);
	snprintf(sb->id, sizeof(sb->id), "%s", new_id);
	snprintf(sb->stub_in, sizeof(sb->stub_in), "/.stasis-stub-%d", getpid());
	if ((r = check_create(sb->address, ns, json_string_value(json_object_get(meta, "image")), new_id)) < 0)
		return r;
	if ((r = create(sb->address, ns, meta, info, new_id, sb->stub_in)) < 0)
		return log_error_errno(r, "containerd could not create container '%s' in namespace '%s'", new_id, ns);
	sb->created = true;
	return fill_and_start(img, stub_path, sb, snapshotter);
}

void ctrd_native_finish(struct rt_sandbox *sb, bool ok)
{
	if (sb->stub_file[0])
		unlink(sb->stub_file);
	if (ok || !sb->created)
		return;
	const char *task[] = { "tasks", "rm", "-f", sb->id }, *container[] = { "containers", "rm", sb->id };
	if (sb->pid != 0)
		(void)ctr(sb->address, sb->ns, task, ARRAY_SIZE(task), NULL);
	/* ctr removes the container's snapshot with it. */
	if (ctr(sb->address, sb->ns, container, ARRAY_SIZE(container), NULL) < 0)
		log_warn("could not remove the half-made containerd container '%s' (namespace '%s')", sb->id, sb->ns);
}

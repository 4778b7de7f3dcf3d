/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Containers managed by Docker (containerd's "moby" namespace), through
 * the Engine API client (docker-api.c); used by the docker adapter and by
 * containerd's for that namespace. The dump keeps `docker inspect`'s view of
 * the container and the changes of its writable layer (the overlay upper
 * directory, whiteouts and opaque directories included, as a tar made
 * while the tree is frozen). The restore asks Docker for a new container
 * of the same image and configuration, whose entrypoint is the stub: Docker
 * makes its namespaces, mounts (/etc/hosts & co.), network (a new address)
 * and log pipes. The saved changes and the stub are put into its upper
 * directory before it starts; the stub removes itself once it is the
 * original tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/image.h"
#include "runtime/docker-api.h"
#include "runtime/moby.h"
#include "runtime/runtime.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

static int inspect(const char *id, json_t **ret)
{
	char path[512];
	json_t *j = NULL;
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	int st = docker_call("GET", path, NULL, &j);
	if (st < 0)
		return st;
	if (st == 404) {
		json_decref(j);
		return log_error_errno(-ENOENT, "no Docker container '%s'", id);
	}
	if (st != 200 || !json_is_object(j)) {
		log_error("docker inspect %s: HTTP %d: %s", id, st, docker_message(j));
		json_decref(j);
		return -EIO;
	}
	*ret = j;
	return 0;
}

static const char *upper_dir(const json_t *insp)
{
	return json_string_value(json_object_get(json_object_get(json_object_get(insp, "GraphDriver"), "Data"),
						 "UpperDir"));
}

/* Its tmpfs mounts, as Docker lists them (--tmpfs, or mounts of type tmpfs). */
static json_t *tmpfs_mounts(const json_t *insp)
{
	json_t *a = json_array(), *m;
	const char *k;
	size_t i;
	json_t *v;
	json_object_foreach(json_object_get(json_object_get(insp, "HostConfig"), "Tmpfs"), k, v)
		json_array_append_new(a, json_string(k));
	json_array_foreach(json_object_get(insp, "Mounts"), i, m)
		if (streq(json_string_value(json_object_get(m, "Type")) ?: "", "tmpfs"))
			json_array_append(a, json_object_get(m, "Destination"));
	return a;
}

int moby_locate(const char *id, struct rt_found *ret)
{
	json_t *insp;
	int r = inspect(id, &insp);
	if (r < 0)
		return r;
	json_t *state = json_object_get(insp, "State");
	int pid = (int)json_integer_value(json_object_get(state, "Pid"));
	const char *full = json_string_value(json_object_get(insp, "Id"));
	const char *name = json_string_value(json_object_get(insp, "Name"));
	const char *img = json_string_value(json_object_get(json_object_get(insp, "Config"), "Image"));
	if (!json_is_true(json_object_get(state, "Running")) || pid <= 0 || !full || !img || !upper_dir(insp)) {
		json_decref(insp);
		return log_error_errno(-ESRCH, "Docker container '%s' is not running (or not on overlay2)", id);
	}
	ret->meta = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "runtime", "docker", "id", full, "name", name ? name : "",
			      "image", img, "upper", upper_dir(insp), "tmpfs", tmpfs_mounts(insp));
	ret->config = insp;
	ret->pid = pid;
	return ret->meta ? 0 : -ENOMEM;
}

/* The create request: the original's Config and HostConfig as they are
 * (entrypoint, command, user, capabilities, security options, limits,
 * restart policy), but no hostname of its own: the new container gets
 * Docker's, as any new container. */
static json_t *create_body(const json_t *insp)
{
	json_t *cfg = json_deep_copy(json_object_get(insp, "Config"));
	json_t *host = json_deep_copy(json_object_get(insp, "HostConfig"));
	if (!cfg || !host || json_object_set_new(cfg, "HostConfig", host)) {
		json_decref(cfg), json_decref(host);
		return NULL;
	}
	json_object_del(cfg, "Hostname");
	json_object_del(cfg, "Domainname");
	return cfg;
}

static int image_present(const char *image)
{
	char path[PATH_MAX];
	_cleanup_json_ json_t *reply = NULL;
	snprintf(path, sizeof(path), "/images/%s/json", image);
	int st = docker_call("GET", path, NULL, &reply);
	if (st < 0)
		return st;
	if (st == 404)
		return log_error_errno(-ENOENT, "image '%s' is not on this host; pull or load it first", image);
	if (st != 200) {
		log_error("docker image inspect %s: HTTP %d: %s", image, st, docker_message(reply));
		return -EIO;
	}
	return 0;
}

static int create(const json_t *insp, const char *new_id, struct rt_sandbox *sb)
{
	char path[PATH_MAX];
	_cleanup_json_ json_t *body = create_body(insp), *reply = NULL;
	if (!body)
		return -ENOMEM;
	if (json_is_true(json_object_get(json_object_get(insp, "HostConfig"), "Init")))
		return log_error_errno(-EOPNOTSUPP, "containers run with --init cannot be restored yet");
	int r = sb->keep_ip ? moby_keep_ip(insp, body) : 0;
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/containers/create?name=%s", new_id);
	int st = docker_call("POST", path, body, &reply);
	if (st < 0)
		return st;
	const char *id = json_string_value(json_object_get(reply, "Id"));
	if (st != 201 || !id) {
		log_error("docker create %s: HTTP %d: %s", new_id, st, docker_message(reply));
		return -EIO;
	}
	snprintf(sb->id, sizeof(sb->id), "%s", id);
	return 0;
}

static int start(const char *new_id, struct rt_sandbox *sb)
{
	char path[512];
	_cleanup_json_ json_t *reply = NULL, *now = NULL;
	snprintf(path, sizeof(path), "/containers/%s/start", sb->id);
	int st = docker_call("POST", path, NULL, &reply);
	if (st < 0)
		return st;
	if (st != 204) {
		log_error("docker start %s: HTTP %d: %s", new_id, st, docker_message(reply));
		return -EIO;
	}
	int r = inspect(sb->id, &now);
	if (r < 0)
		return r;
	sb->pid = (pid_t)json_integer_value(json_object_get(json_object_get(now, "State"), "Pid"));
	if (sb->pid <= 0)
		return log_error_errno(-ESRCH, "the new container %s did not start", new_id);
	return 0;
}

/* The new container runs the stub once, from its writable layer
 * (exec-stub.c): its configuration stays the original's, and so does
 * every later start of it. */
int moby_create_sandbox(struct image *img, const json_t *meta, const json_t *insp, const char *new_id,
			const char *stub_path, int stub_tfd, struct rt_sandbox *sb)
{
	const char *image = json_string_value(json_object_get(meta, "image"));
	_cleanup_json_ json_t *now = NULL;
	struct rt_exec_stub es;
	int r;
	(void)stub_tfd; /* Docker cannot hand fds over: the stub connects to us */
	if (!image)
		return log_error_errno(-EBADMSG, "the image lacks the container's image name");
	if ((r = image_present(image)) < 0 || (r = create(insp, new_id, sb)) < 0 || (r = inspect(sb->id, &now)) < 0)
		return r;
	const char *upper = upper_dir(now), *lowers = rt_ovl_lower_dirs(now);
	struct rt_exec_args a = rt_ovl_exec_args(now);
	if (!upper || !a.arg0)
		return log_error_errno(-EOPNOTSUPP, "the new container has no overlay2 upper directory or command");
	/* The saved layer changes go into the new container's upper
	 * directory as they were (whiteouts and opaque directories too). */
	if ((r = rt_archive_apply(img, IMAGE_ROOTFS_DIFF, upper)) < 0 ||
	    (r = rt_exec_stub_place(&a, upper, lowers, stub_path, &es)) < 0 || (r = start(new_id, sb)) < 0 ||
	    (r = rt_exec_stub_unplace(&es, upper, sb->pid)) < 0)
		return r;
	return rt_ovl_fill_tmpfs(img, meta, sb->pid);
}

void moby_finish(struct rt_sandbox *sb, bool ok)
{
	if (ok || !sb->id[0])
		return;
	char path[512];
	snprintf(path, sizeof(path), "/containers/%s?force=true", sb->id);
	/* 404: gone already (the original's --rm). */
	if (docker_call("DELETE", path, NULL, NULL) < 0)
		log_warn("could not remove the half-made container %s", sb->id);
}

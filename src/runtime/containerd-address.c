/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which containerd `--type containerd` talks to, found the way its users
 * find it: --address, then $CONTAINERD_ADDRESS (what ctr reads), then the
 * containerd a running dockerd uses, then containerd's own default.
 *
 * dockerd either starts a containerd of its own, listening on
 * EXEC_ROOT/containerd/containerd.sock (exec root: --exec-root, default
 * /var/run/docker), or uses the one named by --containerd. Both can also
 * be set in its daemon.json (--config-file, default
 * /etc/docker/daemon.json). We read them from the running dockerd's command
 * line and config, rather than guess paths: a dockerd started with its own
 * roots (as the test suite's) is found as well as the system's. Where
 * several dockerds run, the one serving the Docker socket we use
 * ($DOCKER_HOST, else /var/run/docker.sock) is chosen. Docker's /info does
 * not give containerd's address in the Docker versions Debian ships. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/json.h"
#include "runtime/containerd.h"
#include "runtime/docker-api.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#define CONTAINERD_DEFAULT "/run/containerd/containerd.sock"
#define DOCKERD_EXEC_ROOT "/var/run/docker"
#define DOCKERD_CONFIG "/etc/docker/daemon.json"
#define MAX_ARGS 256

/* What a dockerd says about itself, on its command line or in its config. */
struct dockerd_view {
	const char *exec_root, *containerd, *config;
	const char *hosts[16];
	size_t nhosts;
};

/* "--name VALUE" or "--name=VALUE" at args[*i] (moving *i past VALUE). */
static const char *opt_value(char **args, size_t n, size_t *i, const char *name)
{
	size_t l = strlen(name);
	if (strncmp(args[*i], name, l))
		return NULL;
	if (args[*i][l] == '=')
		return args[*i] + l + 1;
	if (args[*i][l] || *i + 1 >= n)
		return NULL;
	return args[++*i];
}

static void parse_args(char **args, size_t n, struct dockerd_view *v)
{
	for (size_t i = 1; i < n; i++) {
		const char *x;
		if ((x = opt_value(args, n, &i, "--exec-root")))
			v->exec_root = x;
		else if ((x = opt_value(args, n, &i, "--containerd")))
			v->containerd = x;
		else if ((x = opt_value(args, n, &i, "--config-file")))
			v->config = x;
		else if (((x = opt_value(args, n, &i, "--host")) || (x = opt_value(args, n, &i, "-H"))) &&
			 v->nhosts < ARRAY_SIZE(v->hosts))
			v->hosts[v->nhosts++] = x;
	}
}

/* What the command line left unsaid, from daemon.json (read through the
 * daemon's own root: its paths are its mount namespace's). */
static void parse_config(pid_t pid, struct dockerd_view *v, json_t **keep)
{
	char path[PATH_MAX];
	_cleanup_free_ char *text = NULL;
	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, v->config ? v->config : DOCKERD_CONFIG);
	if (read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL) < 0 || !(*keep = json_loads(text, 0, NULL)))
		return;
	const char *x;
	if (!v->exec_root && json_get_str(*keep, "exec-root", &x) == 0)
		v->exec_root = x;
	if (!v->containerd && json_get_str(*keep, "containerd", &x) == 0)
		v->containerd = x;
	json_t *h;
	size_t i;
	json_array_foreach(v->nhosts ? NULL : json_object_get(*keep, "hosts"), i, h)
		if (json_is_string(h) && v->nhosts < ARRAY_SIZE(v->hosts))
			v->hosts[v->nhosts++] = json_string_value(h);
}

static bool is_socket(const char *path, struct stat *ret)
{
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	if (ret)
		*ret = st;
	return true;
}

static bool same_socket(const char *a, const struct stat *b)
{
	struct stat st;
	return is_socket(a, &st) && st.st_dev == b->st_dev && st.st_ino == b->st_ino;
}

/* Whether the dockerd serves the socket the Docker client uses (by inode:
 * /var/run is /run on most systems). No -H at all means the default. */
static bool serves(const struct dockerd_view *v, const struct stat *docker)
{
	if (!v->nhosts)
		return same_socket("/var/run/docker.sock", docker);
	for (size_t i = 0; i < v->nhosts; i++) {
		const char *h = v->hosts[i];
		if (startswith(h, "unix://") && same_socket(h + 7, docker))
			return true;
		if (startswith(h, "fd://") && same_socket("/var/run/docker.sock", docker))
			return true;
	}
	return false;
}

/* The containerd socket of dockerd `pid`, into buf; whether it is one. */
static bool dockerd_socket(pid_t pid, char *buf, size_t size, const struct stat *docker, bool *ret_serves)
{
	char path[64], *args[MAX_ARGS];
	_cleanup_free_ char *cmd = NULL;
	_cleanup_json_ json_t *config = NULL;
	size_t len, n = 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file_at(AT_FDCWD, path, 1 << 16, &cmd, &len) < 0)
		return false;
	for (size_t o = 0; o < len && n < MAX_ARGS; o += strlen(cmd + o) + 1)
		args[n++] = cmd + o;
	struct dockerd_view v = { 0 };
	parse_args(args, n, &v);
	parse_config(pid, &v, &config);
	*ret_serves = docker && serves(&v, docker);
	if (v.containerd)
		snprintf(buf, size, "%s", startswith(v.containerd, "unix://") ? v.containerd + 7 : v.containerd);
	else
		snprintf(buf, size, "%s/containerd/containerd.sock", v.exec_root ? v.exec_root : DOCKERD_EXEC_ROOT);
	return is_socket(buf, NULL);
}

static bool is_dockerd(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *comm = NULL;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	return read_file_at(AT_FDCWD, path, 64, &comm, NULL) == 0 && streq(comm, "dockerd\n");
}

/* The containerd of the dockerd serving our Docker socket, or of the only
 * dockerd running. */
static bool dockerd_containerd(char *buf, size_t size)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	struct stat docker;
	bool have_docker = is_socket(docker_socket_path(), &docker);
	char found[PATH_MAX] = "";
	int candidates = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		bool serving = false;
		char sock[PATH_MAX];
		pid_t pid;
		if (parse_pid(e->d_name, &pid) < 0 || !is_dockerd(pid) ||
		    !dockerd_socket(pid, sock, sizeof(sock), have_docker ? &docker : NULL, &serving))
			continue;
		if (serving) {
			snprintf(buf, size, "%s", sock);
			return true;
		}
		snprintf(found, sizeof(found), "%s", sock);
		candidates++;
	}
	if (candidates != 1)
		return false;
	snprintf(buf, size, "%s", found);
	return true;
}

int containerd_address(const char *given, const char *ns, char *buf, size_t size)
{
	const char *env = getenv("CONTAINERD_ADDRESS");
	if (!given && env && *env)
		given = env;
	if (given) {
		snprintf(buf, size, "%s", startswith(given, "unix://") ? given + 7 : given);
		return 0;
	}
	/* Docker's namespace lives in dockerd's containerd; any other
	 * namespace more likely in the system's. */
	bool moby = streq(ns, "moby");
	if (moby && dockerd_containerd(buf, size))
		return 0;
	if (is_socket(CONTAINERD_DEFAULT, NULL)) {
		snprintf(buf, size, "%s", CONTAINERD_DEFAULT);
		return 0;
	}
	if (!moby && dockerd_containerd(buf, size))
		return 0;
	return log_error_errno(-ENOENT, "cannot find containerd: no socket at %s and no running dockerd's; give "
			       "--address SOCKET or set CONTAINERD_ADDRESS", CONTAINERD_DEFAULT);
}

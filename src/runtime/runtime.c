/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The runtime layer's commands and the adapters' table. The CLI calls
 * only these: an adapter finds its target and, for a container, deals with
 * its runtime; the engine does the processes, from inside the container's
 * namespaces where there is one (rt_in_container). The image is opened
 * (or created) once here and handed down. */
#include "runtime/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/check.h"
#include "engine/fdpass.h"
#include "engine/inspect.h"
#include "engine/kernel.h"
#include "engine/lazy.h"
#include "engine/stats.h"
#include "image/image.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

extern const struct rt_ops rt_process, rt_runc, rt_docker, rt_containerd, rt_podman;

static const struct rt_ops *const table[] = { &rt_process, &rt_runc, &rt_docker, &rt_containerd, &rt_podman };

const struct rt_ops *rt_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (streq(table[i]->name, name))
			return table[i];
	return NULL;
}

const char *rt_names(void)
{
	static char names[128];
	if (!names[0])
		for (size_t i = 0, n = 0; i < ARRAY_SIZE(table) && n < sizeof(names); i++)
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "", table[i]->name);
	return names;
}

struct dump_args {
	struct image *img;
	struct dump_opts *o;
};

static int dump_inside(void *arg)
{
	struct dump_args *a = arg;
	/* In the container's pid namespace its init is pid 1. */
	return dump_process(a->img, 1, a->o);
}

static int dump_found(const struct rt_ops *ops, const struct rt_found *f, struct image *img, struct dump_opts *o)
{
	int r = f->config ? image_put_json(img, IMAGE_CONFIG, f->config) : 0;
	if (r < 0)
		return r;
	o->type = ops->name;
	o->container = f->meta;
	if (ops->before_commit) {
		o->before_commit = ops->before_commit;
		o->arg = f->meta;
	}
	if (!ops->in_container)
		return dump_process(img, f->pid, o);
	struct dump_args a = { img, o };
	o->fsroot = RT_CONTAINER_ROOT;
	/* Any pid will do: the tree is not known yet, and it is not made
	 * again there. */
	return rt_in_container(f->pid, 0, dump_inside, &a);
}

int rt_dump(const struct rt_ops *ops, const struct rt_target *t, const char *dir, struct dump_opts *o)
{
	struct rt_found f = { 0 };
	struct image *img = NULL;
	if (kernel_need_privileges("dump") < 0)
		return -EPERM;
	/* The caller's stats, filled through memory the dump's child in a
	 * container's namespaces shares with us. */
	struct dump_stats *want = o->stats;
	uint64_t t0 = now_ns();
	o->stats = stats_alloc(sizeof(*o->stats));
	if (!o->stats) {
		o->stats = want;
		return log_error_errno(-ENOMEM, "cannot dump: %m");
	}
	int r = ops->locate(t, &f);
	if (r >= 0 && (r = image_create(dir, &img)) >= 0)
		r = dump_found(ops, &f, img, o);
	o->stats->total_ns = now_ns() - t0;
	if (want)
		*want = *o->stats;
	stats_free(o->stats, sizeof(*o->stats));
	o->stats = want;
	/* The engine removed what it wrote; this removes the rest. */
	if (r < 0)
		image_discard(img);
	else
		image_free(img);
	json_decref(f.meta);
	json_decref(f.config);
	if (r < 0 && img && ops->in_container)
		return log_error_errno(r, "checkpoint of %s container '%s' failed", ops->name, t->id);
	if (r >= 0 && ops->in_container)
		log_info("%s container '%s' checkpointed to %s", ops->name, t->id, dir);
	return r;
}

struct check_args {
	struct dump_opts *o;
	struct check_report *rep;
};

static int check_inside(void *arg)
{
	struct check_args *a = arg;
	return check_process(1, a->o, a->rep);
}

/* In a container the look happens in a child, in its namespaces: the
 * report is in memory shared with it. */
int rt_check(const struct rt_ops *ops, const struct rt_target *t, struct dump_opts *o,
	     void (*print)(bool refused, const char *msg), struct rt_check_result *ret)
{
	struct check_report report = { .print = print }, *rep = &report;
	struct rt_found f = { 0 };
	if (kernel_need_privileges("check") < 0)
		return -EPERM;
	int r = ops->locate(t, &f);
	if (r >= 0 && !ops->in_container) {
		r = check_process(f.pid, o, rep);
	} else if (r >= 0) {
		struct check_report *shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
						   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (shared == MAP_FAILED) {
			r = -errno;
		} else {
			*shared = *rep;
			o->container = f.meta;
			o->fsroot = RT_CONTAINER_ROOT;
			struct check_args a = { o, shared };
			r = rt_in_container(f.pid, 0, check_inside, &a);
			*rep = *shared;
			munmap(shared, sizeof(*shared));
		}
	}
	json_decref(f.meta);
	json_decref(f.config);
	*ret = (struct rt_check_result){ rep->refused, rep->lost, rep->procs, rep->fds };
	return r;
}

/* The exit status a shell would show for our child. */
static int wait_exit_status(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return log_error_errno(-errno, "cannot wait for pid %d: %m", pid), 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* The image's type, checked against what the user said it should be. */
static int image_ops(struct image *img, const struct rt_restore_req *req, const struct rt_ops **ret)
{
	const char *type, *ns;
	int r = json_get_str(image_manifest(img), "type", &type);
	if (r < 0)
		return log_error_errno(-EBADMSG, "manifest.json in %s has no type", req->dir);
	if (req->type && !streq(req->type, type))
		return log_error_errno(-EINVAL, "%s holds a %s checkpoint, not %s", req->dir, type, req->type);
	json_t *meta = json_object_get(image_manifest(img), "container");
	if (req->ns && json_get_str(meta, "namespace", &ns) < 0)
		return log_error_errno(-EINVAL, "%s holds a %s checkpoint, which has no containerd namespace (not '%s')",
				       req->dir, type, req->ns);
	if (req->ns && !streq(ns, req->ns))
		return log_error_errno(-EINVAL, "%s holds a checkpoint of containerd namespace '%s', not '%s'", req->dir,
				       ns, req->ns);
	*ret = rt_find(type);
	if (!*ret)
		return log_error_errno(-EOPNOTSUPP, "image type '%s' cannot be restored by this version", type);
	if (req->keep_ip && !(*ret)->keeps_ip)
		return log_error_errno(-EOPNOTSUPP, "--keep-ip is for Docker containers (docker, containerd in "
				       "namespace moby); %s holds a %s checkpoint", req->dir, type);
	return 0;
}

int rt_lazy_filler(int argc, char **argv)
{
	int level;
	_Static_assert(sizeof(RT_LAZY_FILLER_ARG) == sizeof(LAZY_FILLER_ARG), "one name");
	if (argc != 4 || !streq(argv[1], LAZY_FILLER_ARG) || parse_int(argv[2], &level) < 0)
		return 1;
	return lazy_filler_exec_main(level, streq(argv[3], "log"));
}

int rt_restore(const struct rt_restore_req *req, struct rt_restored *ret)
{
	char stub[PATH_MAX];
	struct rt_restore_req q = *req;
	const struct rt_ops *ops;
	struct image *img;
	uint64_t t0 = started_ns() ? started_ns() : now_ns(); /* the command's start */
	if (kernel_need_privileges("restore") < 0)
		return -EPERM;
	if (rt_stub_path(stub, sizeof(stub)) < 0)
		return log_error_errno(-ENOENT, "cannot find the restore stub (stasis-stub next to the stasis binary, "
				       "or set STASIS_STUB)");
	q.o.stub_path = stub;
	*ret = (struct rt_restored){ 0 };
	q.o.stats = stats_alloc(sizeof(*q.o.stats));
	if (!q.o.stats)
		return log_error_errno(-ENOMEM, "cannot restore: %m");
	q.o.stats->t0_ns = t0;
	q.o.lazy_sock = -1;
	/* The filler first: its execve (lazy-start.c) runs while we read the
	 * image and make the tree. */
	int r = q.o.lazy ? lazy_start(&q.o) : 0;
	if (r >= 0 && (r = image_open(req->dir, &img)) >= 0) {
		log_debug("image %s opened (%.1f ms after the start)", req->dir, (double)(now_ns() - t0) / 1e6);
		if ((r = image_ops(img, &q, &ops)) >= 0)
			r = ops->restore(ops, img, &q, ret);
		image_free(img);
	}
	int l = lazy_finish(&q.o, r >= 0);
	if (r >= 0)
		r = l;
	ret->stats = *q.o.stats;
	stats_free(q.o.stats, sizeof(*q.o.stats));
	if (r >= 0 && ret->wait_for > 0) {
		ret->status = wait_exit_status(ret->wait_for);
		ret->waited = true;
	}
	return r;
}

static bool executable_at(char *buf, size_t size, const char *dir, const char *rel)
{
	int n = snprintf(buf, size, "%s/%s", dir, rel);
	return n > 0 && (size_t)n < size && access(buf, X_OK) == 0;
}

int rt_stub_path(char *buf, size_t size)
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
	const char *dir = dirname(self); /* once: dirname may change self */
	if (executable_at(buf, size, dir, "stasis-stub") ||
	    executable_at(buf, size, dir, "../libexec/stasis/stasis-stub"))
		return 0;
	return -ENOENT;
}

/* What the runtime layer knows of a container image, before the engine's
 * view of its processes. */
static void print_container(struct image *img)
{
	const json_t *meta = json_object_get(image_manifest(img), "container");
	const char *runtime = NULL, *name = NULL, *id = NULL, *image = NULL;
	if (!json_is_object(meta))
		return;
	(void)json_get_str(meta, "runtime", &runtime), (void)json_get_str(meta, "name", &name);
	(void)json_get_str(meta, "id", &id), (void)json_get_str(meta, "image", &image);
	printf("container %s (%s runtime, id %.12s%s%s)\n", name && *name ? name : id ? id : "?", runtime ? runtime : "?",
	       id ? id : "?", image ? ", image " : "", image ? image : "");
}

int rt_inspect(const char *dir, bool as_json)
{
	struct image *img;
	int r = image_open(dir, &img);
	if (r < 0)
		return r;
	if (!as_json)
		print_container(img);
	r = inspect_image(img, as_json, stdout);
	image_free(img);
	return r;
}

const struct kfeature *rt_kernel_features(size_t *ret_n)
{
	return kernel_features(ret_n);
}

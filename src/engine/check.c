/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stasis check --pid (check.h). The dump's own rules, run read-only: the
 * tree is listed from /proc instead of seized; each process goes through
 * the dump's collection (task, memory map, fds, timers, prctl: all read
 * from /proc, fds through pidfd_getfd copies, which change nothing in
 * the process), then the fds of the tree are linked, sessions, locks and
 * shared tables checked, as the dump does before it touches anything.
 * What the dump would refuse or warn about is logged by those functions;
 * here the log's sink (log_set_sink) turns each message into a finding,
 * and a refusal skips only its object (FILES_CHECK for fds), so that one
 * run lists them all. The tree runs on: a look during which it changed
 * is made again (up to five times). Only the remote part of a dump (registers, signal
 * state read through the process's own calls) is not looked at: it
 * refuses nothing but a failure. */
#include "engine/check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/proc.h"
#include "engine/process.h"
#include "engine/share.h"
#include "engine/tree.h"
#include "engine/tty.h"
#include "engine/zombie.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

struct cproc {
	pid_t pid;
	int procfd;
	struct process_rec p;
};

/* Findings are held until we know the tree stayed the same during the
 * look: a process that exited or was born meanwhile (a `sleep` of a
 * shell loop) makes findings that are no findings ("cannot compare fd",
 * "not a descendant"), and the look starts again. */
struct held {
	struct check_report *rep;
	bool hold;
	size_t n;
	struct {
		int level;
		char *msg;
	} v[256];
};

static void emit(struct check_report *rep, int level, const char *msg)
{
	if (level == LOG_ERR)
		rep->refused++;
	else
		rep->lost++;
	if (rep->print)
		rep->print(level == LOG_ERR, msg);
}

static void sink(int level, const char *msg, void *arg)
{
	struct held *h = arg;
	if (!h->hold) {
		emit(h->rep, level, msg);
	} else if (h->n < ARRAY_SIZE(h->v) && (h->v[h->n].msg = strdup(msg))) {
		h->v[h->n++].level = level;
	}
}

static void release(struct held *h, bool keep)
{
	for (size_t i = 0; i < h->n; i++) {
		if (keep)
			emit(h->rep, h->v[i].level, h->v[i].msg);
		free(h->v[i].msg);
	}
	h->n = 0;
	h->hold = false;
}

static bool still_there(const struct cproc *c)
{
	_cleanup_free_ char *buf = NULL;
	struct proc_stat st;
	size_t len;
	return c->procfd >= 0 && proc_read(c->procfd, "stat", &buf, &len) >= 0 &&
	       proc_parse_stat(buf, len, &st) >= 0 && st.state != 'Z' && st.state != 'X';
}

/* --- the tree, listed without seizing --- */

static int add_node(struct tree *t, pid_t pid, pid_t ppid)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	struct proc_stat st;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int r = proc_read(AT_FDCWD, path, &buf, &len);
	if (r < 0 || (r = proc_parse_stat(buf, len, &st)) < 0)
		return r;
	if (t->n == MAX_TREE)
		return log_error_errno(-E2BIG, "pid %d: more than %d processes in the tree", t->v[0].pid, MAX_TREE);
	struct tree_node *v = realloc(t->v, (t->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	v[t->n++] = (struct tree_node){ .pid = pid, .ppid = ppid ? ppid : st.ppid, .pgid = st.pgrp, .sid = st.session,
					.zombie = st.state == 'Z', .exit_status = st.exit_code, .tty = st.tty_nr };
	memcpy(v[t->n - 1].comm, st.comm, sizeof(st.comm));
	return 0;
}

/* The children of every thread of pid, added after the others. */
static int add_children(struct tree *t, pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		_cleanup_free_ char *buf = NULL;
		size_t len;
		pid_t tid;
		if (parse_pid(de->d_name, &tid) < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tid);
		if (proc_read(AT_FDCWD, path, &buf, &len) < 0)
			continue;
		for (char *s = buf, *end; *s; s = end) {
			long c = strtol(s, &end, 10);
			if (end == s)
				break;
			if (c > 0 && !tree_find(t, (pid_t)c) && add_node(t, (pid_t)c, pid) == -ENOMEM)
				return -ENOMEM;
		}
	}
	return 0;
}

static int list_tree(pid_t root, struct tree *ret)
{
	struct tree t = { 0 };
	int r = add_node(&t, root, 0);
	if (r < 0) {
		tree_free(&t);
		return log_error_errno(r == -ENOENT ? -ESRCH : r, "no process with pid %d", root);
	}
	for (size_t i = 0; r >= 0 && i < t.n; i++)
		if (!t.v[i].zombie)
			r = add_children(&t, t.v[i].pid);
	if (r >= 0 && t.v[0].zombie)
		r = log_error_errno(-ESRCH, "pid %d is a zombie", root);
	if (r < 0) {
		tree_free(&t);
		return r;
	}
	*ret = t;
	return 0;
}

/* --- each process --- */

/* What the dump's remote part needs first: a syscall instruction (read
 * from /proc/PID/mem, not through the process). */
static void look_at_syscall(struct cproc *c)
{
	struct remote r = { .pid = c->pid, .mem_fd = openat(c->procfd, "mem", O_RDONLY | O_CLOEXEC) };
	if (r.mem_fd < 0 || mm_find_syscall(&c->p.mm, &r) < 0)
		log_error("pid %d: no syscall instruction in its vdso or any executable mapping, which the dump "
			  "needs to make calls in it", c->pid);
	if (r.mem_fd >= 0)
		close(r.mem_fd);
}

/* The dump's collect(), each step whatever the others found. */
static void look_at(struct cproc *c, unsigned fd_flags)
{
	_cleanup_free_ char *buf = NULL;
	struct proc_status st;
	char path[64];
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d", c->pid);
	if ((c->procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		log_error("pid %d: cannot open it: %m", c->pid);
		return;
	}
	if (proc_read(c->procfd, "status", &buf, &len) >= 0 && proc_parse_status(buf, len, &st) >= 0 &&
	    st.seccomp == 1)
		log_error("pid %d: strict seccomp mode cannot be checkpointed", c->pid);
	task_collect(c->procfd, c->pid, &c->p.task);
	if (mm_collect(c->procfd, c->pid, &c->p.mm) >= 0)
		look_at_syscall(c);
	files_collect(c->procfd, c->pid, fd_flags | FILES_CHECK, &c->p.files);
	timers_collect(c->procfd, c->pid, &c->p.timers);
	prctl_collect(c->procfd, c->pid, &c->p.prctl);
}

/* --- the tree --- */

static void look_at_tree(struct tree *t, struct cproc *v, bool container)
{
	_cleanup_free_ struct files_proc *all = calloc(t->n, sizeof(*all));
	size_t nall = 0;
	tree_check(t);
	for (size_t i = 0; i < t->n; i++) {
		share_check_node(t, i);
		if (t->v[i].zombie && WIFSIGNALED(t->v[i].exit_status) && WCOREDUMP(t->v[i].exit_status) &&
		    !zombie_core_bit_kept())
			log_warn("zombie %d: its status would lose the core-dump bit (core_pattern sends cores "
				 "outside the restore)", t->v[i].pid);
		if (all && !t->v[i].zombie)
			all[nall++] = (struct files_proc){ v[i].pid, &v[i].p.files };
	}
	if (!all || files_link(all, nall, container) < 0 || tty_check_sessions(t, all, nall) < 0)
		return;
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].zombie && v[i].procfd >= 0)
			locks_collect(v[i].procfd, v[i].pid, &v[i].p.files, &v[i].p.locks);
}

/* Whether the tree is what it was: the same processes, none gone, none
 * new (a shell loop forks a `sleep` at any time). */
static bool tree_changed(const struct tree *t, const struct cproc *v)
{
	struct tree now = { 0 };
	if (list_tree(t->v[0].pid, &now) < 0)
		return true;
	bool changed = now.n != t->n;
	for (size_t i = 0; !changed && i < now.n; i++)
		changed = !tree_find(t, now.v[i].pid);
	for (size_t i = 1; !changed && i < t->n; i++)
		changed = !t->v[i].zombie && !still_there(&v[i]);
	tree_free(&now);
	return changed;
}

static void free_look(struct tree *t, struct cproc *v)
{
	for (size_t i = 0; v && i < t->n; i++) {
		if (v[i].procfd >= 0)
			close(v[i].procfd);
		process_rec_free(&v[i].p);
	}
	free(v);
	tree_free(t);
}

/* One look at the whole tree, its findings held; they are given out when
 * the tree stayed the same meanwhile (or this is the last try). */
static int look_once(pid_t pid, const struct dump_opts *o, struct held *h, bool last, bool *ret_changed)
{
	struct tree t = { 0 };
	int r = list_tree(pid, &t);
	if (r < 0)
		return r;
	struct cproc *v = calloc(t.n, sizeof(*v));
	if (!v) {
		tree_free(&t);
		return -ENOMEM;
	}
	h->hold = true;
	for (size_t i = 0; i < t.n; i++) {
		v[i] = (struct cproc){ .pid = t.v[i].pid, .procfd = -1, .p = { .pid = t.v[i].pid } };
		if (!t.v[i].zombie)
			look_at(&v[i], o->tcp_close ? SK_TCP_CLOSE : 0);
	}
	look_at_tree(&t, v, o->container != NULL);
	*ret_changed = tree_changed(&t, v);
	if (!*ret_changed || last) {
		h->rep->procs = (unsigned)t.n;
		for (size_t i = 0; i < t.n; i++)
			h->rep->fds += (unsigned)v[i].p.files.n;
	}
	release(h, !*ret_changed || last);
	free_look(&t, v);
	return 0;
}

int check_process(pid_t pid, const struct dump_opts *o, struct check_report *rep)
{
	if (pid == getpid() || pid < 1 || (pid == 1 && !o->container))
		return log_error_errno(-EINVAL, "refusing to check pid %d", pid);
	struct tree t = { 0 };
	int r = list_tree(pid, &t); /* says "no process" before anything */
	tree_free(&t);
	if (r < 0)
		return r;
	struct held h = { .rep = rep };
	bool changed = true;
	log_set_sink(sink, &h);
	for (int tries = 0; r >= 0 && changed && tries < 5; tries++)
		r = look_once(pid, o, &h, tries == 4, &changed);
	log_set_sink(NULL, NULL);
	if (r < 0)
		return log_error_errno(r, "pid %d: cannot look at its tree: %m", pid);
	return 0;
}

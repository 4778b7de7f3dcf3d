/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dump side of the process tree: seize the root, read its children once it
 * is stopped (a stopped process cannot fork), seize them, and so on. A
 * child that exits first stays a zombie of its stopped parent and is saved
 * as one. The restore side (creating the processes) is in restore-tree.c. */
#include "engine/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/freezer.h"
#include "engine/proc.h"
#include "engine/seize.h"
#include "engine/vfork.h"
#include "image/json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

void tree_free(struct tree *t)
{
	for (size_t i = 0; t && i < t->n; i++)
		free(t->v[i].tids);
	if (t) {
		free(t->v);
		t->v = NULL;
		t->n = 0;
	}
}

struct tree_node *tree_find(const struct tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].pid == pid)
			return &t->v[i];
	return NULL;
}

pid_t tree_max_pid(const struct tree *t)
{
	pid_t max = 0;
	for (size_t i = 0; i < t->n; i++) {
		max = t->v[i].pid > max ? t->v[i].pid : max;
		for (size_t k = 0; k < t->v[i].ntids; k++)
			max = t->v[i].tids[k] > max ? t->v[i].tids[k] : max;
	}
	return max;
}

bool tree_sid_external(const struct tree *t, pid_t sid)
{
	return !tree_find(t, sid);
}

static int read_stat(pid_t pid, struct proc_stat *ret)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int r = proc_read(AT_FDCWD, path, &buf, &len);
	return r < 0 ? r : proc_parse_stat(buf, len, ret);
}

static int add_node(struct tree *t, pid_t pid, pid_t ppid)
{
	if (tree_find(t, pid))
		return 0;
	if (t->n >= MAX_TREE)
		return log_error_errno(-E2BIG, "the tree has more than %d processes", MAX_TREE);
	struct tree_node *v = realloc(t->v, (t->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	v[t->n++] = (struct tree_node){ .pid = pid, .ppid = ppid };
	return 0;
}

/* Children are listed per thread (the thread that forked is the parent). */
static int add_children(struct tree *t, size_t idx)
{
	/* add_node moves t->v: keep what we need by value. */
	const pid_t pid = t->v[idx].pid, *tids = t->v[idx].tids;
	const size_t ntids = t->v[idx].ntids;
	for (size_t i = 0; i < ntids; i++) {
		char path[96];
		_cleanup_free_ char *buf = NULL;
		size_t len;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[i]);
		int r = proc_read(AT_FDCWD, path, &buf, &len);
		if (r < 0)
			return log_error_errno(r, "pid %d: cannot list its children (%s): %m", pid, path);
		for (char *s = buf, *end; s < buf + len;) {
			long c = strtol(s, &end, 10);
			if (end == s)
				break;
			if (c > 0 && (r = add_node(t, (pid_t)c, pid)) < 0)
				return r;
			s = end;
		}
	}
	return 0;
}

/* In a frozen cgroup nothing moves: every thread is seized and
 * interrupted now, and stops once the cgroup is thawed (wait_all). */
static int seize_frozen(struct tree_node *n)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t k, cnt;
	int r = list_tids(n->pid, &tids, &cnt);
	if (r < 0)
		return r;
	n->tids = calloc(cnt + 1, sizeof(pid_t));
	if (!n->tids)
		return -ENOMEM;
	n->tids[n->ntids++] = n->pid;
	for (k = 0; k < cnt; k++)
		if (tids[k] != n->pid)
			n->tids[n->ntids++] = tids[k];
	for (k = 0; k < n->ntids; k++)
		if ((r = seize_start(n->tids[k], SEIZE_OPTS_DUMP)) < 0)
			break;
	n->ntids = k; /* only what is seized is let go on failure */
	return r;
}

static int wait_all(const struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->v[i].ntids; k++) {
			int r = seize_wait(t->v[i].tids[k]);
			if (r < 0)
				return log_error_errno(r, "tid %d did not stop after the thaw: %m", t->v[i].tids[k]);
		}
	return 0;
}

static int seize_node(struct tree *t, size_t i, bool frozen)
{
	struct tree_node *n = &t->v[i];
	struct proc_stat st;
	int r = read_stat(n->pid, &st);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	/* Stopped by a signal before we came (stat shows the signal as its
	 * exit code); the restore stops it again. */
	if (st.state == 'T')
		n->stop_sig = st.exit_code > 0 && st.exit_code < 65 ? st.exit_code : SIGSTOP;
	if (st.state != 'Z' && (r = vfork_check(n->pid)) < 0)
		return r;
	if (st.state == 'Z') {
		if (st.num_threads > 1)
			return log_error_errno(-EOPNOTSUPP, "pid %d: its main thread has exited while %ld other "
					       "threads run, which cannot be checkpointed", n->pid, st.num_threads - 1);
		n->zombie = true;
	} else if ((r = frozen ? seize_frozen(n) : seize_all(n->pid, SEIZE_OPTS_DUMP, &n->tids, &n->ntids)) < 0) {
		if (r == -ESRCH || r == -EPERM) {
			/* It may have exited between the listing and the seize. */
			if (read_stat(n->pid, &st) < 0)
				return -ESRCH;
			if (st.state == 'Z' && st.num_threads <= 1) {
				n->zombie = true;
				goto zombie;
			}
		}
		/* Alive but not seizable (a thread left mid-seize...): never
		 * "gone", which would drop it from the tree. */
		return seize_refused(n->pid, r);
	}
	/* Read again now that it is stopped: these cannot change any more. */
	if (!n->zombie && (r = read_stat(n->pid, &st)) < 0)
		return log_error_errno(r, "pid %d: cannot read stat: %m", n->pid);
zombie:
	n->pgid = st.pgrp;
	n->sid = st.session;
	n->exit_status = st.exit_code;
	n->tty = st.tty_nr;
	memcpy(n->comm, st.comm, sizeof(n->comm));
	if (i == 0) {
		if (n->zombie)
			return log_error_errno(-ESRCH, "pid %d is a zombie", n->pid);
		n->ppid = st.ppid;
	} else if (st.ppid != n->ppid) {
		return log_error_errno(-EAGAIN, "pid %d left its parent %d during the freeze", n->pid, n->ppid);
	}
	return n->zombie ? 0 : add_children(t, i);
}

void tree_detach(const struct tree *t)
{
	for (size_t i = t->n; i-- > 0;)
		for (size_t k = 0; k < t->v[i].ntids; k++)
			detach_thread(t->v[i].tids[k]);
}

int tree_seize(pid_t root, struct tree *ret, struct freezer *fz)
{
	struct tree t = { 0 };
	bool frozen = freezer_find(root, fz) == 1 && freezer_set(fz, true) == 0;
	if (frozen)
		log_debug("pid %d: cgroup %s frozen while the tree is seized", root, fz->dir);
	int r = add_node(&t, root, 0);
	for (size_t i = 0; r >= 0 && i < t.n; i++) {
		r = seize_node(&t, i, frozen);
		if (r == -ESRCH && i > 0) {
			/* Gone (reaped) before we got to it: it is not in the tree. */
			for (size_t k = 0; k < t.v[i].ntids; k++)
				detach_thread(t.v[i].tids[k]);
			free(t.v[i].tids);
			memmove(&t.v[i], &t.v[i + 1], (t.n - i - 1) * sizeof(t.v[0]));
			t.n--;
			i--;
			r = 0;
		}
	}
	if (frozen && freezer_set(fz, false) < 0 && r >= 0)
		r = -EIO;
	if (frozen && r >= 0)
		r = wait_all(&t);
	if (r < 0) {
		tree_detach(&t);
		tree_free(&t);
		return r;
	}
	*ret = t;
	return 0;
}

/* Whether some pid of the tree names a process group that exists. A
 * session or group id is the pid of its leader, which the kernel gives
 * no one else while it lives; a live session leader leads its group too
 * (it cannot leave it). So where this is false, no process outside the
 * tree is in a session or group that tree_find() would find. */
static bool names_a_group(const struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (kill(-t->v[i].pid, 0) == 0 || errno != ESRCH)
			return true;
	return false;
}

/* Processes outside the tree that share one of its sessions or groups
 * were reparented away from it: restoring without them would split the
 * session, so the dump says who they are. The scan reads every process
 * of the machine: only where names_a_group() says it can find any. */
static int check_escapees(const struct tree *t)
{
	if (!names_a_group(t))
		return 0;
	_cleanup_closedir_ DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t pid;
		struct proc_stat st;
		if (parse_pid(de->d_name, &pid) < 0 || tree_find(t, pid) || read_stat(pid, &st) < 0)
			continue;
		const struct tree_node *s = tree_find(t, st.session), *g = tree_find(t, st.pgrp);
		if (s || g)
			return log_error_errno(-EOPNOTSUPP, "pid %d (%s) is in %s %d of the tree but is not a "
					       "descendant of pid %d (reparented?); it would be left behind",
					       pid, st.comm, s ? "session" : "process group", s ? st.session : st.pgrp,
					       t->v[0].pid);
	}
	return 0;
}

int tree_check(const struct tree *t)
{
	const struct tree_node *root = &t->v[0];
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_node *n = &t->v[i], *p = i ? tree_find(t, n->ppid) : NULL;
		if (n->sid == n->pid && n->zombie)
			return log_error_errno(-EOPNOTSUPP, "pid %d: a zombie session leader cannot be restored", n->pid);
		if (p && n->sid != n->pid && n->sid != p->sid)
			return log_error_errno(-EOPNOTSUPP, "pid %d is in session %d but its parent %d is in %d; "
					       "such a session cannot be rebuilt", n->pid, n->sid, p->pid, p->sid);
		if (n->pgid != n->pid && !tree_find(t, n->pgid) && n->pgid != root->pgid)
			return log_error_errno(-EOPNOTSUPP, "pid %d is in process group %d whose leader is not "
					       "part of the tree", n->pid, n->pgid);
		if (n->pgid != n->pid && tree_find(t, n->pgid) && tree_find(t, n->pgid)->sid != n->sid)
			return log_error_errno(-EOPNOTSUPP, "pid %d: process group %d is in another session",
					       n->pid, n->pgid);
	}
	if (root->pgid != root->pid && tree_find(t, root->pgid))
		return log_error_errno(-EINVAL, "pid %d: bad process group %d", root->pid, root->pgid);
	return check_escapees(t);
}

static void node_to_json(const struct tree_node *n, struct json_builder *o)
{
	jb_int(o, "pid", n->pid);
	jb_int(o, "ppid", n->ppid);
	jb_int(o, "pgid", n->pgid);
	jb_int(o, "sid", n->sid);
	jb_str(o, "comm", n->comm);
	json_t *tids = jb_array(o, "threads");
	for (size_t k = 0; tids && k < n->ntids; k++)
		jb_append(o, tids, json_integer(n->tids[k]));
	if (n->stop_sig)
		jb_int(o, "stopped", n->stop_sig);
	if (n->share)
		jb_int(o, "share", (int)n->share);
	if (n->share_with)
		jb_int(o, "share_with", n->share_with);
	if (n->zombie) {
		jb_bool(o, "zombie", true);
		jb_int(o, "exit_status", n->exit_status);
	}
}

void tree_to_json(const struct tree *t, struct json_builder *body)
{
	json_t *a = jb_array(body, "tree");
	for (size_t i = 0; a && i < t->n; i++) {
		struct json_builder o;
		jb_begin(&o);
		node_to_json(&t->v[i], &o);
		jb_append_obj(body, a, &o);
	}
}

static int node_from_json(const json_t *o, struct tree_node *n)
{
	json_t *tids, *z = json_object_get(o, "zombie");
	const char *comm = "";
	if (json_get_int(o, "pid", &n->pid) < 0 || json_get_int(o, "ppid", &n->ppid) < 0 ||
	    json_get_int(o, "pgid", &n->pgid) < 0 || json_get_int(o, "sid", &n->sid) < 0 ||
	    json_get_array(o, "threads", 65536, &tids) < 0 || n->pid < 1)
		return -EBADMSG;
	(void)json_get_str(o, "comm", &comm);
	snprintf(n->comm, sizeof(n->comm), "%s", comm);
	n->zombie = json_is_true(z);
	if (json_object_get(o, "stopped") &&
	    (json_get_int(o, "stopped", &n->stop_sig) < 0 || n->stop_sig < 1 || n->stop_sig > 64 || n->zombie))
		return -EBADMSG;
	if (n->zombie && (json_get_int(o, "exit_status", &n->exit_status) < 0 || json_array_size(tids)))
		return -EBADMSG;
	int share = 0; /* absent before version 4: nothing shared */
	if (json_object_get(o, "share") && (json_get_int(o, "share", &share) < 0 || share < 0 || share > 15 ||
					    ((share & 8) && !(share & 4)) || n->zombie))
		return -EBADMSG;
	n->share = (unsigned)share;
	/* Absent: shared with the parent. A sibling gives a table or fs info only. */
	if (json_object_get(o, "share_with") &&
	    (json_get_int(o, "share_with", &n->share_with) < 0 || n->share_with < 1 || !share ||
	     (share & ~3))) /* SHARE_FILES | SHARE_FS */
		return -EBADMSG;
	if (!n->zombie && !json_array_size(tids))
		return -EBADMSG;
	n->ntids = json_array_size(tids);
	n->tids = calloc(n->ntids + 1, sizeof(pid_t));
	if (!n->tids)
		return -ENOMEM;
	for (size_t k = 0; k < n->ntids; k++) {
		json_t *x = json_array_get(tids, k);
		if (!json_is_integer(x) || json_integer_value(x) <= 0 || json_integer_value(x) > 0x3fffffff)
			return -EBADMSG;
		n->tids[k] = (pid_t)json_integer_value(x);
	}
	if (n->ntids && n->tids[0] != n->pid)
		return -EBADMSG;
	return 0;
}

int tree_from_json(const json_t *j, struct tree *ret)
{
	size_t n = json_array_size(j);
	if (!json_is_array(j) || n == 0 || n > MAX_TREE)
		return -EBADMSG;
	struct tree t = { .v = calloc(n, sizeof(struct tree_node)) };
	if (!t.v)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct tree_node *x = &t.v[i];
		r = node_from_json(json_array_get(j, i), x);
		t.n = i + 1;
		if (r == 0 && tree_find(&(struct tree){ t.v, i }, x->pid))
			r = -EBADMSG; /* duplicate */
		if (r == 0 && i > 0 && !tree_find(&(struct tree){ t.v, i }, x->ppid))
			r = -EBADMSG; /* parent must come first */
		if (r == 0 && i > 0 && tree_find(&t, x->ppid)->zombie)
			r = -EBADMSG;
		/* A sibling that shares with it comes before it, alive. */
		const struct tree_node *w = r == 0 && x->share_with ? tree_find(&(struct tree){ t.v, i }, x->share_with) : NULL;
		if (r == 0 && x->share_with && (!w || w->zombie || w->ppid != x->ppid || i == 0))
			r = -EBADMSG;
	}
	if (r == 0 && (t.v[0].zombie || t.v[0].share))
		r = -EBADMSG;
	if (r < 0) {
		tree_free(&t);
		return r;
	}
	*ret = t;
	return 0;
}

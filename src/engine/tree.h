/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The process tree: which processes a dump takes (the root and all its
 * descendants), frozen together, and the links the restore rebuilds
 * (parent, session, process group, zombies). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "image/json.h"

#define MAX_TREE 4096

struct tree_node {
	pid_t pid, ppid, pgid, sid;
	bool zombie;
	int exit_status; /* zombies: the wait status their parent will read */
	char comm[16];
	int tty;          /* controlling terminal (tty_nr), 0 for none */
	int stop_sig;     /* stopped (SIGSTOP, SIGTSTP...): the signal, else 0 */
	unsigned share;   /* SHARE_* (share.h): what it shares with its parent */
	pid_t share_with; /* 0, or the sibling it shares share with instead (share.h) */
	pid_t *tids;     /* live processes: every thread, main thread first */
	size_t ntids;
};

/* Parents come before their children (breadth first from the root). */
struct tree {
	struct tree_node *v;
	size_t n;
};

void tree_free(struct tree *t);
struct freezer;
/* Seizes root and every descendant, thread by thread, until no process
 * can fork or exit unseen. On failure nothing stays seized. fz receives
 * the tree's own cgroup, frozen while the tree is seized (fz->frozen). */
int tree_seize(pid_t root, struct tree *ret, struct freezer *fz);
void tree_detach(const struct tree *t);
/* Refuses (naming the pid) what the restore could not rebuild: a session
 * or group whose leader is outside the tree, and processes of the tree's
 * sessions that are not in it (reparented). A session's terminal is
 * checked with the fds (tty_check_sessions, tty.h). */
int tree_check(const struct tree *t);
struct tree_node *tree_find(const struct tree *t, pid_t pid);
/* The highest pid or tid of the tree: a restore needs every one up to it
 * free, so whatever helps it in the same pid namespace stays above. */
pid_t tree_max_pid(const struct tree *t);
/* The root's session is the restorer's when it was not the root's own. */
bool tree_sid_external(const struct tree *t, pid_t sid);

/* Adds "tree" to the manifest's body; an error stays in the builder. */
void tree_to_json(const struct tree *t, struct json_builder *body);
/* Reads and validates the manifest's tree (root first, parents before
 * children, unique pids). */
int tree_from_json(const json_t *j, struct tree *ret);

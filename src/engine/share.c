/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fd tables, fs info, memory and signal handlers shared between
 * processes (share.h).
 *
 * On restore a child is forked by its parent's stub, so CLONE_FILES or
 * CLONE_FS in that fork shares the table or fs info with the parent as
 * the original did; the table is then filled once, by the last of its
 * sharers (share_restores_files). A child that shares its parent's
 * memory (CLONE_VM, and CLONE_SIGHAND with it) is forked by the parent's
 * stub after the parent's memory is in place: it has it at once and
 * restores none of its own. What the tree shares with a process other
 * than its parent (a sibling, after the parent let go of it, or a
 * process outside the tree) has no fork to come from, and a vfork child
 * before its exec has a parent blocked in the kernel until the child
 * execs or exits, a wait no syscall enters again: both are refused
 * rather than restored as copies that no longer see each other. */
#include <errno.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/share.h"
#include "engine/vfork.h"
#include "util/log.h"

static bool same(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) == 0;
}

static bool parent_in_tree(const struct tree *t, size_t i)
{
	return i > 0 && tree_find(t, t->v[i].ppid);
}

/* Whether k got the object from i through forks that each shared it. */
static bool forked_from(const struct tree *t, size_t k, size_t i, int type)
{
	while (k != i && parent_in_tree(t, k) && same(t->v[k].ppid, t->v[k].pid, type))
		k = (size_t)(tree_find(t, t->v[k].ppid) - t->v);
	return k == i;
}

/* Shared with its parent, or only with children that share it with
 * their parent (a chain of forks) is fine; the rest is refused. */
static const char *probe_one(const struct tree *t, size_t i, int type, pid_t *ret_with)
{
	const struct tree_node *n = &t->v[i];
	if (parent_in_tree(t, i) && same(n->ppid, n->pid, type))
		return NULL;
	if (!parent_in_tree(t, i) && n->ppid > 0 && same(n->ppid, n->pid, type)) {
		*ret_with = n->ppid;
		return "outside the tree";
	}
	for (size_t k = 0; k < t->n; k++)
		if (k != i && !t->v[k].zombie && !forked_from(t, k, i, type) && same(t->v[k].pid, n->pid, type)) {
			*ret_with = t->v[k].pid;
			return "not its parent";
		}
	return NULL;
}

static const char *probe(const struct tree *t, size_t i, pid_t *ret_with)
{
	static const struct {
		int type;
		const char *what;
	} kinds[] = { { KCMP_VM, "its memory (CLONE_VM)" },
		      { KCMP_SIGHAND, "its signal handlers (CLONE_SIGHAND)" },
		      { KCMP_FILES, "its fd table (CLONE_FILES)" },
		      { KCMP_FS, "its cwd, root and umask (CLONE_FS)" } };
	const struct tree_node *n = &t->v[i];
	for (size_t k = 0; !n->zombie && k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (probe_one(t, i, kinds[k].type, ret_with))
			return kinds[k].what;
	return NULL;
}

int share_check_node(const struct tree *t, size_t i)
{
	pid_t with = 0;
	const char *why = probe(t, i, &with);
	const struct tree_node *n = &t->v[i];
	if (!n->zombie && parent_in_tree(t, i) && same(n->ppid, n->pid, KCMP_VM) && vfork_waiting(n->ppid))
		return vfork_refuse(n->pid, n->ppid);
	if (why)
		return log_error_errno(-EOPNOTSUPP, "pid %d shares %s with pid %d, which stasis cannot restore "
				       "(it restores only what a process shares with its parent)",
				       t->v[i].pid, why, with);
	return 0;
}

int share_collect(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct tree_node *n = &t->v[i];
		int r = share_check_node(t, i);
		if (r < 0)
			return r;
		n->share = 0;
		if (!n->zombie && parent_in_tree(t, i)) {
			n->share |= same(n->ppid, n->pid, KCMP_FILES) ? SHARE_FILES : 0;
			n->share |= same(n->ppid, n->pid, KCMP_FS) ? SHARE_FS : 0;
			n->share |= same(n->ppid, n->pid, KCMP_VM) ? SHARE_VM : 0;
			/* CLONE_SIGHAND needs CLONE_VM: the kernel allows no other. */
			n->share |= (n->share & SHARE_VM) && same(n->ppid, n->pid, KCMP_SIGHAND) ? SHARE_SIGHAND : 0;
		}
	}
	return 0;
}

unsigned long share_clone_flags(const struct tree_node *n)
{
	return (n->share & SHARE_FILES ? CLONE_FILES : 0) | (n->share & SHARE_FS ? CLONE_FS : 0) |
	       (n->share & SHARE_VM ? CLONE_VM : 0) | (n->share & SHARE_SIGHAND ? CLONE_SIGHAND : 0);
}

size_t share_files_owner(const struct tree *t, size_t i)
{
	while (t->v[i].share & SHARE_FILES) {
		const struct tree_node *p = tree_find(t, t->v[i].ppid);
		if (!p)
			break;
		i = (size_t)(p - t->v);
	}
	return i;
}

bool share_restores_files(const struct tree *t, size_t i)
{
	size_t own = share_files_owner(t, i);
	for (size_t k = i + 1; k < t->n; k++)
		if (!t->v[k].zombie && share_files_owner(t, k) == own)
			return false;
	return true;
}

static size_t mm_owner(const struct tree *t, size_t i)
{
	while (t->v[i].share & SHARE_VM) {
		const struct tree_node *p = tree_find(t, t->v[i].ppid);
		if (!p)
			break;
		i = (size_t)(p - t->v);
	}
	return i;
}

bool share_restores_mm_last(const struct tree *t, size_t i)
{
	size_t own = mm_owner(t, i);
	for (size_t k = i + 1; k < t->n; k++)
		if (!t->v[k].zombie && mm_owner(t, k) == own)
			return false;
	return true;
}

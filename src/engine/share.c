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
 * restores none of its own.
 *
 * A table or fs info shared with a sibling and not with the parent (two
 * children of one clone(CLONE_FILES) parent that let go of its copy, or
 * a child made with CLONE_PARENT) comes the same way from the sibling:
 * the earlier sibling's stub makes the later one with CLONE_PARENT and
 * the shared flags (share_with), so that its parent is still theirs. It
 * then starts in the sibling's session and group: a different group is
 * joined later (restore-tree.c), a different session cannot be, and is
 * refused unless the process leads its own.
 *
 * What the tree shares any other way (with a cousin, with a process
 * outside the tree; memory or handlers with a sibling), and a vfork
 * child before its exec, whose parent is blocked in the kernel until the
 * child execs or exits, a wait no syscall enters again, are refused
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

static size_t index_of(const struct tree *t, pid_t pid)
{
	return (size_t)(tree_find(t, pid) - t->v);
}

static unsigned shared_with(pid_t a, pid_t b, bool sibling)
{
	unsigned s = (same(a, b, KCMP_FILES) ? SHARE_FILES : 0) | (same(a, b, KCMP_FS) ? SHARE_FS : 0);
	if (sibling)
		return s; /* memory comes from the parent's stub only */
	s |= same(a, b, KCMP_VM) ? SHARE_VM : 0;
	/* CLONE_SIGHAND needs CLONE_VM: the kernel allows no other. */
	return s | ((s & SHARE_VM) && same(a, b, KCMP_SIGHAND) ? SHARE_SIGHAND : 0);
}

/* The process whose stub makes node i on restore, and what i shares with
 * it (*ret_share): its parent, or else the first earlier sibling it shares
 * a table or fs info with. -1 for the root and zombies. */
static ssize_t maker_of(const struct tree *t, size_t i, unsigned *ret_share)
{
	const struct tree_node *n = &t->v[i];
	*ret_share = 0;
	if (n->zombie || !parent_in_tree(t, i))
		return -1;
	if ((*ret_share = shared_with(n->ppid, n->pid, false)))
		return (ssize_t)index_of(t, n->ppid);
	for (size_t k = 0; k < i; k++)
		if (!t->v[k].zombie && t->v[k].ppid == n->ppid && (*ret_share = shared_with(t->v[k].pid, n->pid, true)))
			return (ssize_t)k;
	return (ssize_t)index_of(t, n->ppid);
}

/* The first process of the chain of makers that passed `what` down to i. */
static size_t source_of(const struct tree *t, size_t i, unsigned what)
{
	unsigned s;
	ssize_t m;
	while ((m = maker_of(t, i, &s)) >= 0 && (s & what))
		i = (size_t)m;
	return i;
}

/* Shared along the chain of makers is fine; the rest is refused. */
static const char *probe_one(const struct tree *t, size_t i, int type, unsigned what, pid_t *ret_with)
{
	const struct tree_node *n = &t->v[i];
	if (!parent_in_tree(t, i) && n->ppid > 0 && same(n->ppid, n->pid, type)) {
		*ret_with = n->ppid;
		return "outside the tree";
	}
	size_t src = source_of(t, i, what);
	for (size_t k = 0; k < t->n; k++)
		if (k != i && !t->v[k].zombie && same(t->v[k].pid, n->pid, type) && source_of(t, k, what) != src) {
			*ret_with = t->v[k].pid;
			return what & (SHARE_FILES | SHARE_FS) ? "neither its parent nor a sibling" : "not its parent";
		}
	return NULL;
}

/* What i shares that cannot be made again: the object, *ret_with the
 * process it is shared with, *ret_how why that one cannot give it. */
static const char *probe(const struct tree *t, size_t i, pid_t *ret_with, const char **ret_how)
{
	static const struct {
		int type;
		unsigned what;
		const char *desc;
	} kinds[] = { { KCMP_VM, SHARE_VM, "its memory (CLONE_VM)" },
		      { KCMP_SIGHAND, SHARE_SIGHAND, "its signal handlers (CLONE_SIGHAND)" },
		      { KCMP_FILES, SHARE_FILES, "its fd table (CLONE_FILES)" },
		      { KCMP_FS, SHARE_FS, "its cwd, root and umask (CLONE_FS)" } };
	const struct tree_node *n = &t->v[i];
	for (size_t k = 0; !n->zombie && k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if ((*ret_how = probe_one(t, i, kinds[k].type, kinds[k].what, ret_with)))
			return kinds[k].desc;
	return NULL;
}

/* A process made by its sibling's stub starts in the sibling's session
 * and group: another group can be joined, another session only made. */
static int check_sibling(const struct tree *t, size_t i, ssize_t m, unsigned s)
{
	const struct tree_node *n = &t->v[i], *x = m >= 0 ? &t->v[m] : NULL;
	if (!x || x->pid == n->ppid)
		return 0;
	if (n->sid != x->sid && n->sid != n->pid)
		return log_error_errno(-EOPNOTSUPP, "pid %d shares its %s with its sibling %d, which is in another "
				       "session (%d, not %d); stasis cannot restore that", n->pid,
				       s & SHARE_FILES ? "fd table" : "cwd, root and umask", x->pid, x->sid, n->sid);
	if (n->pgid != x->pgid && n->pgid != n->pid && n->sid == x->sid && !tree_find(t, n->pgid))
		return log_error_errno(-EOPNOTSUPP, "pid %d shares its %s with its sibling %d but is in process group "
				       "%d, whose leader is outside the tree; stasis cannot restore that", n->pid,
				       s & SHARE_FILES ? "fd table" : "cwd, root and umask", x->pid, n->pgid);
	return 0;
}

/* *ret_maker and *ret_share: maker_of's answer, for share_collect. */
static int check_node(const struct tree *t, size_t i, ssize_t *ret_maker, unsigned *ret_share)
{
	pid_t with = 0;
	const char *how = NULL, *why = probe(t, i, &with, &how);
	const struct tree_node *n = &t->v[i];
	if (!n->zombie && parent_in_tree(t, i) && same(n->ppid, n->pid, KCMP_VM) && vfork_waiting(n->ppid))
		return vfork_refuse(n->pid, n->ppid);
	if (why)
		return log_error_errno(-EOPNOTSUPP, "pid %d shares %s with pid %d, %s, which stasis cannot restore "
				       "(it restores what a process shares with its parent, and a table or fs info "
				       "shared with a sibling)", t->v[i].pid, why, with, how);
	*ret_maker = maker_of(t, i, ret_share);
	return check_sibling(t, i, *ret_maker, *ret_share);
}

int share_check_node(const struct tree *t, size_t i)
{
	ssize_t m;
	unsigned s;
	return check_node(t, i, &m, &s);
}

int share_collect(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct tree_node *n = &t->v[i];
		unsigned s;
		ssize_t m;
		int r = check_node(t, i, &m, &s);
		if (r < 0)
			return r;
		n->share = s;
		n->share_with = m >= 0 && s && t->v[m].pid != n->ppid ? t->v[m].pid : 0;
	}
	return 0;
}

unsigned long share_clone_flags(const struct tree_node *n)
{
	return (n->share & SHARE_FILES ? CLONE_FILES : 0) | (n->share & SHARE_FS ? CLONE_FS : 0) |
	       (n->share & SHARE_VM ? CLONE_VM : 0) | (n->share & SHARE_SIGHAND ? CLONE_SIGHAND : 0) |
	       (n->share_with ? CLONE_PARENT : 0);
}

pid_t share_maker(const struct tree_node *n)
{
	return n->share_with ? n->share_with : n->ppid;
}

/* The first process of the chain of makers that shares `what` with i,
 * from the tree's recorded share flags (on restore, kcmp has nothing to
 * compare yet). */
static size_t owner_of(const struct tree *t, size_t i, unsigned what)
{
	while (t->v[i].share & what) {
		const struct tree_node *p = tree_find(t, share_maker(&t->v[i]));
		if (!p)
			break;
		i = (size_t)(p - t->v);
	}
	return i;
}

/* Whether i is the last live process that shares `what` with its owner. */
static bool last_of(const struct tree *t, size_t i, unsigned what)
{
	size_t own = owner_of(t, i, what);
	for (size_t k = i + 1; k < t->n; k++)
		if (!t->v[k].zombie && owner_of(t, k, what) == own)
			return false;
	return true;
}

size_t share_files_owner(const struct tree *t, size_t i)
{
	return owner_of(t, i, SHARE_FILES);
}

bool share_restores_files(const struct tree *t, size_t i)
{
	return last_of(t, i, SHARE_FILES);
}

bool share_restores_mm_last(const struct tree *t, size_t i)
{
	return last_of(t, i, SHARE_VM);
}

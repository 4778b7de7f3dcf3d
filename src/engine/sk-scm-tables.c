/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fds in flight of the tree as tables of their own (files.h,
 * struct files_inflight): one per message of a unix queue, after the
 * tree's tables, so that what the fd kinds do across the tree (number
 * the open file descriptions with kcmp, find a pipe's other end or a
 * pty's master, make a description once for all its holders) counts the
 * fds in flight too, without the kinds knowing about queues.
 *
 * At restore each socket's queue is taken once, from its first holder in
 * tree order (the one restore refills), then the queues of the sockets in
 * flight in it, and so on; at dump every holder's (each holder read the
 * queue, and each record is written). Sockets in flight are not put in the tables: they come
 * with their own queue and peer (sk-scm.c, sockets.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/files.h"
#include "engine/sockets.h"

extern const struct fd_ops fd_socket_ops;

/* Descriptions of records of images that numbered fds in flight by
 * inode (SK_SCM_DESC | inode): each gets one of its own. */
#define LEGACY_DESC (SK_SCM_DESC | (1ULL << 60))

struct walk {
	struct sk_scm **msgs;
	size_t n, cap;
	uint64_t *tabled, *seen; /* inodes of the sockets in tables; of those taken */
	size_t ntabled, captabled, nseen, capseen;
};

static struct sk_rec *sk_of(const struct fd_rec *o)
{
	return o->ops == &fd_socket_ops ? o->state : NULL;
}

static int push(void **p, size_t *n, size_t *cap, size_t size)
{
	if (*n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, c * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static bool has(const uint64_t *v, size_t n, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == ino)
			return true;
	return false;
}

static int add_ino(uint64_t **v, size_t *n, size_t *cap, uint64_t ino)
{
	int r = push((void **)v, n, cap, sizeof(**v));
	if (r >= 0)
		(*v)[(*n)++] = ino;
	return r;
}

/* s's messages with fds, then those of the sockets in flight in them
 * (a socket that some table holds is taken from there). */
static int add_socket(struct walk *w, struct sk_rec *s, bool tabled)
{
	int r;
	if (has(w->seen, w->nseen, s->ino) || (!tabled && has(w->tabled, w->ntabled, s->ino)))
		return 0;
	if ((r = add_ino(&w->seen, &w->nseen, &w->capseen, s->ino)) < 0)
		return r;
	for (size_t i = 0; i < s->nscm; i++) {
		if (!s->scm[i].fds.n)
			continue;
		if ((r = push((void **)&w->msgs, &w->n, &w->cap, sizeof(*w->msgs))) < 0)
			return r;
		w->msgs[w->n++] = &s->scm[i];
	}
	for (size_t i = 0; i < s->nscm; i++)
		for (size_t k = 0; k < s->scm[i].fds.n; k++)
			if (sk_of(&s->scm[i].fds.fds[k]) && (r = add_socket(w, sk_of(&s->scm[i].fds.fds[k]), false)) < 0)
				return r;
	return 0;
}

/* dump: the queue of every holder of a socket (each was read, and each
 * record is written); restore: the first holder's, which is refilled. */
static int gather(const struct files_proc *v, size_t n, struct walk *w, bool dump)
{
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++)
		for (size_t k = 0; k < v[i].f->n && r >= 0; k++)
			if (sk_of(&v[i].f->fds[k]))
				r = add_ino(&w->tabled, &w->ntabled, &w->captabled, sk_of(&v[i].f->fds[k])->ino);
	/* The first holder in tree order: the record restore refills. */
	for (size_t i = 0; i < n && r >= 0; i++)
		for (size_t k = 0; k < v[i].f->n && r >= 0; k++)
			if (sk_of(&v[i].f->fds[k])) {
				if (dump)
					w->nseen = 0;
				r = add_socket(w, sk_of(&v[i].f->fds[k]), true);
			}
	return r;
}

static size_t count_copies(const struct walk *w)
{
	size_t n = 0;
	for (size_t i = 0; i < w->n; i++)
		for (size_t k = 0; k < w->msgs[i]->fds.n; k++)
			n += !sk_of(&w->msgs[i]->fds.fds[k]);
	return n;
}

/* The copy of o; *legacy numbers the descriptions of old images. */
static void copy_one(struct files_inflight *t, struct fd_rec *o, int fd, uint64_t *legacy)
{
	if (legacy && (o->desc & LEGACY_DESC) == SK_SCM_DESC)
		o->desc = LEGACY_DESC | (*legacy)++;
	t->orig[t->ncopies] = o;
	t->copies[t->ncopies] = *o;
	t->copies[t->ncopies].fd = fd;
	t->copies[t->ncopies].dup_of = -1;
	t->ncopies++;
}

/* One table per message that holds fds other than sockets. */
static void add_msg(struct files_inflight *t, struct sk_scm *e, bool dump, uint64_t *legacy)
{
	size_t first = t->ncopies;
	for (size_t k = 0; k < e->fds.n; k++)
		if (!sk_of(&e->fds.fds[k]))
			copy_one(t, &e->fds.fds[k], dump ? e->ours[k] : (int)k, dump ? NULL : legacy);
	if (t->ncopies == first)
		return;
	struct files_rec *f = &t->recs[t->nrecs++];
	*f = (struct files_rec){ &t->copies[first], t->ncopies - first };
	t->all[t->n++] = (struct files_proc){ getpid(), f };
}

static int build(struct files_inflight *t, const struct files_proc *v, size_t n, const struct walk *w, bool dump)
{
	size_t ncopies = count_copies(w);
	uint64_t legacy = 1;
	t->all = calloc(n + w->n + 1, sizeof(*t->all));
	t->recs = calloc(w->n + 1, sizeof(*t->recs));
	t->orig = calloc(ncopies + 1, sizeof(*t->orig));
	t->copies = calloc(ncopies + 1, sizeof(*t->copies));
	if (!t->all || !t->recs || !t->orig || !t->copies)
		return -ENOMEM;
	memcpy(t->all, v, n * sizeof(*v));
	t->n = n;
	for (size_t i = 0; i < w->n; i++)
		add_msg(t, w->msgs[i], dump, &legacy);
	return 0;
}

int files_inflight_open(const struct files_proc *v, size_t n, bool dump, struct files_inflight *ret)
{
	struct walk w = { 0 };
	*ret = (struct files_inflight){ 0 };
	int r = gather(v, n, &w, dump);
	if (r >= 0)
		r = build(ret, v, n, &w, dump);
	free(w.msgs);
	free(w.tabled);
	free(w.seen);
	if (r < 0)
		files_inflight_close(ret, false);
	return r;
}

void files_inflight_close(struct files_inflight *t, bool write_back)
{
	for (size_t i = 0; write_back && i < t->ncopies; i++) {
		t->orig[i]->desc = t->copies[i].desc;
		t->orig[i]->shared = t->copies[i].shared;
	}
	free(t->copies);
	free(t->recs);
	free(t->orig);
	free(t->all);
	*t = (struct files_inflight){ 0 };
}

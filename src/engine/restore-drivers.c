/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Several drivers restore the processes of a tree at once
 * (restore-drivers.h has the design). v[0] is the main thread, which
 * made the tree and keeps the root (in a container, its init: only its
 * tracer's exit ends it) and the root's chain; the other drivers are
 * threads that take their processes over from it. */
#include "engine/restore-drivers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/mm-fill.h"
#include "engine/restore-int.h"
#include "engine/seize.h"
#include "engine/share.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_DRIVERS 64
/* The park loop, in the scratch area's code bytes ([0, 64): "syscall;
 * int3" at 0, remote.c): "syscall; jmp" back to it. */
#define PARK_AT 16

enum { CMD_WAIT, CMD_DETACH, CMD_EXIT };

struct driver {
	struct drivers *d;
	unsigned id;
	pthread_t thread;
	bool started;
	size_t *list, n; /* its processes, in tree order */
};

struct drivers {
	struct restore_ctx *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct driver v[MAX_DRIVERS];
	unsigned n;
	unsigned *owner;                /* per process: its driver */
	bool *parked;                   /* handed over by the main thread */
	int *seized;                    /* its driver's seize_start() */
	struct user_regs_struct *saved; /* its registers before the park */
	bool planned;                   /* the handing over is done */
	size_t turn;                    /* the process whose files step is next */
	int error;                      /* the first failure */
	unsigned busy;                  /* drivers still restoring */
	int cmd;
	size_t next; /* detach: processes [0, next) left */
};

static unsigned drivers_wanted(void)
{
	uint64_t n = env_count_or_cpus("STASIS_DRIVERS", "drivers");
	return n < 1 ? 1 : n > MAX_DRIVERS ? MAX_DRIVERS : (unsigned)n;
}

static size_t index_of(const struct restore_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->procs[i].node->pid == pid)
			return i;
	return 0;
}

static size_t chain_of(size_t *up, size_t i)
{
	while (up[i] != i)
		i = up[i] = up[up[i]];
	return i;
}

static unsigned least_loaded(const size_t *load, unsigned want)
{
	unsigned best = 0;
	for (unsigned k = 1; k < want; k++)
		if (load[k] < load[best])
			best = k;
	return best;
}

/* Processes sharing anything (share.h) are one chain, on one driver; a
 * chain goes to the driver with the least work so far. The root's chain
 * stays on the main thread, and so do zombies (nothing to restore). */
static int plan(struct drivers *d, unsigned want)
{
	struct restore_ctx *c = d->c;
	size_t load[MAX_DRIVERS] = { 0 };
	size_t *up = calloc(c->n, sizeof(*up));
	unsigned *chain_owner = calloc(c->n, sizeof(*chain_owner));
	if (!up || !chain_owner) {
		free(up);
		free(chain_owner);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n; i++)
		up[i] = i, chain_owner[i] = MAX_DRIVERS;
	for (size_t i = 1; i < c->n; i++)
		if (!c->procs[i].node->zombie && c->procs[i].node->share)
			up[chain_of(up, i)] = chain_of(up, index_of(c, share_maker(c->procs[i].node)));
	chain_owner[chain_of(up, 0)] = 0;
	for (size_t i = 0; i < c->n; i++) {
		size_t head = chain_of(up, i);
		if (c->procs[i].node->zombie)
			continue; /* owner 0 */
		if (chain_owner[head] == MAX_DRIVERS)
			chain_owner[head] = least_loaded(load, want);
		d->owner[i] = chain_owner[head];
		load[d->owner[i]] += 1 + c->procs[i].p.nthreads;
	}
	free(up);
	free(chain_owner);
	return 0;
}

/* Each driver's list from the owners (the lists are allocated). */
static void make_lists(struct drivers *d)
{
	struct restore_ctx *c = d->c;
	for (unsigned k = 0; k < d->n; k++)
		d->v[k].n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (!c->procs[i].node->zombie)
			d->v[d->owner[i]].list[d->v[d->owner[i]].n++] = i;
}

static void fail(struct drivers *d, int r)
{
	pthread_mutex_lock(&d->lock);
	if (!d->error)
		d->error = r;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (d->c->fill)
		fill_pool_cancel(d->c->fill); /* no one waits long for pages */
}

static bool aborted(struct drivers *d)
{
	pthread_mutex_lock(&d->lock);
	bool a = d->error != 0;
	pthread_mutex_unlock(&d->lock);
	return a;
}

static int run_list(struct driver *v)
{
	struct drivers *d = v->d;
	for (size_t k = 0; k < v->n; k++) {
		if (aborted(d))
			return -ECANCELED;
		int r = restore_one(d->c, &d->c->procs[v->list[k]]);
		if (r < 0) {
			fail(d, r);
			return r;
		}
	}
	return 0;
}

/* Waits for a parked process seized (its parent sees no stop: an
 * interrupt's trap is reported to the tracer only) and puts its registers
 * back. */
static int take_one(struct drivers *d, size_t i, int seized)
{
	pid_t pid = d->c->procs[i].node->pid;
	struct user_regs_struct regs = d->saved[i];
	int r = seized < 0 ? seized : seize_wait(pid);
	if (r < 0)
		return log_error_errno(r, "pid %d: a restore driver cannot take it over: %m", pid);
	regs.orig_rax = (uint64_t)-1; /* no restart of the pause() it left */
	if ((r = regs_set(pid, &regs)) < 0)
		return log_error_errno(r, "pid %d: cannot put its registers back after the handover: %m", pid);
	return 0;
}

/* Every parked process of the list, even after a failure: whatever
 * exists must be traced by someone for tree_kill to reap it. All are
 * interrupted first, so that their stops come together. */
static int take_over(struct driver *v)
{
	struct drivers *d = v->d;
	int r = 0;
	for (size_t k = 0; k < v->n; k++)
		if (d->parked[v->list[k]])
			d->seized[v->list[k]] = seize_start(d->c->procs[v->list[k]].node->pid, SEIZE_OPTS_RESTORE);
	for (size_t k = 0; k < v->n; k++) {
		int e = d->parked[v->list[k]] ? take_one(d, v->list[k], d->seized[v->list[k]]) : 0;
		if (e < 0 && r >= 0)
			r = e;
	}
	return r;
}

static void done(struct driver *v, int r)
{
	struct drivers *d = v->d;
	if (r < 0)
		fail(d, r);
	pthread_mutex_lock(&d->lock);
	d->busy--;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void detach_proc(const struct rproc *p)
{
	for (size_t k = 0; !p->exited && k < p->nlive; k++)
		detach_thread(p->live[k]);
}

/* Children before their parents, whoever traces them: each driver lets
 * go of the next process when it is its own. */
static void detach_turns(struct drivers *d, unsigned me)
{
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (d->next > 0 && d->owner[d->next - 1] != me)
			pthread_cond_wait(&d->cond, &d->lock);
		if (!d->next)
			break;
		size_t i = d->next - 1;
		pthread_mutex_unlock(&d->lock);
		detach_proc(&d->c->procs[i]);
		pthread_mutex_lock(&d->lock);
		d->next = i;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

static void *driver_main(void *arg)
{
	struct driver *v = arg;
	struct drivers *d = v->d;
	sigset_t all;
	/* SIGINT and the like are the main thread's to take. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&d->lock);
	while (!d->planned)
		pthread_cond_wait(&d->cond, &d->lock);
	pthread_mutex_unlock(&d->lock);
	int r = take_over(v);
	if (r >= 0 && !aborted(d))
		r = run_list(v);
	done(v, r);
	pthread_mutex_lock(&d->lock);
	while (d->cmd == CMD_WAIT)
		pthread_cond_wait(&d->cond, &d->lock);
	int cmd = d->cmd;
	pthread_mutex_unlock(&d->lock);
	if (cmd == CMD_DETACH)
		detach_turns(d, v->id);
	return NULL;
}

/* Parks process i in the pause() loop (every signal is blocked in it
 * since its creation) and detaches it without a signal. */
static int park(struct drivers *d, size_t i)
{
	static const uint8_t loop[] = { 0x0f, 0x05, 0xeb, 0xfc };
	struct rproc *p = &d->c->procs[i];
	pid_t pid = p->node->pid;
	struct user_regs_struct regs;
	int e = regs_get(pid, &d->saved[i]);
	if (e < 0 || (e = remote_write(&p->rem, p->rem.scratch + PARK_AT, loop, sizeof(loop))) < 0)
		return log_error_errno(e, "pid %d: cannot hand it to a restore driver: %m", pid);
	regs = d->saved[i];
	regs.rip = p->rem.scratch + PARK_AT;
	regs.rax = SYS_pause;
	regs.orig_rax = (uint64_t)-1;
	if ((e = regs_set(pid, &regs)) < 0)
		return log_error_errno(e, "pid %d: cannot hand it to a restore driver: %m", pid);
	if (ptrace(PTRACE_DETACH, pid, 0, 0) < 0) {
		e = -errno;
		(void)regs_set(pid, &d->saved[i]);
		return log_error_errno(e, "pid %d: cannot hand it to a restore driver: %m", pid);
	}
	d->parked[i] = true;
	return 0;
}

/* Which processes (tree order indexes) each driver has; tests read it. */
static void log_lists(const struct drivers *d)
{
	for (unsigned k = 0; log_debug_enabled() && k < d->n; k++) {
		char buf[1024];
		size_t at = 0;
		for (size_t j = 0; j < d->v[k].n && at < sizeof(buf) - 24; j++)
			at += (size_t)snprintf(buf + at, sizeof(buf) - at, " %zu", d->v[k].list[j]);
		if (d->v[k].n)
			log_debug("restore driver %u has processes%s", k, buf);
	}
}

/* Threads for the drivers with work (one that cannot start leaves its
 * work to the main thread), then their processes handed over. The main
 * thread always has work: the root. */
static int start(struct drivers *d)
{
	struct restore_ctx *c = d->c;
	int r = 0;
	d->busy = 1;
	for (unsigned k = 1; k < d->n; k++) {
		struct driver *v = &d->v[k];
		if (!v->n)
			continue;
		pthread_mutex_lock(&d->lock);
		v->started = pthread_create(&v->thread, NULL, driver_main, v) == 0;
		d->busy += v->started;
		pthread_mutex_unlock(&d->lock);
		for (size_t j = 0; !v->started && j < v->n; j++)
			d->owner[v->list[j]] = 0;
	}
	make_lists(d);
	log_lists(d);
	for (size_t i = 0; r >= 0 && i < c->n; i++)
		if (d->owner[i] && (r = park(d, i)) < 0)
			fail(d, r);
	pthread_mutex_lock(&d->lock);
	d->planned = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int alloc_drivers(struct restore_ctx *c, unsigned want, struct drivers **ret)
{
	struct drivers *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*ret = d;
	d->c = c;
	d->n = want;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	for (unsigned k = 0; k < want; k++)
		d->v[k] = (struct driver){ .d = d, .id = k };
	d->owner = calloc(c->n, sizeof(*d->owner));
	d->parked = calloc(c->n, sizeof(*d->parked));
	d->saved = calloc(c->n, sizeof(*d->saved));
	d->seized = calloc(c->n, sizeof(*d->seized));
	for (unsigned k = 0; k < want; k++)
		if (!(d->v[k].list = calloc(c->n, sizeof(*d->v[k].list))))
			return -ENOMEM;
	if (!d->owner || !d->parked || !d->saved || !d->seized || plan(d, want) < 0)
		return -ENOMEM;
	make_lists(d);
	return 0;
}

static int run_alone(struct restore_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		int r = c->procs[i].node->zombie ? 0 : restore_one(c, &c->procs[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

int drivers_run(struct restore_ctx *c)
{
	unsigned want = drivers_wanted();
	uint64_t t0 = now_ns();
	if (want > c->n)
		want = (unsigned)c->n;
	if (want <= 1) {
		int r = run_alone(c);
		log_debug("%zu processes restored by 1 driver in %.1f ms", c->n, (double)(now_ns() - t0) / 1e6);
		return r;
	}
	struct drivers *d = NULL;
	int r = alloc_drivers(c, want, &d);
	c->drv = d;
	if (r < 0)
		return r;
	if ((r = start(d)) >= 0)
		r = run_list(&d->v[0]);
	done(&d->v[0], r);
	pthread_mutex_lock(&d->lock);
	while (d->busy)
		pthread_cond_wait(&d->cond, &d->lock);
	r = d->error;
	pthread_mutex_unlock(&d->lock);
	unsigned used = 0;
	for (unsigned k = 0; k < d->n; k++)
		used += d->v[k].n > 0;
	log_debug("%zu processes restored by %u drivers in %.1f ms", c->n, used, (double)(now_ns() - t0) / 1e6);
	return r;
}

static size_t next_live(const struct restore_ctx *c, size_t i)
{
	while (i < c->n && c->procs[i].node->zombie)
		i++;
	return i;
}

int drivers_files_begin(struct restore_ctx *c, size_t idx)
{
	struct drivers *d = c->drv;
	if (!d)
		return 0;
	pthread_mutex_lock(&d->lock);
	while (d->turn < idx && !d->error)
		pthread_cond_wait(&d->cond, &d->lock);
	int r = d->error ? -ECANCELED : 0;
	pthread_mutex_unlock(&d->lock);
	return r;
}

void drivers_files_end(struct restore_ctx *c, size_t idx)
{
	struct drivers *d = c->drv;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->turn = next_live(c, idx + 1);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

void drivers_detach(struct restore_ctx *c)
{
	struct drivers *d = c->drv;
	if (!d) {
		for (size_t i = c->n; i-- > 0;)
			detach_proc(&c->procs[i]);
		return;
	}
	pthread_mutex_lock(&d->lock);
	d->cmd = CMD_DETACH;
	d->next = c->n;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	detach_turns(d, 0);
}

void drivers_end(struct restore_ctx *c)
{
	struct drivers *d = c->drv;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->cmd == CMD_WAIT)
		d->cmd = CMD_EXIT;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	for (unsigned k = 1; k < d->n; k++)
		if (d->v[k].started)
			pthread_join(d->v[k].thread, NULL);
	for (unsigned k = 0; k < d->n; k++)
		free(d->v[k].list);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d->owner);
	free(d->parked);
	free(d->saved);
	free(d->seized);
	free(d);
	c->drv = NULL;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Process-wide signal state: handlers (sigaction), interval timers and
 * the shared pending queue. Per-thread masks live in thread.c. */
#pragma once

#include <signal.h>
#include <sys/time.h>

#include "engine/remote.h"
#include "engine/syscalls.h"
#include "image/json.h"

#define NSIG_K 64

struct signals_rec {
	struct k_sigaction act[NSIG_K + 1]; /* [1..64] */
	struct itimerval itimer[3];
	siginfo_t *shared;
	size_t nshared;
};

void signals_rec_free(struct signals_rec *s);
int signals_dump(struct remote *r, pid_t tid, struct signals_rec *s);
/* Adds "sigactions", "itimers" and "shared_pending" to the core record. */
void signals_to_json(const struct signals_rec *s, struct json_builder *core);
int signals_from_json(const json_t *core, struct signals_rec *s);
/* Handlers and timers; pending signals are queued by signals_restore_pending. */
int signals_restore(struct remote *r, pid_t tid, const struct signals_rec *s);
int signals_restore_pending(struct remote *r, pid_t pid, const struct signals_rec *s);
/* Sets SIGTRAP's action again: the int3 that ends a remote call of the
 * restore resets it (remote_run_code). After the last such call. */
int signals_restore_trap(struct remote *r, pid_t pid, const struct signals_rec *s);

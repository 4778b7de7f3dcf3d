/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File locks held by the process: flock(), POSIX record locks (F_SETLK)
 * and open file description locks (F_OFD_SETLK). Each is kept with the fd
 * it is reached through and taken again on that fd after restore. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/files.h"
#include "engine/remote.h"
#include "image/json.h"

#define MAX_FILE_LOCKS 65536

enum lock_kind { LOCK_KIND_FLOCK, LOCK_KIND_POSIX, LOCK_KIND_OFD };

struct file_lock_rec {
	int fd;
	enum lock_kind kind;
	bool write;      /* WRITE (exclusive), else READ (shared) */
	uint64_t start;
	uint64_t len;    /* bytes from start; 0: to the end of file, and always for flock */
};

struct locks_rec {
	struct file_lock_rec *l;
	size_t n;
};

void locks_rec_free(struct locks_rec *l);
/* Pure parser of the "lock:" lines of one fd's fdinfo: appends to *l the
 * locks of this fd that the process holds (POSIX ones with owner pid,
 * flock and OFD ones all, since fdinfo only shows those of the fd's own
 * open file description). Waiting ("->") lines are skipped; leases and
 * delegations are refused with -EOPNOTSUPP. */
int locks_parse_fdinfo(const char *buf, size_t len, int fd, pid_t pid, struct locks_rec *l);
/* Reads the locks of every fd of f (one fd per open file description). */
int locks_collect(int procfd, pid_t pid, const struct files_rec *f, struct locks_rec *l);
/* As the "file_locks" array of core-PID.json (absent: none). */
/* Adds "file_locks" to the core record; an error stays in the builder. */
void locks_to_json(const struct locks_rec *l, struct json_builder *core);
int locks_from_json(const json_t *core, struct locks_rec *l);
/* Takes the locks again; the fds must be in place. */
int locks_restore(struct remote *r, pid_t pid, const struct locks_rec *l);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* System V IPC: shared memory segments, semaphore sets and message
 * queues. When the tree has an IPC namespace of its own, every object of
 * it is saved once (ipc.json, sysvshm-ID.data) and made again, with its
 * old id, in a new namespace the restored tree is born into. Mappings of
 * segments ("/SYSV%08x" in maps) are re-attached by id, in the tree's own
 * namespace or, when it shares ours, to the segment that still exists. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/proc.h"
#include "engine/remote.h"
#include "engine/tree.h"
#include "image/image.h"
#include "image/json.h"

#define IPC_MAX_OBJS 32768     /* per kind; the kernel's IPCMNI */
#define IPC_MAX_SEMS 32000     /* semaphores in one set (SEMMSL cap) */
#define IPC_MAX_MSGS 65536     /* messages in one queue */
#define IPC_MAX_MSG (16u << 20) /* bytes of one message */
#define IPC_NSYSCTL 8

struct ipc_perm_rec {
	int32_t id, key;
	uint32_t uid, gid, cuid, cgid, mode;
};

struct ipc_shm_rec {
	struct ipc_perm_rec perm;
	uint64_t size;
};

struct ipc_sem_rec {
	struct ipc_perm_rec perm;
	uint32_t nsems;
	uint16_t *vals;
};

struct ipc_msg {
	int64_t mtype;
	size_t len;
	uint8_t *data;
};

struct ipc_msq_rec {
	struct ipc_perm_rec perm;
	uint64_t qbytes;
	size_t nmsgs;
	struct ipc_msg *msgs;
};

struct ipc_rec {
	char *sysctl[IPC_NSYSCTL]; /* values of ipc_sysctls[], NULL if unread */
	struct ipc_shm_rec *shm;
	size_t nshm;
	struct ipc_sem_rec *sem;
	size_t nsem;
	struct ipc_msq_rec *msq;
	size_t nmsq;
};

/* The namespace limits saved with the objects (/proc/sys/kernel/NAME). */
extern const char *const ipc_sysctls[IPC_NSYSCTL];

void ipc_rec_free(struct ipc_rec *rec);
/* Fills b, the ipc.json record; an error stays in the builder. */
void ipc_to_json(const struct ipc_rec *rec, struct json_builder *b);
int ipc_from_json(const json_t *j, struct ipc_rec *rec);

/* Dump: when the root's IPC namespace is not ours, saves all of it and
 * sets *ret_owned; refuses a tree whose processes are in different ones. */
int ipc_dump(struct image *img, const struct tree *t, bool *ret_owned);

/* Restore: whether the image holds its own IPC namespace (manifest
 * "ipcns"); the root stub is then made with CLONE_NEWIPC. */
bool ipc_image_owns_ns(struct image *img);
/* Fills the root stub's new namespace (before anything forks from it). */
int ipc_restore(struct image *img, pid_t root);
/* Attaches the segment of a VMA_SYSVSHM mapping in the stub. */
struct vma_rec;
int ipc_shm_attach(struct remote *r, pid_t tid, const struct vma_rec *v);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* System V IPC, restore side (ipc.h). The root stub is born in a new IPC
 * namespace; before anything forks from it, the restorer enters that
 * namespace (setns, this thread only) and makes every object again under
 * its old id: the id is written to /proc/sys/kernel/{shm,sem,msg}_next_id
 * (which act on the writer's namespace) right before each *get call. */
#include "engine/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/mm.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

bool ipc_image_owns_ns(struct image *img)
{
	bool owned = false;
	json_t *man = image_manifest(img);
	return json_object_get(man, "ipcns") && json_get_bool(man, "ipcns", &owned) >= 0 && owned;
}

static int write_sysctl(const char *name, const char *value)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return pwrite_all(fd, value, strlen(value), 0);
}

static int next_id(const char *kind, int id)
{
	char name[32], v[16];
	snprintf(name, sizeof(name), "%s_next_id", kind);
	snprintf(v, sizeof(v), "%d", id);
	return write_sysctl(name, v);
}

static int got_id(const char *what, int want, int got)
{
	if (got < 0)
		return log_error_errno(-errno, "cannot make System V %s %d again: %m", what, want);
	if (got != want)
		return log_error_errno(-EEXIST, "System V %s %d was made again as %d", what, want, got);
	return 0;
}

static int shm_fill(struct image *img, int id, uint64_t size)
{
	char name[IMAGE_NAME_MAX];
	if (!image_has(img, image_name_sysvshm(name, id)))
		return 0;
	uint64_t len, limit = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	_cleanup_close_ int in = -1;
	int r = image_verify_file(img, name);
	if (r < 0 || (r = image_open_file(img, name, &in, &len)) < 0)
		return r;
	uint8_t *p = shmat(id, NULL, 0);
	if (p == (void *)-1)
		return -errno;
	for (uint64_t at = 0; r >= 0 && at < len;) {
		uint64_t e[2];
		if (len - at < sizeof(e) || (r = pread_exact(in, e, sizeof(e), (off_t)at)) < 0) {
			r = r < 0 ? r : -EBADMSG;
			break;
		}
		at += sizeof(e);
		if (e[1] > len - at || e[0] > limit || e[1] > limit - e[0]) {
			r = log_error_errno(-EBADMSG, "%s: bad extent at byte %" PRIu64, name, at);
			break;
		}
		r = pread_exact(in, p + e[0], e[1], (off_t)at);
		at += e[1];
	}
	shmdt(p);
	return r;
}

static int make_shm(struct image *img, const struct ipc_shm_rec *s)
{
	const struct ipc_perm_rec *p = &s->perm;
	int r = next_id("shm", p->id);
	if (r < 0)
		return log_error_errno(r, "cannot set shm_next_id: %m");
	if ((r = got_id("shared memory segment", p->id, shmget(p->key, s->size, IPC_CREAT | IPC_EXCL | (p->mode & 0777)))) < 0)
		return r;
	struct shmid_ds ds = { .shm_perm = { .uid = p->uid, .gid = p->gid, .mode = p->mode & 0777 } };
	if ((r = shm_fill(img, p->id, s->size)) < 0)
		return log_error_errno(r, "cannot fill System V shared memory segment %d: %m", p->id);
	if (shmctl(p->id, IPC_SET, &ds) < 0 || ((p->mode & SHM_LOCKED) && shmctl(p->id, SHM_LOCK, NULL) < 0))
		return log_error_errno(-errno, "cannot set owner and mode of System V shared memory segment %d: %m",
				       p->id);
	return 0;
}

static int make_sem(const struct ipc_sem_rec *s)
{
	const struct ipc_perm_rec *p = &s->perm;
	int r = next_id("sem", p->id);
	if (r < 0)
		return log_error_errno(r, "cannot set sem_next_id: %m");
	if ((r = got_id("semaphore set", p->id, semget(p->key, (int)s->nsems, IPC_CREAT | IPC_EXCL | (p->mode & 0777)))) < 0)
		return r;
	struct semid_ds ds = { .sem_perm = { .uid = p->uid, .gid = p->gid, .mode = p->mode & 0777 } };
	if (semctl(p->id, 0, SETALL, (union semun){ .array = s->vals }) < 0 ||
	    semctl(p->id, 0, IPC_SET, (union semun){ .buf = &ds }) < 0)
		return log_error_errno(-errno, "cannot set System V semaphore set %d: %m", p->id);
	return 0;
}

static int make_msq(const struct ipc_msq_rec *q)
{
	const struct ipc_perm_rec *p = &q->perm;
	int r = next_id("msg", p->id);
	if (r < 0)
		return log_error_errno(r, "cannot set msg_next_id: %m");
	if ((r = got_id("message queue", p->id, msgget(p->key, IPC_CREAT | IPC_EXCL | (p->mode & 0777)))) < 0)
		return r;
	struct msqid_ds ds = { .msg_perm = { .uid = p->uid, .gid = p->gid, .mode = p->mode & 0777 },
			       .msg_qbytes = q->qbytes };
	if (msgctl(p->id, IPC_SET, &ds) < 0)
		return log_error_errno(-errno, "cannot set System V message queue %d: %m", p->id);
	for (size_t i = 0; i < q->nmsgs; i++) {
		const struct ipc_msg *m = &q->msgs[i];
		_cleanup_free_ long *buf = malloc(sizeof(long) + m->len + 1);
		if (!buf)
			return -ENOMEM;
		buf[0] = (long)m->mtype;
		memcpy(buf + 1, m->data, m->len);
		if (msgsnd(p->id, buf, m->len, IPC_NOWAIT) < 0)
			return log_error_errno(-errno, "cannot queue message %zu of System V message queue %d: %m", i,
					       p->id);
	}
	return 0;
}

/* In the new namespace (we are, for this call). */
static int fill_ns(struct image *img, const struct ipc_rec *rec)
{
	int r = 0;
	for (size_t i = 0; i < IPC_NSYSCTL; i++)
		if (rec->sysctl[i] && write_sysctl(ipc_sysctls[i], rec->sysctl[i]) < 0)
			log_warn("cannot set kernel.%s to %s in the new IPC namespace: %m", ipc_sysctls[i],
				 rec->sysctl[i]);
	for (size_t i = 0; r >= 0 && i < rec->nshm; i++)
		r = make_shm(img, &rec->shm[i]);
	for (size_t i = 0; r >= 0 && i < rec->nsem; i++)
		r = make_sem(&rec->sem[i]);
	for (size_t i = 0; r >= 0 && i < rec->nmsq; i++)
		r = make_msq(&rec->msq[i]);
	next_id("shm", -1);
	next_id("sem", -1);
	next_id("msg", -1);
	return r;
}

int ipc_restore(struct image *img, pid_t root)
{
	_cleanup_json_ json_t *j = NULL;
	struct ipc_rec rec;
	char path[64];
	if (!ipc_image_owns_ns(img))
		return 0;
	int r = image_get_json(img, IMAGE_IPC, &j);
	if (r < 0)
		return r;
	if ((r = ipc_from_json(j, &rec)) < 0) {
		ipc_rec_free(&rec);
		return log_error_errno(r, "%s: bad record", IMAGE_IPC);
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", root);
	_cleanup_close_ int self = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || ns < 0 || setns(ns, CLONE_NEWIPC) < 0) {
		ipc_rec_free(&rec);
		return log_error_errno(-errno, "pid %d: cannot enter its new IPC namespace: %m", root);
	}
	r = fill_ns(img, &rec);
	if (setns(self, CLONE_NEWIPC) < 0) {
		log_error("cannot return to our own IPC namespace: %m");
		r = r < 0 ? r : -errno;
	}
	if (r >= 0)
		log_debug("IPC namespace: %zu segments, %zu semaphore sets, %zu message queues made", rec.nshm,
			  rec.nsem, rec.nmsq);
	ipc_rec_free(&rec);
	return r;
}

/* Attaches the segment where it was, then gives the mapping its prot
 * (an attachment is read-only or read-write, exec on request). */
int ipc_shm_attach(struct remote *r, pid_t tid, const struct vma_rec *v)
{
	bool rw = v->vmflags & VMF_MAYWRITE;
	struct shmid_ds ds;
	long ret = remote_syscall(r, tid, SYS_shmctl, v->shmid, IPC_STAT, r->scratch + 8192);
	int e = ret < 0 ? (int)ret : remote_read(r, r->scratch + 8192, &ds, sizeof(ds));
	if (e < 0)
		return log_error_errno(e == -EINVAL || e == -EIDRM ? -ENOENT : e, "pid %d: System V shared memory "
				       "segment %d (key %#x) is gone; it cannot be attached at %" PRIx64 " again",
				       r->pid, v->shmid, (unsigned)v->shmkey, v->start);
	uint64_t whole = ((uint64_t)ds.shm_segsz + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (whole != v->end - v->start || (ds.shm_perm.__key != v->shmkey && !(ds.shm_perm.mode & SHM_DEST)))
		return log_error_errno(-ESTALE, "pid %d: System V shared memory segment %d is not the one it had "
				       "attached at %" PRIx64 " (key %#x, %" PRIu64 " bytes)", r->pid, v->shmid,
				       v->start, (unsigned)v->shmkey, v->end - v->start);
	int flags = SHM_REMAP | (rw ? 0 : SHM_RDONLY) | (v->prot & PROT_EXEC ? SHM_EXEC : 0);
	ret = remote_syscall(r, tid, SYS_shmat, v->shmid, v->start, flags);
	if (ret < 0 && ret > -4096)
		return (int)ret;
	if ((uint64_t)ret != v->start)
		return -EFAULT;
	uint32_t got = PROT_READ | (rw ? PROT_WRITE : 0) | (v->prot & PROT_EXEC);
	if (got != v->prot && (ret = remote_syscall(r, tid, SYS_mprotect, v->start, v->end - v->start, v->prot)) < 0)
		return (int)ret;
	return 0;
}

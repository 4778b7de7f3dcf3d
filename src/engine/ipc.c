/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* System V IPC, dump side and the ipc.json record (ipc.h). The dumping
 * thread enters the tree's IPC namespace (setns), lists the objects with
 * the *_STAT calls and reads them without changing them: segments through
 * a read-only attachment of its own, semaphores with GETALL, messages with
 * msgrcv(MSG_COPY), which copies a message and leaves it queued. */
#include "engine/ipc.h"
#include "engine/shobj.h"

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
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

const char *const ipc_sysctls[IPC_NSYSCTL] = {
	"shmmax", "shmall", "shmmni", "shm_rmid_forced", "msgmax", "msgmnb", "msgmni", "sem",
};

void ipc_rec_free(struct ipc_rec *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < IPC_NSYSCTL; i++)
		free(rec->sysctl[i]);
	for (size_t i = 0; i < rec->nsem; i++)
		free(rec->sem[i].vals);
	for (size_t i = 0; i < rec->nmsq; i++) {
		for (size_t k = 0; k < rec->msq[i].nmsgs; k++)
			free(rec->msq[i].msgs[k].data);
		free(rec->msq[i].msgs);
	}
	free(rec->shm);
	free(rec->sem);
	free(rec->msq);
	memset(rec, 0, sizeof(*rec));
}

/* --- the record --- */

static void perm_to_json(const struct ipc_perm_rec *p, struct json_builder *o)
{
	const struct {
		const char *k;
		int64_t v;
	} f[] = { { "id", p->id }, { "key", p->key }, { "uid", p->uid }, { "gid", p->gid },
		  { "cuid", p->cuid }, { "cgid", p->cgid }, { "mode", p->mode } };
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		jb_i64(o, f[i].k, f[i].v);
}

static int perm_from_json(const json_t *o, struct ipc_perm_rec *p)
{
	int64_t v[7];
	const char *k[7] = { "id", "key", "uid", "gid", "cuid", "cgid", "mode" };
	for (size_t i = 0; i < 7; i++)
		if (json_get_i64(o, k[i], &v[i]) < 0 || v[i] < (i == 1 ? INT32_MIN : 0) ||
		    v[i] > (i < 2 ? INT32_MAX : UINT32_MAX))
			return -EBADMSG;
	*p = (struct ipc_perm_rec){ (int32_t)v[0], (int32_t)v[1], (uint32_t)v[2], (uint32_t)v[3],
				    (uint32_t)v[4], (uint32_t)v[5], (uint32_t)v[6] };
	return p->mode > 07777 ? -EBADMSG : 0;
}

static void sem_to_json(const struct ipc_sem_rec *s, struct json_builder *o)
{
	perm_to_json(&s->perm, o);
	json_t *a = jb_array(o, "values");
	for (size_t i = 0; a && i < s->nsems; i++)
		jb_append(o, a, json_integer(s->vals[i]));
}

static void msq_to_json(const struct ipc_msq_rec *q, struct json_builder *o)
{
	perm_to_json(&q->perm, o);
	jb_u64(o, "qbytes", q->qbytes);
	json_t *a = jb_array(o, "messages");
	for (size_t i = 0; a && i < q->nmsgs; i++) {
		struct json_builder m;
		jb_begin(&m);
		jb_i64(&m, "mtype", q->msgs[i].mtype);
		jb_hex(&m, "data", q->msgs[i].data, q->msgs[i].len);
		jb_append_obj(o, a, &m);
	}
}

void ipc_to_json(const struct ipc_rec *rec, struct json_builder *b)
{
	struct json_builder sys, o;
	jb_begin(&sys);
	for (size_t i = 0; i < IPC_NSYSCTL; i++)
		if (rec->sysctl[i])
			jb_str(&sys, ipc_sysctls[i], rec->sysctl[i]);
	jb_obj(b, "sysctl", &sys);
	json_t *shm = jb_array(b, "shm"), *sem = jb_array(b, "sem"), *msq = jb_array(b, "msg");
	for (size_t i = 0; shm && i < rec->nshm; i++) {
		jb_begin(&o);
		perm_to_json(&rec->shm[i].perm, &o);
		jb_u64(&o, "size", rec->shm[i].size);
		jb_append_obj(b, shm, &o);
	}
	for (size_t i = 0; sem && i < rec->nsem; i++) {
		jb_begin(&o);
		sem_to_json(&rec->sem[i], &o);
		jb_append_obj(b, sem, &o);
	}
	for (size_t i = 0; msq && i < rec->nmsq; i++) {
		jb_begin(&o);
		msq_to_json(&rec->msq[i], &o);
		jb_append_obj(b, msq, &o);
	}
}

static bool sysctl_ok(const char *s)
{
	size_t l = strlen(s);
	if (!l || l > 64)
		return false;
	for (; *s; s++)
		if (!(*s >= '0' && *s <= '9') && *s != ' ' && *s != '\t' && *s != '-')
			return false;
	return true;
}

static int sem_from_json(const json_t *o, struct ipc_sem_rec *s)
{
	json_t *a;
	if (perm_from_json(o, &s->perm) < 0 || json_get_array(o, "values", IPC_MAX_SEMS, &a) < 0 ||
	    !json_array_size(a))
		return -EBADMSG;
	s->vals = calloc(json_array_size(a), sizeof(*s->vals));
	if (!s->vals)
		return -ENOMEM;
	s->nsems = (uint32_t)json_array_size(a);
	for (size_t i = 0; i < s->nsems; i++) {
		json_t *v = json_array_get(a, i);
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 32767)
			return -EBADMSG;
		s->vals[i] = (uint16_t)json_integer_value(v);
	}
	return 0;
}

static int msq_from_json(const json_t *o, struct ipc_msq_rec *q)
{
	json_t *a;
	if (perm_from_json(o, &q->perm) < 0 || json_get_u64(o, "qbytes", &q->qbytes) < 0 ||
	    q->qbytes > INT32_MAX || json_get_array(o, "messages", IPC_MAX_MSGS, &a) < 0)
		return -EBADMSG;
	q->msgs = calloc(json_array_size(a) + 1, sizeof(*q->msgs));
	if (!q->msgs)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(a); i++) {
		struct ipc_msg *m = &q->msgs[i];
		void *data;
		int r = json_get_i64(json_array_get(a, i), "mtype", &m->mtype);
		if (r < 0 || m->mtype < 1)
			return -EBADMSG;
		if ((r = json_get_hex_alloc(json_array_get(a, i), "data", IPC_MAX_MSG, &data, &m->len)) < 0)
			return r;
		m->data = data;
		q->nmsgs = i + 1;
	}
	return 0;
}

/* Ids of one kind must be unique: each is made again under its own. */
static bool ids_unique(const struct ipc_perm_rec *p, size_t n, size_t stride)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < i; k++)
			if (((const struct ipc_perm_rec *)((const char *)p + i * stride))->id ==
			    ((const struct ipc_perm_rec *)((const char *)p + k * stride))->id)
				return false;
	return true;
}

int ipc_from_json(const json_t *j, struct ipc_rec *rec)
{
	json_t *sys = json_object_get(j, "sysctl"), *shm, *sem, *msq;
	int r;
	memset(rec, 0, sizeof(*rec));
	if (!json_is_object(sys) || json_get_array(j, "shm", IPC_MAX_OBJS, &shm) < 0 ||
	    json_get_array(j, "sem", IPC_MAX_OBJS, &sem) < 0 || json_get_array(j, "msg", IPC_MAX_OBJS, &msq) < 0)
		return -EBADMSG;
	for (size_t i = 0; i < IPC_NSYSCTL; i++) {
		const char *v;
		if (!json_object_get(sys, ipc_sysctls[i]))
			continue;
		if (json_get_str(sys, ipc_sysctls[i], &v) < 0 || !sysctl_ok(v))
			return -EBADMSG;
		if (!(rec->sysctl[i] = strdup(v)))
			return -ENOMEM;
	}
	rec->shm = calloc(json_array_size(shm) + 1, sizeof(*rec->shm));
	rec->sem = calloc(json_array_size(sem) + 1, sizeof(*rec->sem));
	rec->msq = calloc(json_array_size(msq) + 1, sizeof(*rec->msq));
	if (!rec->shm || !rec->sem || !rec->msq)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(shm); i++, rec->nshm++) {
		struct ipc_shm_rec *s = &rec->shm[i];
		if (perm_from_json(json_array_get(shm, i), &s->perm) < 0 ||
		    json_get_u64(json_array_get(shm, i), "size", &s->size) < 0 || !s->size || s->size > MAX_SHOBJ_SIZE)
			return -EBADMSG;
	}
	for (size_t i = 0; i < json_array_size(sem); i++)
		if ((r = sem_from_json(json_array_get(sem, i), &rec->sem[rec->nsem++])) < 0)
			return r;
	for (size_t i = 0; i < json_array_size(msq); i++)
		if ((r = msq_from_json(json_array_get(msq, i), &rec->msq[rec->nmsq++])) < 0)
			return r;
	if (!ids_unique(&rec->shm[0].perm, rec->nshm, sizeof(*rec->shm)) ||
	    !ids_unique(&rec->sem[0].perm, rec->nsem, sizeof(*rec->sem)) ||
	    !ids_unique(&rec->msq[0].perm, rec->nmsq, sizeof(*rec->msq)))
		return -EBADMSG;
	return 0;
}

/* --- dump --- */

static void perm_from(struct ipc_perm_rec *p, int id, const struct ipc_perm *k)
{
	*p = (struct ipc_perm_rec){ id, k->__key, k->uid, k->gid, k->cuid, k->cgid, k->mode & 07777 };
}

/* Saves the pages of the segment that exist and are not all zero, as
 * (offset, length) extents followed by their bytes, like shmem.c. Which
 * pages exist is mincore's answer, so holes are not faulted in. */
static int shm_save_data(struct image *img, int id, uint64_t size)
{
	uint64_t len = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	_cleanup_free_ unsigned char *vec = malloc(len / PAGE_SIZE);
	struct image_stream *s = NULL;
	char name[IMAGE_NAME_MAX];
	int r = 0;
	if (!vec)
		return -ENOMEM;
	uint8_t *p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1)
		return -errno;
	if (mincore(p, len, vec) < 0)
		r = -errno;
	image_name_sysvshm(name, id);
	for (uint64_t i = 0; r >= 0 && i < len / PAGE_SIZE;) {
		static const uint8_t zero[PAGE_SIZE];
		uint64_t k = i;
		while (k < len / PAGE_SIZE && (vec[k] & 1) && memcmp(p + k * PAGE_SIZE, zero, PAGE_SIZE))
			k++;
		if (k == i) {
			i++;
			continue;
		}
		uint64_t e[2] = { i * PAGE_SIZE, (k - i) * PAGE_SIZE };
		if (!s)
			r = image_stream_open(img, name, &s);
		if (r >= 0 && (r = image_stream_write(s, e, sizeof(e))) >= 0)
			r = image_stream_write(s, p + e[0], e[1]);
		i = k;
	}
	shmdt(p);
	if (r < 0) {
		image_stream_abort(s);
		return r;
	}
	return s ? image_stream_close(s) : 0;
}

static int collect_shm(struct image *img, struct ipc_rec *rec)
{
	struct shm_info info;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&info);
	if (max < 0)
		return log_error_errno(-errno, "cannot list System V shared memory: %m");
	rec->shm = calloc((size_t)max + 1, sizeof(*rec->shm));
	if (!rec->shm)
		return -ENOMEM;
	for (int i = 0; i <= max; i++) {
		struct shmid_ds ds;
		int id = shmctl(i, SHM_STAT, &ds), r;
		if (id < 0 && (errno == EINVAL || errno == EIDRM))
			continue;
		if (id < 0)
			return log_error_errno(-errno, "cannot read System V shared memory segment %d: %m", i);
		if (ds.shm_perm.mode & SHM_DEST)
			return log_error_errno(-EOPNOTSUPP, "System V shared memory segment %d was removed (IPC_RMID) "
					       "while still attached; this cannot be checkpointed yet", id);
		struct ipc_shm_rec *s = &rec->shm[rec->nshm++];
		perm_from(&s->perm, id, &ds.shm_perm);
		s->perm.mode |= ds.shm_perm.mode & SHM_LOCKED;
		s->size = ds.shm_segsz;
		if (s->size > MAX_SHOBJ_SIZE)
			return log_error_errno(-EFBIG, "System V shared memory segment %d is too large", id);
		if ((r = shm_save_data(img, id, s->size)) < 0)
			return log_error_errno(r, "cannot save System V shared memory segment %d: %m", id);
	}
	return 0;
}

static int collect_sem(struct ipc_rec *rec)
{
	struct seminfo info;
	int max = semctl(0, 0, SEM_INFO, (union semun){ .__buf = &info });
	if (max < 0)
		return log_error_errno(-errno, "cannot list System V semaphores: %m");
	rec->sem = calloc((size_t)max + 1, sizeof(*rec->sem));
	if (!rec->sem)
		return -ENOMEM;
	for (int i = 0; i <= max; i++) {
		struct semid_ds ds;
		int id = semctl(i, 0, SEM_STAT, (union semun){ .buf = &ds });
		if (id < 0 && (errno == EINVAL || errno == EIDRM))
			continue;
		if (id < 0)
			return log_error_errno(-errno, "cannot read System V semaphore set %d: %m", i);
		struct ipc_sem_rec *s = &rec->sem[rec->nsem++];
		perm_from(&s->perm, id, &ds.sem_perm);
		s->nsems = (uint32_t)ds.sem_nsems;
		if (!s->nsems || s->nsems > IPC_MAX_SEMS || !(s->vals = calloc(s->nsems, sizeof(*s->vals))))
			return log_error_errno(-E2BIG, "System V semaphore set %d: bad size %u", id, s->nsems);
		if (semctl(id, 0, GETALL, (union semun){ .array = s->vals }) < 0)
			return log_error_errno(-errno, "cannot read System V semaphore set %d: %m", id);
	}
	return 0;
}

/* Copies each message by its index in the queue, which keeps it. */
static int copy_msgs(int id, size_t n, size_t cbytes, struct ipc_msq_rec *q)
{
	_cleanup_free_ long *buf = malloc(sizeof(long) + cbytes + 1);
	q->msgs = calloc(n + 1, sizeof(*q->msgs));
	if (!buf || !q->msgs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ssize_t l = msgrcv(id, buf, cbytes + 1, (long)i, IPC_NOWAIT | MSG_COPY);
		if (l < 0)
			return -errno;
		struct ipc_msg *m = &q->msgs[q->nmsgs++];
		m->mtype = buf[0];
		m->len = (size_t)l;
		if (!(m->data = malloc(m->len + 1)))
			return -ENOMEM;
		memcpy(m->data, buf + 1, m->len);
	}
	return 0;
}

static int collect_msg(struct ipc_rec *rec)
{
	struct msginfo info;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&info);
	if (max < 0)
		return log_error_errno(-errno, "cannot list System V message queues: %m");
	rec->msq = calloc((size_t)max + 1, sizeof(*rec->msq));
	if (!rec->msq)
		return -ENOMEM;
	for (int i = 0; i <= max; i++) {
		struct msqid_ds ds;
		int id = msgctl(i, MSG_STAT, &ds), r;
		if (id < 0 && (errno == EINVAL || errno == EIDRM))
			continue;
		if (id < 0)
			return log_error_errno(-errno, "cannot read System V message queue %d: %m", i);
		struct ipc_msq_rec *q = &rec->msq[rec->nmsq++];
		perm_from(&q->perm, id, &ds.msg_perm);
		q->qbytes = ds.msg_qbytes;
		if (ds.msg_qnum > IPC_MAX_MSGS || ds.__msg_cbytes > IPC_MAX_MSG * 4ULL)
			return log_error_errno(-E2BIG, "System V message queue %d holds too much to save", id);
		if ((r = copy_msgs(id, ds.msg_qnum, ds.__msg_cbytes, q)) < 0)
			return log_error_errno(r, "cannot copy the messages of System V message queue %d: %m%s", id,
					       r == -ENOSYS ? " (the kernel lacks CONFIG_CHECKPOINT_RESTORE)" : "");
	}
	return 0;
}

static void collect_sysctls(struct ipc_rec *rec)
{
	for (size_t i = 0; i < IPC_NSYSCTL; i++) {
		char path[64];
		size_t len;
		snprintf(path, sizeof(path), "/proc/sys/kernel/%s", ipc_sysctls[i]);
		if (read_file_at(AT_FDCWD, path, 256, &rec->sysctl[i], &len) < 0)
			continue;
		while (len && rec->sysctl[i][len - 1] == '\n')
			rec->sysctl[i][--len] = 0;
		if (!sysctl_ok(rec->sysctl[i])) {
			free(rec->sysctl[i]);
			rec->sysctl[i] = NULL;
		}
	}
}

static int ns_ino(const char *path, uint64_t *ret)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	*ret = (uint64_t)st.st_ino;
	return 0;
}

static int write_record(struct image *img, const struct ipc_rec *rec)
{
	_cleanup_json_ json_t *j = NULL;
	struct json_builder b;
	jb_begin(&b);
	ipc_to_json(rec, &b);
	int r = jb_end(&b, &j);
	if (r < 0)
		return log_error_errno(r, "cannot encode the IPC namespace (%s): %m", jb_key(&b));
	return image_put_json(img, IMAGE_IPC, j);
}

/* In the tree's namespace (we are, for this call). */
static int collect_ns(struct image *img)
{
	struct ipc_rec rec = { 0 };
	collect_sysctls(&rec);
	int r = collect_shm(img, &rec);
	if (r >= 0)
		r = collect_sem(&rec);
	if (r >= 0)
		r = collect_msg(&rec);
	if (r >= 0)
		r = write_record(img, &rec);
	if (r >= 0)
		log_debug("IPC namespace: %zu shared memory segments, %zu semaphore sets, %zu message queues saved "
			 "(semaphore undo values and last-operation pids/times are not)", rec.nshm, rec.nsem, rec.nmsq);
	ipc_rec_free(&rec);
	return r;
}

int ipc_dump(struct image *img, const struct tree *t, bool *ret_owned)
{
	char path[64];
	uint64_t own = 0, root = 0, ino = 0;
	int r;
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", t->v[0].pid);
	if ((r = ns_ino("/proc/self/ns/ipc", &own)) < 0 || (r = ns_ino(path, &root)) < 0)
		return log_error_errno(r, "pid %d: cannot read its IPC namespace: %m", t->v[0].pid);
	for (size_t i = 1; i < t->n; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/ns/ipc", t->v[i].pid);
		if (!t->v[i].zombie && ns_ino(p, &ino) >= 0 && ino != root)
			return log_error_errno(-EOPNOTSUPP, "pid %d is in another IPC namespace than the tree's root "
					       "%d; a tree with several cannot be checkpointed", t->v[i].pid, t->v[0].pid);
	}
	*ret_owned = own != root;
	if (own == root)
		return 0;
	_cleanup_close_ int self = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || ns < 0)
		return log_error_errno(-errno, "pid %d: cannot open its IPC namespace: %m", t->v[0].pid);
	if (setns(ns, CLONE_NEWIPC) < 0)
		return log_error_errno(-errno, "pid %d: cannot enter its IPC namespace: %m", t->v[0].pid);
	r = collect_ns(img);
	if (setns(self, CLONE_NEWIPC) < 0) {
		/* Nothing else of the dump needs it, but say so. */
		log_error("cannot return to our own IPC namespace: %m");
		r = r < 0 ? r : -errno;
	}
	return r;
}

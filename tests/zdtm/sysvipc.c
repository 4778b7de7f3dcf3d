/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* System V IPC in an IPC namespace of the workload's own: a segment with a
 * key (attached read-write by the parent and its child), a private one
 * (attached read-only), one attached by nobody, a semaphore set and a
 * message queue with three messages of different types. Ids are not the
 * first ones (objects made and removed before), owners and modes are
 * changed. After the restore every id, key, mode, content and value must
 * be the same, the child's write must be seen by the parent, and the
 * messages must come out in their order.
 *
 * stasis-test: zdtm:sysvipc
 * stasis-test: zdtm:sysvipc:hostns args=hostns asan=no
 * stasis-test: zdtm:sysvipc:2-iterations iterations=2 asan=no
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define KEY_A 0x53540001
#define KEY_C 0x53540003
#define KEY_SEM 0x53540004
#define KEY_MSG 0x53540005
#define SZ_A (64 * 1024 + 100)
#define SZ_B (128 * 1024)
#define SZ_C (3 * 4096)
#define NSEM 4

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static const unsigned short sem_vals[NSEM] = { 1, 7, 0, 32000 };
static const long mtypes[3] = { 3, 1, 2 };
static const size_t mlens[3] = { 6, 2000, 0 };

struct mbuf {
	long mtype;
	char text[4096];
};

static void fill_msg(struct mbuf *m, int i)
{
	m->mtype = mtypes[i];
	if (i == 0)
		memcpy(m->text, "first", 6);
	else
		test_fill(m->text, mlens[i], 100 + (uint64_t)i);
}

static int make_ids(int *a, int *b, int *c, int *sem, int *msq)
{
	/* Burn a few ids so that the ones kept are not the first. */
	for (int i = 0; i < 3; i++) {
		shmctl(shmget(IPC_PRIVATE, 4096, 0600), IPC_RMID, NULL);
		semctl(semget(IPC_PRIVATE, 1, 0600), 0, IPC_RMID);
		msgctl(msgget(IPC_PRIVATE, 0600), IPC_RMID, NULL);
	}
	*a = shmget(KEY_A, SZ_A, IPC_CREAT | IPC_EXCL | 0600);
	*b = shmget(IPC_PRIVATE, SZ_B, IPC_CREAT | 0640);
	*c = shmget(KEY_C, SZ_C, IPC_CREAT | IPC_EXCL | 0666);
	*sem = semget(KEY_SEM, NSEM, IPC_CREAT | IPC_EXCL | 0660);
	*msq = msgget(KEY_MSG, IPC_CREAT | IPC_EXCL | 0620);
	return *a < 0 || *b < 0 || *c < 0 || *sem < 0 || *msq < 0 ? -1 : 0;
}

static void check_perm(const char *what, const struct ipc_perm *p, int key, unsigned mode, unsigned uid)
{
	check(p->__key == key, "%s: key %#x, expected %#x", what, p->__key, key);
	check((p->mode & 0777) == mode, "%s: mode %o, expected %o", what, p->mode & 0777, mode);
	check(p->uid == uid, "%s: uid %u, expected %u", what, p->uid, uid);
}

static void check_shm(int a, int b, int c)
{
	struct shmid_ds ds;
	check(shmctl(a, IPC_STAT, &ds) == 0, "segment A %d: %m", a);
	check_perm("segment A", &ds.shm_perm, KEY_A, 0604, 1234);
	check(ds.shm_segsz == SZ_A && ds.shm_nattch == 2, "segment A: size %zu, %lu attached", ds.shm_segsz,
	      (unsigned long)ds.shm_nattch);
	check(shmctl(b, IPC_STAT, &ds) == 0, "segment B %d: %m", b);
	check_perm("segment B", &ds.shm_perm, IPC_PRIVATE, 0640, 0);
	check(ds.shm_segsz == SZ_B && ds.shm_nattch == 2, "segment B: size %zu, %lu attached", ds.shm_segsz,
	      (unsigned long)ds.shm_nattch);
	check(shmctl(c, IPC_STAT, &ds) == 0, "segment C %d: %m", c);
	check_perm("segment C", &ds.shm_perm, KEY_C, 0666, 0);
	check(ds.shm_nattch == 0, "segment C: %lu attached", (unsigned long)ds.shm_nattch);
	check(shmget(KEY_A, 0, 0) == a && shmget(KEY_C, 0, 0) == c, "keys lead to other segments");
	unsigned char *pc = shmat(c, NULL, SHM_RDONLY);
	check(pc != (void *)-1 && test_verify(pc, 4096, 33) < 0 && pc[4096] == 0 && pc[2 * 4096 + 5] == 0x5c,
	      "segment C: content differs");
	if (pc != (void *)-1)
		shmdt(pc);
}

static void check_sem_msg(int sem, int msq)
{
	unsigned short v[NSEM] = { 0 };
	struct semid_ds sd;
	struct msqid_ds md;
	check(semctl(sem, 0, IPC_STAT, (union semun){ .buf = &sd }) == 0, "semaphores %d: %m", sem);
	check_perm("semaphores", &sd.sem_perm, KEY_SEM, 0660, 0);
	check(sd.sem_nsems == NSEM, "semaphores: %lu in the set", (unsigned long)sd.sem_nsems);
	check(semctl(sem, 0, GETALL, (union semun){ .array = v }) == 0 && !memcmp(v, sem_vals, sizeof(v)),
	      "semaphore values %u %u %u %u", v[0], v[1], v[2], v[3]);
	check(msgctl(msq, IPC_STAT, &md) == 0, "message queue %d: %m", msq);
	check_perm("message queue", &md.msg_perm, KEY_MSG, 0620, 0);
	check(md.msg_qnum == 3 && md.msg_qbytes == 12000, "message queue: %lu messages, qbytes %lu",
	      (unsigned long)md.msg_qnum, (unsigned long)md.msg_qbytes);
	for (int i = 0; i < 3; i++) {
		struct mbuf m, want;
		ssize_t l = msgrcv(msq, &m, sizeof(m.text), 0, IPC_NOWAIT);
		fill_msg(&want, i);
		check(l == (ssize_t)mlens[i] && m.mtype == mtypes[i] && !memcmp(m.text, want.text, mlens[i]),
		      "message %d: length %zd type %ld", i, l, l >= 0 ? m.mtype : 0);
	}
}

/* "hostns": a segment of the host's namespace, which the tree does not
 * own: the mappings are attached again to the segment that still exists. */
static int host_ns(void)
{
	int go[2], done[2], key = 0x53550000 | (getpid() & 0xffff);
	int id = shmget(key, SZ_A, IPC_CREAT | IPC_EXCL | 0600);
	unsigned char *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
	if (p == (void *)-1 || pipe(go) || pipe(done))
		test_die("setup: %m");
	test_fill(p, SZ_A, 44);
	pid_t kid = fork();
	if (kid == 0) {
		char x;
		if (read(go[0], &x, 1) != 1 || test_verify(p, SZ_A, 44) >= 0)
			_exit(2);
		p[100] ^= 0xff;
		(void)!write(done[1], "d", 1);
		_exit(0);
	}
	test_ready();
	test_wait();
	struct shmid_ds ds;
	check(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 2, "segment %d: %lu attached (%m)", id,
	      (unsigned long)ds.shm_nattch);
	unsigned char before = p[100];
	(void)!write(go[1], "g", 1);
	char x;
	int status = 0;
	check(read(done[0], &x, 1) == 1, "the child did not finish");
	waitpid(kid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed with %#x", status);
	check(p[100] == (unsigned char)(before ^ 0xff), "the child's write is not seen by the parent");
	shmctl(id, IPC_RMID, NULL);
	test_done();
}

int main(int argc, char **argv)
{
	int a, b, c, sem, msq, go[2], done[2];
	test_init(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "hostns"))
		return host_ns();
	if (unshare(CLONE_NEWIPC) < 0)
		test_die("unshare(CLONE_NEWIPC): %m");
	if (make_ids(&a, &b, &c, &sem, &msq) < 0)
		test_die("setup: %m");
	unsigned char *pa = shmat(a, NULL, 0), *pb = shmat(b, NULL, 0), *pc = shmat(c, NULL, 0);
	if (pa == (void *)-1 || pb == (void *)-1 || pc == (void *)-1)
		test_die("shmat: %m");
	test_fill(pa, SZ_A, 11);
	test_fill(pb, SZ_B / 2, 22); /* the rest stays untouched */
	test_fill(pc, 4096, 33);
	pc[2 * 4096 + 5] = 0x5c;
	/* B is then seen read-only, C by nobody. */
	shmdt(pb);
	shmdt(pc);
	pb = shmat(b, NULL, SHM_RDONLY);
	struct shmid_ds ds = { .shm_perm = { .uid = 1234, .gid = 0, .mode = 0604 } };
	struct msqid_ds md = { .msg_perm = { .uid = 0, .gid = 0, .mode = 0620 }, .msg_qbytes = 12000 };
	if (pb == (void *)-1 || shmctl(a, IPC_SET, &ds) < 0 || msgctl(msq, IPC_SET, &md) < 0 ||
	    semctl(sem, 0, SETALL, (union semun){ .array = (unsigned short *)sem_vals }) < 0)
		test_die("setup: %m");
	for (int i = 0; i < 3; i++) {
		struct mbuf m;
		fill_msg(&m, i);
		if (msgsnd(msq, &m, mlens[i], IPC_NOWAIT) < 0)
			test_die("msgsnd: %m");
	}
	if (pipe(go) || pipe(done))
		test_die("pipe");
	pid_t kid = fork();
	if (kid == 0) {
		char x;
		if (read(go[0], &x, 1) != 1)
			_exit(2);
		if (test_verify(pa, SZ_A, 11) >= 0)
			_exit(3);
		memset(pa + 8192, 0xc5, 100);
		(void)!write(done[1], "d", 1);
		_exit(0);
	}
	test_ready();
	test_wait();
	check_shm(a, b, c);
	(void)!write(go[1], "g", 1);
	char x;
	check(read(done[0], &x, 1) == 1, "the child did not finish");
	int status = 0;
	waitpid(kid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed with %#x", status);
	check(pa[8192] == 0xc5 && pa[8291] == 0xc5, "segment A: the child's write is not seen by the parent");
	check(test_verify(pb, SZ_B / 2, 22) < 0 && pb[SZ_B - 1] == 0, "segment B: content differs");
	check_sem_msg(sem, msq);
	char next[32] = "";
	FILE *f = fopen("/proc/sys/kernel/shm_next_id", "re");
	check(f && fgets(next, sizeof(next), f) && !strcmp(next, "-1\n"), "shm_next_id is %s", next);
	if (f)
		fclose(f);
	test_done();
}

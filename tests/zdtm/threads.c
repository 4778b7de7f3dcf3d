/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* 8 threads, each spinning with distinct values live in its zmm0-31, k1-7
 * and r12-r15 (ymm0-15 without AVX-512), with __thread values and its tid
 * recorded. After SIGUSR1 each thread checks its registers, TLS and tid;
 * main checks /proc/self/task lists the same tids.
 *
 * stasis-test: zdtm:threads
 * stasis-test: zdtm:threads:2-iterations iterations=2 asan=no
 */
#include "zdtmtst.h"
#include "threads_regs.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHREADS 8

struct targ {
	int idx;
	pid_t tid;
	pthread_t self;
	uint64_t in[REGS_WORDS] __attribute__((aligned(64)));
	uint64_t out[REGS_WORDS] __attribute__((aligned(64)));
};

static __thread uint64_t tls_val;
static __thread char tls_buf[256];
static volatile int go_flag;
static volatile int nready;
static int have_avx512;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static struct targ targs[NTHREADS];

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void *thread_fn(void *p)
{
	struct targ *t = p;
	size_t nvec = have_avx512 ? 256 : 64;

	tls_val = test_mix64(0x7000 + t->idx);
	test_fill(tls_buf, sizeof(tls_buf), 0x8000 + t->idx);
	t->tid = my_tid();
	t->self = pthread_self();
	char name[16], got[16] = "";
	snprintf(name, sizeof(name), "wl-worker-%d", t->idx);
	pthread_setname_np(pthread_self(), name);
	__atomic_add_fetch(&nready, 1, __ATOMIC_SEQ_CST);
	if (have_avx512)
		regs_spin_avx512(t->in, t->out, &go_flag);
	else
		regs_spin_avx2(t->in, t->out, &go_flag);

	pthread_mutex_lock(&fail_lock);
	for (size_t i = 0; i < nvec; i++)
		if (t->out[i] != t->in[i]) {
			fail("thread %d: %s%zu word %zu: %#llx, expected %#llx", t->idx,
			     have_avx512 ? "zmm" : "ymm", i / (have_avx512 ? 8 : 4), i % (have_avx512 ? 8 : 4),
			     (unsigned long long)t->out[i], (unsigned long long)t->in[i]);
			break;
		}
	if (have_avx512)
		for (int k = 0; k < 7; k++)
			check((t->out[256 + k] & 0xffff) == (t->in[256 + k] & 0xffff), "thread %d: k%d is %#llx, expected %#llx",
			      t->idx, k + 1, (unsigned long long)(t->out[256 + k] & 0xffff),
			      (unsigned long long)(t->in[256 + k] & 0xffff));
	for (int r = 0; r < 4; r++)
		check(t->out[263 + r] == t->in[263 + r], "thread %d: r%d is %#llx, expected %#llx", t->idx, 12 + r,
		      (unsigned long long)t->out[263 + r], (unsigned long long)t->in[263 + r]);
	check(tls_val == test_mix64(0x7000 + t->idx), "thread %d: TLS value changed", t->idx);
	check(test_verify(tls_buf, sizeof(tls_buf), 0x8000 + t->idx) < 0, "thread %d: TLS buffer changed", t->idx);
	check(my_tid() == t->tid, "thread %d: gettid() %d, was %d", t->idx, my_tid(), t->tid);
	pthread_getname_np(pthread_self(), got, sizeof(got));
	check(strcmp(got, name) == 0, "thread %d: name '%s', expected '%s'", t->idx, got, name);
	check(pthread_equal(pthread_self(), t->self), "thread %d: pthread_self changed", t->idx);
	pthread_mutex_unlock(&fail_lock);
	return NULL;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int list_tasks(int *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && n < max)
			tids[n++] = atoi(de->d_name);
	closedir(d);
	qsort(tids, n, sizeof(int), cmp_int);
	return n;
}

int main(int argc, char **argv)
{
	pthread_t th[NTHREADS];
	sigset_t usr1;
	int before[64], after[64], nb, na;
	pid_t main_tid;

	test_init(argc, argv);
	__builtin_cpu_init();
	have_avx512 = __builtin_cpu_supports("avx512f");
	test_msg("using %s", have_avx512 ? "avx512 zmm0-31 + k1-7" : "avx2 ymm0-15");
	main_tid = my_tid();
	tls_val = 42;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* only main takes SIGUSR1 */
	for (int i = 0; i < NTHREADS; i++) {
		targs[i].idx = i;
		for (int w = 0; w < REGS_WORDS; w++)
			targs[i].in[w] = test_mix64(((uint64_t)i << 32) | (uint64_t)w);
		if (pthread_create(&th[i], NULL, thread_fn, &targs[i]))
			test_die("pthread_create");
	}
	while (__atomic_load_n(&nready, __ATOMIC_SEQ_CST) < NTHREADS)
		usleep(1000);
	usleep(50000); /* let them enter the register loop */
	nb = list_tasks(before, 64);
	check(nb == NTHREADS + 1, "%d tasks before dump, expected %d", nb, NTHREADS + 1);

	test_ready();
	test_wait();

	na = list_tasks(after, 64);
	check(na == nb && !memcmp(before, after, sizeof(int) * (na > 0 ? na : 0)),
	      "/proc/self/task changed (%d tasks before, %d after)", nb, na);
	for (int i = 0; i < NTHREADS; i++) {
		int found = 0;
		for (int j = 0; j < na; j++)
			found |= after[j] == targs[i].tid;
		check(found, "thread %d tid %d missing from /proc/self/task", i, targs[i].tid);
	}
	check(my_tid() == main_tid && main_tid == getpid(), "main tid/pid changed");
	check(tls_val == 42, "main TLS changed");
	go_flag = 1;
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	test_done();
}

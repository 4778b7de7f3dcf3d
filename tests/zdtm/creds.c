/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Process attributes: umask, cwd in a subdirectory, lowered rlimits,
 * personality, comm, PR_SET_PDEATHSIG, dumpable, no_new_privs with a
 * seccomp filter (getpriority fails with EPERM), and non-root credentials
 * (groups 1000,1001,1002; gid 1000/1001/1002; uid 1000/1001/1002).
 *
 * stasis-test: zdtm:creds
 */
#include "zdtmtst.h"

#include <errno.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t pdeath_count;

static void usr2_handler(int sig)
{
	(void)sig;
	pdeath_count++;
}

static void install_seccomp(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getpriority, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		test_die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0))
		test_die("PR_SET_SECCOMP: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	char cwd[PATH_MAX], cwd_after[PATH_MAX], comm[17] = { 0 };
	struct rlimit rl_before[RLIM_NLIMITS], rl;
	gid_t groups[] = { 1000, 1001, 1002 }, g_after[64];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	struct stat st_before, st_after;
	unsigned long pers_before;
	int dumpable_before, pdeath = 0, ng, r;
	struct sigaction sa;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr2_handler;
	sigaction(SIGUSR2, &sa, NULL);

	if (mkdir("sub", 0755) || mkdir("sub/dir", 0711) || chdir("sub/dir") || !getcwd(cwd, sizeof(cwd)))
		test_die("cwd setup: %s", strerror(errno));
	stat(".", &st_before);
	umask(027);

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 512;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_CORE, &rl);
	rl.rlim_cur = 0;
	setrlimit(RLIMIT_CORE, &rl);
	getrlimit(RLIMIT_STACK, &rl);
	rl.rlim_cur = 4 << 20;
	setrlimit(RLIMIT_STACK, &rl);
	getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = 1 << 30;
	setrlimit(RLIMIT_FSIZE, &rl);
	getrlimit(RLIMIT_NPROC, &rl); /* lowered hard limit: allowed without caps */
	rl.rlim_cur = 4000;
	rl.rlim_max = 5000;
	setrlimit(RLIMIT_NPROC, &rl);
	getrlimit(RLIMIT_MSGQUEUE, &rl);
	rl.rlim_cur = rl.rlim_max = 8192;
	setrlimit(RLIMIT_MSGQUEUE, &rl);
	for (int i = 0; i < RLIM_NLIMITS; i++)
		getrlimit(i, &rl_before[i]);

	personality(personality(0xffffffff) | ADDR_NO_RANDOMIZE);
	pers_before = (unsigned long)personality(0xffffffff);
	prctl(PR_SET_NAME, "zdtm-creds-x", 0, 0, 0);
	install_seccomp();
	if (setgroups(3, groups) || setresgid(1000, 1001, 1002) || setresuid(1000, 1001, 1002))
		test_die("set credentials: %s", strerror(errno));
	/* after the credential change, which clears it */
	prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0);
	dumpable_before = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	errno = 0;
	r = getpriority(PRIO_PROCESS, 0);
	if (r != -1 || errno != EPERM)
		test_die("seccomp filter not effective: getpriority returned %d (%s)", r, strerror(errno));

	test_ready();
	test_wait();

	check(umask(027) == 027, "umask changed");
	if (!getcwd(cwd_after, sizeof(cwd_after)))
		fail("getcwd: %s", strerror(errno));
	else
		check(!strcmp(cwd, cwd_after), "cwd is %s, was %s", cwd_after, cwd);
	if (stat(".", &st_after))
		test_msg("stat(.) after: %s (expected without access to the tree)", strerror(errno));
	else
		check(st_after.st_ino == st_before.st_ino && st_after.st_dev == st_before.st_dev, "cwd inode changed");
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		getrlimit(i, &rl);
		check(rl.rlim_cur == rl_before[i].rlim_cur && rl.rlim_max == rl_before[i].rlim_max,
		      "rlimit %d is %llu/%llu, was %llu/%llu", i, (unsigned long long)rl.rlim_cur,
		      (unsigned long long)rl.rlim_max, (unsigned long long)rl_before[i].rlim_cur,
		      (unsigned long long)rl_before[i].rlim_max);
	}
	check((unsigned long)personality(0xffffffff) == pers_before, "personality %#x, was %#lx",
	      personality(0xffffffff), pers_before);
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	check(!strcmp(comm, "zdtm-creds-x"), "comm is \"%s\"", comm);
	prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
	check(pdeath == SIGUSR2, "pdeathsig is %d, expected %d", pdeath, SIGUSR2);
	if (pdeath_count)
		test_msg("the parent-death signal arrived %d times (parent changed)", (int)pdeath_count);
	check(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == dumpable_before, "dumpable %d, was %d",
	      prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), dumpable_before);
	check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs lost");
	check(prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == SECCOMP_MODE_FILTER, "seccomp mode %d, expected filter",
	      prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
	errno = 0;
	r = getpriority(PRIO_PROCESS, 0);
	check(r == -1 && errno == EPERM, "getpriority returned %d (%s), seccomp filter lost", r, strerror(errno));
	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	check(ru == 1000 && eu == 1001 && su == 1002, "uids %d/%d/%d, expected 1000/1001/1002", ru, eu, su);
	check(rg == 1000 && eg == 1001 && sg == 1002, "gids %d/%d/%d, expected 1000/1001/1002", rg, eg, sg);
	check(setfsuid(-1) == 1001 && setfsgid(-1) == 1001, "fsuid/fsgid %d/%d, expected 1001", setfsuid(-1),
	      setfsgid(-1));
	ng = getgroups(64, g_after);
	check(ng == 3 && g_after[0] == 1000 && g_after[1] == 1001 && g_after[2] == 1002, "groups changed (%d groups)", ng);
	test_done();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A tree of 10 processes (plus a zombie) linked by a ring of pipes with
 * bytes in flight: each process writes a pattern into the pipe to its
 * successor before the dump and reads its predecessor's after. Also: a
 * process group of two siblings, a process in its own session, a thread
 * in one process, and an open file description shared by all (one offset).
 * Each process checks its pid, parent, group and session itself and
 * reports to the root over a pipe.
 *
 * Shape (index: parent): 1,2,3: 0; 4,5: 1; 6,7: 2; 8: 3; 9: 8.
 *
 * stasis-test: zdtm:tree
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmtst.h"

#define N 10
#define LINE 16

static const int parent_of[N] = { -1, 0, 0, 0, 1, 1, 2, 2, 3, 8 };
static int ring[N][2];
static int res[2], rdy[2];
static int shared_fd;
static pid_t kids[N];
static int nkids;

struct report {
	int idx;
	int ok;
	char msg[120];
};

static size_t pattern_len(int i)
{
	return (size_t)(i + 1) * 1000 + 7;
}

static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Runs in process idx after the wake-up; returns NULL or a problem. */
static const char *check_self(int idx, pid_t pid, pid_t ppid, pid_t pgid, pid_t sid)
{
	static char why[120];
	if (getpid() != pid)
		return snprintf(why, sizeof(why), "pid %d is now %d", pid, getpid()), why;
	if (getppid() != ppid)
		return snprintf(why, sizeof(why), "pid %d: parent %d is now %d", pid, ppid, getppid()), why;
	if (getpgid(0) != pgid)
		return snprintf(why, sizeof(why), "pid %d: group %d is now %d", pid, pgid, getpgid(0)), why;
	if (getsid(0) != sid)
		return snprintf(why, sizeof(why), "pid %d: session %d is now %d", pid, sid, getsid(0)), why;
	int prev = (idx + N - 1) % N;
	size_t len = pattern_len(prev);
	char *buf = malloc(len + 1);
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(ring[prev][0], buf + got, len - got);
		if (n <= 0)
			return snprintf(why, sizeof(why), "pid %d: pipe from %d gave %zu of %zu bytes", pid, prev, got,
					len), why;
		got += (size_t)n;
	}
	if (test_verify(buf, len, (uint64_t)prev) >= 0)
		return snprintf(why, sizeof(why), "pid %d: pipe bytes from %d differ", pid, prev), why;
	fcntl(ring[prev][0], F_SETFL, O_NONBLOCK);
	ssize_t extra = read(ring[prev][0], buf, 1); /* 0: its writer is done and gone */
	if (extra > 0 || (extra < 0 && errno != EAGAIN))
		return snprintf(why, sizeof(why), "pid %d: extra bytes in the pipe from %d", pid, prev), why;
	free(buf);
	char line[LINE + 1];
	snprintf(line, sizeof(line), "process %5d.\n", idx % 100000); /* idx < 100000: the line is LINE bytes */
	if (write(shared_fd, line, LINE) != LINE)
		return "write to the shared file failed";
	return NULL;
}

static void forward_wake(void)
{
	for (int i = 0; i < nkids; i++)
		kill(kids[i], SIGUSR1);
}

static void run(int idx)
{
	pid_t pid = getpid(), ppid = getppid();
	/* Close the ring ends this process does not use. */
	int prev = (idx + N - 1) % N;
	for (int i = 0; i < N; i++) {
		if (i != idx)
			close(ring[i][1]);
		if (i != prev)
			close(ring[i][0]);
	}
	if (idx == 7) {
		pthread_t t;
		pthread_create(&t, NULL, idle_thread, NULL);
	}
	pid_t pgid = getpgid(0), sid = getsid(0);
	char *pat = malloc(pattern_len(idx));
	test_fill(pat, pattern_len(idx), (uint64_t)idx);
	if (write(ring[idx][1], pat, pattern_len(idx)) != (ssize_t)pattern_len(idx))
		test_die("pipe write");
	free(pat);
	if (idx != 0 && write(rdy[1], "r", 1) != 1)
		test_die("ready pipe");
	if (idx == 0) {
		/* Everyone is set up before we say so. */
		char b[N];
		size_t got = 0;
		close(rdy[1]);
		while (got < N - 1) {
			ssize_t n = read(rdy[0], b, N - 1 - got);
			if (n <= 0)
				test_die("only %zu processes got ready", got);
			got += (size_t)n;
		}
		close(rdy[0]);
		test_ready();
	}
	test_wait();
	forward_wake();
	const char *why = check_self(idx, pid, ppid, pgid, sid);
	struct report rep = { .idx = idx, .ok = !why };
	snprintf(rep.msg, sizeof(rep.msg), "%s", why ? why : "");
	if (idx != 0 && write(res[1], &rep, sizeof(rep)) != sizeof(rep))
		_exit(3);
	if (idx == 0 && why)
		fail("%s", why);
	for (int i = 0; i < nkids; i++)
		waitpid(kids[i], NULL, 0);
	if (idx != 0)
		_exit(0);
}

/* Forks the children of idx (in index order), each running its part. */
static void spawn_children(int idx)
{
	pid_t first_of_group = 0;
	for (int c = 1; c < N; c++) {
		if (parent_of[c] != idx)
			continue;
		pid_t k = fork();
		if (k < 0)
			test_die("fork");
		if (k == 0) {
			nkids = 0;
			close(rdy[0]);
			if (c == 4)
				setpgid(0, 0);
			if (c == 5)
				setpgid(0, first_of_group);
			if (c == 6)
				setsid();
			spawn_children(c);
			run(c);
		}
		if (c == 4) {
			first_of_group = k;
			setpgid(k, k); /* either of us may get there first */
		}
		if (c == 5)
			setpgid(k, first_of_group);
		kids[nkids++] = k;
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (pipe(res) < 0 || pipe(rdy) < 0)
		test_die("pipe");
	for (int i = 0; i < N; i++)
		if (pipe(ring[i]) < 0)
			test_die("pipe");
	shared_fd = open("shared.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (shared_fd < 0 || write(shared_fd, "header..\n", 9) != 9)
		test_die("shared.txt");
	pid_t zombie = fork();
	if (zombie == 0)
		_exit(7);
	spawn_children(0);
	/* The zombie must be one when we are dumped. */
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	run(0);
	close(res[1]);
	int seen = 0;
	struct report rep;
	while (read(res[0], &rep, sizeof(rep)) == sizeof(rep)) {
		seen++;
		if (!rep.ok)
			fail("process %d: %s", rep.idx, rep.msg);
	}
	check(seen == N - 1, "%d of %d processes reported", seen, N - 1);
	int status = 0;
	check(waitpid(zombie, &status, 0) == zombie, "the zombie %d could not be reaped: %m", zombie);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 7, "the zombie's status is %#x, not exit 7", status);
	off_t end = lseek(shared_fd, 0, SEEK_CUR);
	check(end == 9 + N * LINE, "shared offset is %lld, expected %d", (long long)end, 9 + N * LINE);
	test_done();
}

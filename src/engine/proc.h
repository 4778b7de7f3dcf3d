/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers for /proc text. Pure functions over (buffer, length) so they can
 * be unit-tested on captured text; proc_read() is the size-capped I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_MAX_FILE (256u << 20)

/* VmFlags from smaps that the restore reproduces. */
enum {
	VMF_GROWSDOWN = 1 << 0,  /* gd */
	VMF_HUGEPAGE = 1 << 1,   /* hg */
	VMF_NOHUGEPAGE = 1 << 2, /* nh */
	VMF_DONTDUMP = 1 << 3,   /* dd */
	VMF_DONTCOPY = 1 << 4,   /* dc */
	VMF_WIPEONFORK = 1 << 5, /* wf */
	VMF_LOCKED = 1 << 6,     /* lo */
	VMF_MERGEABLE = 1 << 7,  /* mg */
	VMF_IO = 1 << 8,         /* io: device memory, never saved */
	VMF_PFNMAP = 1 << 9,     /* pf */
	VMF_MAYWRITE = 1 << 10,  /* mw */
	VMF_NORESERVE = 1 << 11, /* nr */
};

struct vma {
	uint64_t start, end, pgoff;
	uint32_t prot;  /* PROT_* */
	bool shared;
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	uint32_t vmflags;
	uint64_t thp_kb; /* AnonHugePages: memory in transparent huge pages */
	char *path; /* "" for anonymous; malloc'd */
};

struct proc_stat {
	char comm[16];
	char state;
	pid_t ppid, pgrp, session;
	int tty_nr;
	long num_threads;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_signal;
	int exit_code; /* zombies: the wait status the parent will read */
};

struct proc_status {
	uint32_t uid[4], gid[4]; /* real, effective, saved, fs */
	uint32_t ngroups;
	uint32_t groups[256];
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;   /* 0 none, 1 strict, 2 filter */
	uint32_t umask;
};

struct fdinfo {
	uint64_t pos;
	uint32_t flags;
	int mnt_id;
};

int proc_read(int dirfd, const char *path, char **ret_buf, size_t *ret_len);
/* Copies the next line of buf (from *pos) NUL-terminated into line and
 * advances *pos; lines that do not fit are skipped. false at the end. */
bool proc_next_line(const char *buf, size_t len, size_t *pos, char *line, size_t size);

int proc_parse_smaps(const char *buf, size_t len, struct vma **ret, size_t *ret_n);
void vmas_free(struct vma *v, size_t n);
int proc_parse_stat(const char *buf, size_t len, struct proc_stat *ret);
int proc_parse_status(const char *buf, size_t len, struct proc_status *ret);
int proc_parse_fdinfo(const char *buf, size_t len, struct fdinfo *ret);
/* A pidfd's fdinfo: the pid it names in our pid namespace ("Pid:"; 0 in
 * another namespace, -1 once reaped). */
int proc_parse_pidfd_pid(const char *buf, size_t len, pid_t *ret);
/* The same for our own pidfd: 0 when it cannot be read. */
pid_t proc_pidfd_pid(int pidfd);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/cleanup.h"
#include "util/util.h"

int proc_read(int dirfd, const char *path, char **ret_buf, size_t *ret_len)
{
	return read_file_at(dirfd, path, PROC_MAX_FILE, ret_buf, ret_len);
}

/* Returns the next line [*pos, eol) and advances past it; NULL at the end. */
static const char *next_line(const char *buf, size_t len, size_t *pos, size_t *ret_len)
{
	if (*pos >= len)
		return NULL;
	const char *s = buf + *pos;
	const char *nl = memchr(s, '\n', len - *pos);
	size_t l = nl ? (size_t)(nl - s) : len - *pos;
	*pos += l + 1;
	*ret_len = l;
	return s;
}

bool proc_next_line(const char *buf, size_t len, size_t *pos, char *line, size_t size)
{
	const char *s;
	size_t l;
	while ((s = next_line(buf, len, pos, &l))) {
		if (l >= size)
			continue;
		memcpy(line, s, l);
		line[l] = 0;
		return true;
	}
	return false;
}

static uint32_t vmflag_bit(const char *f)
{
	static const struct {
		char name[3];
		uint32_t bit;
	} map[] = {
		{ "gd", VMF_GROWSDOWN }, { "hg", VMF_HUGEPAGE }, { "nh", VMF_NOHUGEPAGE },
		{ "dd", VMF_DONTDUMP }, { "dc", VMF_DONTCOPY }, { "wf", VMF_WIPEONFORK },
		{ "lo", VMF_LOCKED }, { "mg", VMF_MERGEABLE }, { "io", VMF_IO },
		{ "pf", VMF_PFNMAP }, { "mw", VMF_MAYWRITE }, { "nr", VMF_NORESERVE },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (f[0] == map[i].name[0] && f[1] == map[i].name[1])
			return map[i].bit;
	return 0;
}

static void parse_vmflags(const char *s, size_t l, struct vma *v)
{
	for (size_t i = 0; i + 1 < l; i++) {
		if (s[i] == ' ')
			continue;
		char f[3] = { s[i], s[i + 1], 0 };
		v->vmflags |= vmflag_bit(f);
		i += 2;
	}
}

/* "start-end perms offset maj:min inode   path" */
static int parse_vma_header(const char *s, size_t l, struct vma *v)
{
	char line[4352];
	char perms[8];
	int path_off = 0;

	if (l >= sizeof(line))
		return -EINVAL;
	memcpy(line, s, l);
	line[l] = 0;
	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64 " %n", &v->start, &v->end,
		   perms, &v->pgoff, &v->dev_major, &v->dev_minor, &v->ino, &path_off) < 7)
		return -EINVAL;
	if (strlen(perms) != 4 || v->end <= v->start)
		return -EINVAL;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	v->path = strdup(path_off > 0 ? line + path_off : "");
	return v->path ? 0 : -ENOMEM;
}

static bool is_vma_header(const char *s, size_t l)
{
	/* Header lines start with a hex address followed by '-'; key lines
	 * ("Size:", "VmFlags:") start with a capital letter and contain ':'. */
	size_t i = 0;
	while (i < l && ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
		i++;
	return i > 0 && i < l && s[i] == '-';
}

/* "   2048 kB": the number (0 when there is none; capped, never wraps). */
static uint64_t parse_kb(const char *s, size_t l)
{
	uint64_t kb = 0;
	size_t i = 0;
	while (i < l && s[i] == ' ')
		i++;
	for (; i < l && s[i] >= '0' && s[i] <= '9' && kb < (1ULL << 50); i++)
		kb = kb * 10 + (uint64_t)(s[i] - '0');
	return kb;
}

int proc_parse_smaps(const char *buf, size_t len, struct vma **ret, size_t *ret_n)
{
	struct vma *v = NULL;
	size_t n = 0, cap = 0, pos = 0, l;
	const char *s;
	int r;

	while ((s = next_line(buf, len, &pos, &l))) {
		if (is_vma_header(s, l)) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct vma *nv = realloc(v, ncap * sizeof(*v));
				if (!nv) {
					r = -ENOMEM;
					goto fail;
				}
				v = nv;
				cap = ncap;
			}
			r = parse_vma_header(s, l, &v[n]);
			if (r < 0)
				goto fail;
			n++;
		} else if (n > 0 && l > 8 && !memcmp(s, "VmFlags:", 8)) {
			parse_vmflags(s + 8, l - 8, &v[n - 1]);
		} else if (n > 0 && l > 14 && !memcmp(s, "AnonHugePages:", 14)) {
			v[n - 1].thp_kb = parse_kb(s + 14, l - 14);
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
fail:
	vmas_free(v, n);
	return r;
}

void vmas_free(struct vma *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

int proc_parse_stat(const char *buf, size_t len, struct proc_stat *ret)
{
	/* comm may contain spaces and ')': it ends at the last ')'. */
	const char *open = memchr(buf, '(', len);
	const char *close = NULL;
	for (size_t i = len; i > 0; i--)
		if (buf[i - 1] == ')') {
			close = buf + i - 1;
			break;
		}
	if (!open || !close || close < open)
		return -EINVAL;
	struct proc_stat st = { 0 };
	size_t cl = (size_t)(close - open - 1);
	memcpy(st.comm, open + 1, cl < 15 ? cl : 15);

	char rest[1024];
	size_t rl = len - (size_t)(close + 1 - buf);
	if (rl >= sizeof(rest))
		return -EINVAL;
	memcpy(rest, close + 1, rl);
	rest[rl] = 0;

	/* Fields 3.. of proc(5); we keep the ones the restore needs. */
	uint64_t f[52] = { 0 };
	char *p = rest, *end;
	if (sscanf(p, " %c", &st.state) != 1)
		return -EINVAL;
	p = strchr(p + 1, ' ');
	for (int i = 4; i <= 52 && p; i++) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			break;
		errno = 0;
		unsigned long long val = strtoull(p, &end, 10);
		if (end == p || errno)
			return -EINVAL;
		f[i - 1] = (uint64_t)val;
		p = end;
	}
	st.ppid = (pid_t)f[3];
	st.pgrp = (pid_t)f[4];
	st.session = (pid_t)f[5];
	st.tty_nr = (int)f[6];
	st.num_threads = (long)f[19];
	st.start_code = f[25];
	st.end_code = f[26];
	st.start_stack = f[27];
	st.exit_signal = (int)f[37];
	st.start_data = f[44];
	st.end_data = f[45];
	st.start_brk = f[46];
	st.arg_start = f[47];
	st.arg_end = f[48];
	st.env_start = f[49];
	st.env_end = f[50];
	st.exit_code = (int)f[51];
	*ret = st;
	return 0;
}

static int parse_ids(const char *s, uint32_t out[4])
{
	unsigned a, b, c, d;
	if (sscanf(s, "%u %u %u %u", &a, &b, &c, &d) != 4)
		return -EINVAL;
	out[0] = a, out[1] = b, out[2] = c, out[3] = d;
	return 0;
}

static int parse_status_line(const char *key, const char *val, struct proc_status *st)
{
	if (streq(key, "Uid"))
		return parse_ids(val, st->uid);
	if (streq(key, "Gid"))
		return parse_ids(val, st->gid);
	if (streq(key, "Groups")) {
		const char *p = val;
		char *end;
		st->ngroups = 0;
		for (;;) {
			while (*p == ' ' || *p == '\t')
				p++;
			if (!*p)
				break;
			unsigned long g = strtoul(p, &end, 10);
			if (end == p || st->ngroups >= ARRAY_SIZE(st->groups))
				return -EINVAL;
			st->groups[st->ngroups++] = (uint32_t)g;
			p = end;
		}
		return 0;
	}
	struct {
		const char *k;
		uint64_t *v;
	} caps[] = { { "CapInh", &st->cap_inh }, { "CapPrm", &st->cap_prm }, { "CapEff", &st->cap_eff },
		     { "CapBnd", &st->cap_bnd }, { "CapAmb", &st->cap_amb } };
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
		if (streq(key, caps[i].k))
			return parse_u64(val, 16, caps[i].v);
	if (streq(key, "NoNewPrivs"))
		return parse_int(val, &st->no_new_privs);
	if (streq(key, "Seccomp"))
		return parse_int(val, &st->seccomp);
	if (streq(key, "Umask")) {
		uint64_t u;
		int r = parse_u64(val, 8, &u);
		st->umask = (uint32_t)u;
		return r;
	}
	return 0;
}

int proc_parse_status(const char *buf, size_t len, struct proc_status *ret)
{
	struct proc_status st = { 0 };
	size_t pos = 0;
	char line[4096];

	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = 0;
		char *val = colon + 1;
		while (*val == '\t' || *val == ' ')
			val++;
		int r = parse_status_line(line, val, &st);
		if (r < 0)
			return r;
	}
	*ret = st;
	return 0;
}

int proc_parse_fdinfo(const char *buf, size_t len, struct fdinfo *ret)
{
	struct fdinfo fi = { 0 };
	size_t pos = 0;
	int seen = 0;
	char line[256];

	while (proc_next_line(buf, len, &pos, line, sizeof(line))) {
		unsigned long long v;
		unsigned int o;
		int m;
		if (sscanf(line, "pos: %llu", &v) == 1)
			fi.pos = v, seen |= 1;
		else if (sscanf(line, "flags: %o", &o) == 1)
			fi.flags = o, seen |= 2;
		else if (sscanf(line, "mnt_id: %d", &m) == 1)
			fi.mnt_id = m;
	}
	if (seen != 3)
		return -EINVAL;
	*ret = fi;
	return 0;
}

int proc_parse_pidfd_pid(const char *buf, size_t len, pid_t *ret)
{
	size_t pos = 0;
	char line[128];
	int x;
	while (proc_next_line(buf, len, &pos, line, sizeof(line)))
		if (sscanf(line, "Pid: %d", &x) == 1) {
			*ret = x;
			return 0;
		}
	return -EBADMSG;
}

pid_t proc_pidfd_pid(int pidfd)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	pid_t pid = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if (proc_read(AT_FDCWD, path, &buf, &len) < 0 || proc_parse_pidfd_pid(buf, len, &pid) < 0)
		return 0;
	return pid;
}

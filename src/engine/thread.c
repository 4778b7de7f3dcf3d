/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/thread.h"

#include <cpuid.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "engine/remote-batch.h"
#include "image/json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif

void thread_rec_free(struct thread_rec *t)
{
	if (!t)
		return;
	free(t->xstate);
	free(t->pending);
	for (size_t i = 0; i < t->nfilters; i++)
		free(t->filters[i].insns);
	free(t->filters);
	memset(t, 0, sizeof(*t));
}

uint32_t xsave_size(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(0xd, 0, &a, &b, &c, &d))
		return 0;
	return b;
}

uint64_t xsave_features(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(0xd, 0, &a, &b, &c, &d))
		return 0;
	return ((uint64_t)d << 32) | a;
}

void regs_rewind_syscall(struct user_regs_struct *regs, bool image)
{
	if ((long)regs->orig_rax < 0)
		return;
	switch (-(long)regs->rax) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		regs->rax = regs->orig_rax;
		regs->rip -= 2;
		break;
	case ERESTART_RESTARTBLOCK:
		/* The kernel's restart block (remaining time of a sleep) lives
		 * in the task, not in the image: a restored task re-issues the
		 * original call, which may only sleep longer, never shorter. */
		regs->rax = image ? regs->orig_rax : (uint64_t)SYS_restart_syscall;
		regs->rip -= 2;
		break;
	}
}

static int dump_seccomp(pid_t tid, struct thread_rec *t)
{
	for (unsigned long i = 0; i < MAX_FILTERS; i++) {
		long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, NULL);
		if (n < 0) {
			if (errno == ENOENT)
				break;
			if (errno == EINVAL && i == 0)
				return 0; /* no filter mode */
			return -errno;
		}
		if (n == 0 || n > MAX_FILTER_INSNS)
			return -E2BIG;
		void *buf = calloc((size_t)n, sizeof(struct sock_filter));
		if (!buf)
			return -ENOMEM;
		if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, buf) != n) {
			free(buf);
			return -EIO;
		}
		struct seccomp_blob *nf = realloc(t->filters, (t->nfilters + 1) * sizeof(*nf));
		if (!nf) {
			free(buf);
			return -ENOMEM;
		}
		t->filters = nf;
		/* index 0 is the newest filter: keep oldest first. */
		memmove(t->filters + 1, t->filters, t->nfilters * sizeof(*nf));
		t->filters[0] = (struct seccomp_blob){ .len = (uint16_t)n, .insns = buf };
		t->nfilters++;
	}
	return 0;
}

int pending_dump(pid_t tid, bool shared, siginfo_t **ret, size_t *ret_n)
{
	struct __ptrace_peeksiginfo_args a = { .off = 0, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
					       .nr = MAX_PENDING };
	_cleanup_free_ siginfo_t *si = calloc(MAX_PENDING, sizeof(siginfo_t));
	if (!si)
		return -ENOMEM;
	long n = ptrace(PTRACE_PEEKSIGINFO, tid, &a, si);
	if (n < 0)
		return -errno;
	*ret_n = (size_t)n;
	*ret = n ? TAKE_PTR(si) : NULL;
	return 0;
}

int thread_dump_ptrace(pid_t tid, struct thread_rec *t)
{
	int r;

	t->tid = tid;
	char path[64];
	_cleanup_free_ char *comm = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/comm", tid);
	if ((r = read_file_at(AT_FDCWD, path, 64, &comm, &len)) < 0)
		return r;
	comm[strcspn(comm, "\n")] = 0;
	snprintf(t->comm, sizeof(t->comm), "%s", comm);
	r = regs_get(tid, &t->regs);
	if (r < 0)
		return r;
	t->xstate = malloc(XSTATE_MAX);
	if (!t->xstate)
		return -ENOMEM;
	struct iovec iov = { t->xstate, XSTATE_MAX };
	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) < 0)
		return -errno;
	t->xstate_len = iov.iov_len;
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(uint64_t), &t->sigmask) < 0)
		return -errno;
	if (syscall(SYS_get_robust_list, tid, &t->robust_head, &t->robust_len) < 0)
		return -errno;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(t->rseq), &t->rseq) < 0)
		memset(&t->rseq, 0, sizeof(t->rseq));
	r = pending_dump(tid, false, &t->pending, &t->npending);
	if (r < 0)
		return r;
	return dump_seccomp(tid, t);
}

int thread_dump_remote(struct remote *r, struct thread_rec *t)
{
	long ret = remote_syscall(r, t->tid, SYS_prctl, PR_GET_TID_ADDRESS, r->scratch + 8192);
	if (ret < 0)
		return (int)ret;
	int e = remote_read(r, r->scratch + 8192, &t->clear_tid, sizeof(t->clear_tid));
	if (e < 0)
		return e;
	ret = remote_syscall(r, t->tid, SYS_sigaltstack, 0, r->scratch + 8192);
	if (ret < 0)
		return (int)ret;
	stack_t ss;
	e = remote_read(r, r->scratch + 8192, &ss, sizeof(ss));
	if (e < 0)
		return e;
	t->ss_sp = (uint64_t)ss.ss_sp;
	t->ss_size = ss.ss_size;
	t->ss_flags = ss.ss_flags;
	return 0;
}

void pending_to_json(struct json_builder *b, const char *key, const siginfo_t *si, size_t n)
{
	json_t *a = jb_array(b, key);
	for (size_t i = 0; a && i < n; i++) {
		_cleanup_free_ char *h = hex_encode(&si[i], sizeof(si[i]));
		jb_append(b, a, h ? json_string(h) : NULL);
	}
}

void thread_to_json(const struct thread_rec *t, struct json_builder *b)
{
	jb_int(b, "tid", t->tid);
	jb_str(b, "comm", t->comm);
	jb_hex(b, "regs", &t->regs, sizeof(t->regs));
	jb_hex(b, "xstate", t->xstate, t->xstate_len);
	jb_x64(b, "sigmask", t->sigmask);
	jb_u64(b, "clear_tid", t->clear_tid);
	jb_u64(b, "robust_head", t->robust_head);
	jb_u64(b, "robust_len", t->robust_len);
	jb_hex(b, "rseq", &t->rseq, sizeof(t->rseq));
	jb_u64(b, "ss_sp", t->ss_sp);
	jb_u64(b, "ss_size", t->ss_size);
	jb_int(b, "ss_flags", t->ss_flags);
	pending_to_json(b, "pending", t->pending, t->npending);
	json_t *f = jb_array(b, "seccomp");
	for (size_t i = 0; f && i < t->nfilters; i++) {
		struct json_builder o;
		jb_begin(&o);
		jb_hex(&o, "insns", t->filters[i].insns, t->filters[i].len * sizeof(struct sock_filter));
		jb_append_obj(b, f, &o);
	}
}

int pending_from_json(const json_t *j, const char *key, siginfo_t **ret, size_t *ret_n)
{
	json_t *a;
	int r = json_get_array(j, key, MAX_PENDING, &a);
	if (r < 0)
		return r;
	size_t n = json_array_size(a);
	if (!n)
		return 0;
	_cleanup_free_ siginfo_t *si = calloc(n, sizeof(*si));
	if (!si)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *h = json_string_value(json_array_get(a, i));
		if (!h || hex_decode(h, &si[i], sizeof(si[i])) < 0)
			return -EBADMSG;
		if (si[i].si_signo < 1 || si[i].si_signo > 64)
			return -EBADMSG;
	}
	*ret = TAKE_PTR(si);
	*ret_n = n;
	return 0;
}

static int filters_from_json(const json_t *j, struct thread_rec *t)
{
	json_t *a;
	int r = json_get_array(j, "seccomp", MAX_FILTERS, &a);
	if (r < 0)
		return r;
	size_t n = json_array_size(a);
	if (!n)
		return 0;
	t->filters = calloc(n, sizeof(*t->filters));
	if (!t->filters)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		r = json_get_hex_alloc(json_array_get(a, i), "insns", MAX_FILTER_INSNS * sizeof(struct sock_filter),
				       &t->filters[i].insns, &len);
		if (r < 0)
			return r;
		t->nfilters++;
		if (len == 0 || len % sizeof(struct sock_filter))
			return -EBADMSG;
		t->filters[i].len = (uint16_t)(len / sizeof(struct sock_filter));
	}
	return 0;
}

int thread_from_json(const json_t *j, struct thread_rec *t)
{
	int r, tid;
	uint64_t v;

	memset(t, 0, sizeof(*t));
	if ((r = json_get_int(j, "tid", &tid)) < 0 || tid <= 0)
		return -EBADMSG;
	t->tid = tid;
	const char *comm;
	if ((r = json_get_str(j, "comm", &comm)) < 0 || strlen(comm) >= sizeof(t->comm))
		return -EBADMSG;
	memcpy(t->comm, comm, strlen(comm) + 1);
	if ((r = json_get_hex(j, "regs", &t->regs, sizeof(t->regs))) < 0)
		return r;
	if ((r = json_get_hex_alloc(j, "xstate", XSTATE_MAX, (void **)&t->xstate, &t->xstate_len)) < 0)
		return r;
	if ((r = json_get_x64(j, "sigmask", &t->sigmask)) < 0)
		return r;
	if ((r = json_get_u64(j, "clear_tid", &t->clear_tid)) < 0 ||
	    (r = json_get_u64(j, "robust_head", &t->robust_head)) < 0 ||
	    (r = json_get_u64(j, "robust_len", &t->robust_len)) < 0 ||
	    (r = json_get_hex(j, "rseq", &t->rseq, sizeof(t->rseq))) < 0 ||
	    (r = json_get_u64(j, "ss_sp", &t->ss_sp)) < 0 || (r = json_get_u64(j, "ss_size", &t->ss_size)) < 0 ||
	    (r = json_get_u64(j, "ss_flags", &v)) < 0)
		return r < 0 ? r : -EBADMSG;
	t->ss_flags = (int)v;
	/* The kernel knows one size of robust list head; anything else would
	 * only fail later, inside the restore. */
	if (t->robust_len != sizeof(struct robust_list_head))
		return -EBADMSG;
	if ((r = pending_from_json(j, "pending", &t->pending, &t->npending)) < 0)
		return r;
	return filters_from_json(j, t);
}

static const char *const thread_what[] = {
	"its name", "its clear_child_tid address", "its robust futex list", "its rseq area", "its sigaltstack",
};

/* In one batch (remote-batch.h), each call in the thread itself. */
int thread_restore_remote(struct remote *r, const struct thread_rec *t)
{
	_cleanup_free_ struct rbatch *b = malloc(sizeof(*b));
	stack_t ss = { .ss_sp = (void *)t->ss_sp, .ss_size = t->ss_size, .ss_flags = t->ss_flags & ~SS_ONSTACK };
	if (!b)
		return -ENOMEM;
	rbatch_begin(b, r, t->tid);
	rbatch_call(b, 0, 0, SYS_prctl, PR_SET_NAME, rbatch_data(b, t->comm, sizeof(t->comm)));
	rbatch_call(b, 1, 0, SYS_set_tid_address, t->clear_tid);
	if (t->robust_head)
		rbatch_call(b, 2, 0, SYS_set_robust_list, t->robust_head, t->robust_len);
	if (t->rseq.rseq_abi_pointer)
		rbatch_call(b, 3, 0, SYS_rseq, t->rseq.rseq_abi_pointer, t->rseq.rseq_abi_size, 0, t->rseq.signature);
	if (t->ss_size && !(t->ss_flags & SS_DISABLE))
		rbatch_call(b, 4, 0, SYS_sigaltstack, rbatch_data(b, &ss, sizeof(ss)), 0);
	int e = rbatch_run(b);
	if (e < 0 && b->failed == RBATCH_NONE)
		return log_error_errno(e, "tid %d: cannot restore its name, futex and rseq areas: %m", t->tid);
	if (e < 0)
		return log_error_errno(e, "tid %d: cannot restore %s: %m", t->tid, thread_what[b->calls[b->failed].tag]);
	return 0;
}

/* The same profile, built again: runc (through libseccomp) does not emit
 * its rules in the same order each time, so the programs of two starts of
 * one configuration have the same length but not always the same bytes. */
static bool same_filter(pid_t tid, const struct seccomp_blob *a, const struct seccomp_blob *b)
{
	if (a->len != b->len)
		return false;
	if (memcmp(a->insns, b->insns, a->len * sizeof(struct sock_filter)))
		log_debug("tid %d: its runtime's seccomp filter has the image's length, not its order", tid);
	return true;
}

/* The filters the thread has already: a container's runtime installs its
 * profile in the stub as it did in the original (the restore asks for the
 * original's security options), so the image's list starts with them and
 * only the rest is installed. A filter the image lacks cannot be taken
 * off. */
static int filters_in_place(const struct thread_rec *t, size_t *ret_n)
{
	struct thread_rec now = { .tid = t->tid };
	int e = dump_seccomp(t->tid, &now);
	size_t k = 0;
	while (e >= 0 && k < now.nfilters && k < t->nfilters && same_filter(t->tid, &now.filters[k], &t->filters[k]))
		k++;
	if (e >= 0 && k < now.nfilters)
		e = log_error_errno(-EPERM, "tid %d: its runtime gave it a seccomp filter the image does not have "
				    "(%zu filters, %zu in the image, %zu the same); restore with the original's "
				    "security options", t->tid, now.nfilters, t->nfilters, k);
	for (size_t i = 0; i < now.nfilters; i++)
		free(now.filters[i].insns);
	free(now.filters);
	if (e < 0)
		return e;
	*ret_n = k;
	return 0;
}

int thread_restore_seccomp(struct remote *r, const struct thread_rec *t)
{
	size_t first;
	int e = filters_in_place(t, &first);
	if (e < 0)
		return e;
	for (size_t i = first; i < t->nfilters; i++) {
		size_t bytes = t->filters[i].len * sizeof(struct sock_filter);
		uint64_t insns = r->scratch + 16384;
		struct sock_fprog prog = { .len = t->filters[i].len, .filter = (struct sock_filter *)insns };
		if (16384 + bytes + sizeof(prog) > r->scratch_len)
			return -E2BIG;
		e = remote_write(r, insns, t->filters[i].insns, bytes);
		if (e < 0)
			return e;
		e = remote_write(r, r->scratch + 8192, &prog, sizeof(prog));
		if (e < 0)
			return e;
		long ret = remote_syscall(r, t->tid, SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, r->scratch + 8192);
		if (ret < 0)
			return log_error_errno((int)ret, "tid %d: cannot install seccomp filter %zu: %m", t->tid, i);
	}
	return 0;
}

int thread_restore_pending(struct remote *r, pid_t pid, const struct thread_rec *t)
{
	for (size_t i = 0; i < t->npending; i++) {
		int e = remote_write(r, r->scratch + 8192, &t->pending[i], sizeof(siginfo_t));
		if (e < 0)
			return e;
		long ret = remote_syscall(r, t->tid, SYS_rt_tgsigqueueinfo, pid, t->tid, t->pending[i].si_signo,
					  r->scratch + 8192);
		if (ret < 0)
			return log_error_errno((int)ret, "tid %d: cannot queue signal %d: %m", t->tid,
					       t->pending[i].si_signo);
	}
	return 0;
}

int thread_restore_regs(const struct thread_rec *t)
{
	struct user_regs_struct regs = t->regs;
	regs.orig_rax = (uint64_t)-1;
	int r = regs_set(t->tid, &regs);
	if (r < 0)
		return log_error_errno(r, "tid %d: cannot set registers: %m", t->tid);
	struct iovec iov = { t->xstate, t->xstate_len };
	if (ptrace(PTRACE_SETREGSET, t->tid, NT_X86_XSTATE, &iov) < 0)
		return log_error_errno(-errno, "tid %d: cannot set XSAVE state: %m", t->tid);
	if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(uint64_t), &t->sigmask) < 0)
		return log_error_errno(-errno, "tid %d: cannot set signal mask: %m", t->tid);
	return 0;
}

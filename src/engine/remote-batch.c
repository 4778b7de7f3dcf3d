/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine/remote-batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/log.h"
#include "util/util.h"

/* Where the batch goes in the scratch area (remote.c has its layout):
 * clear of the strings and data at 4-64 KiB, of the iovecs at 128 KiB and
 * of the thread stacks at the end. The loop, then the calls, then data. */
#define RB_AT (64u << 10)
#define RB_CODE_LEN 64u
#define RB_CALLS_AT (RB_AT + RB_CODE_LEN)
#define RB_DATA_AT (RB_CALLS_AT + RBATCH_MAX * sizeof(struct rb_entry))

/* One call as the loop reads it. */
struct rb_entry {
	uint64_t nr, a[6], ret;
};

/* r12: the next entry, r13: the end. For each: the registers of a system
 * call from the entry, `syscall`, the result stored, the next entry; it
 * stops at the end or after a result in [-4095, -1] (mmap's addresses are
 * never there), on an int3 whose next instruction is rb_loop_end. */
extern const uint8_t rb_loop[], rb_loop_end[];
__asm__(".pushsection .rodata\n"
	".globl rb_loop\n"
	".globl rb_loop_end\n"
	"rb_loop:\n"
	"1:	cmp %r13, %r12\n"
	"	jae 2f\n"
	"	mov (%r12), %rax\n"
	"	mov 8(%r12), %rdi\n"
	"	mov 16(%r12), %rsi\n"
	"	mov 24(%r12), %rdx\n"
	"	mov 32(%r12), %r10\n"
	"	mov 40(%r12), %r8\n"
	"	mov 48(%r12), %r9\n"
	"	syscall\n"
	"	mov %rax, 56(%r12)\n"
	"	add $64, %r12\n"
	"	cmp $-4095, %rax\n"
	"	jb 1b\n"
	"2:	int3\n"
	"rb_loop_end:\n"
	".popsection\n");

void rbatch_begin(struct rbatch *b, struct remote *r, pid_t tid)
{
	b->r = r;
	b->tid = tid;
	b->n = b->data_len = 0;
	b->failed = 0;
}

bool rbatch_room(const struct rbatch *b, size_t n, size_t len)
{
	return b->n + n <= RBATCH_MAX && b->data_len + ((len + 7) & ~(size_t)7) <= RBATCH_DATA;
}

int rbatch_reserve(struct rbatch *b, size_t n, size_t len)
{
	if (n > RBATCH_MAX || len > RBATCH_DATA)
		return -E2BIG;
	return rbatch_room(b, n, len) ? 0 : rbatch_run(b);
}

size_t rbatch_add(struct rbatch *b, uint32_t tag, uint32_t flags, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		  uint64_t a3, uint64_t a4, uint64_t a5)
{
	struct rbatch_call *c = &b->calls[b->n];
	*c = (struct rbatch_call){ .nr = nr, .a = { a0, a1, a2, a3, a4, a5 }, .ret = -ECANCELED, .flags = flags,
				   .tag = tag };
	return b->n++;
}

uint64_t rbatch_data(struct rbatch *b, const void *buf, size_t len)
{
	uint64_t at = b->r->scratch + RB_DATA_AT + b->data_len;
	memcpy(b->data + b->data_len, buf, len);
	b->data_len += (len + 7) & ~(size_t)7;
	return at;
}

/* Tests (STASIS_INJECT_FAIL=remote:batch-call): the middle call of the
 * first batch of three calls or more that must not fail is made to fail
 * (a system call number that does not exist: -ENOSYS), the calls before
 * it made, those after not; the caller's message must name it. Quiet:
 * the caller's one line is what is tested. */
static void inject_middle(struct rbatch *b)
{
	static bool done;
	const char *e = getenv("STASIS_INJECT_FAIL");
	size_t strict = 0, k = 0;
	if (__atomic_load_n(&done, __ATOMIC_RELAXED) || !e || !streq(e, "remote:batch-call"))
		return;
	for (size_t i = 0; i < b->n; i++)
		strict += !(b->calls[i].flags & RB_MAY_FAIL);
	if (strict < 3)
		return;
	for (size_t i = 0; i < b->n; i++)
		if (!(b->calls[i].flags & RB_MAY_FAIL) && k++ == strict / 2) {
			/* Once, whichever driver (restore-drivers.h) gets here first. */
			if (!__atomic_exchange_n(&done, true, __ATOMIC_RELAXED))
				b->calls[i].nr = 4095;
			return;
		}
}

static bool is_error(long ret)
{
	return ret < 0 && ret >= -4095;
}

/* Makes calls [from, n) in one round trip; *ret_done: how many were made. */
static int run_from(struct rbatch *b, size_t from, size_t *ret_done)
{
	struct remote *r = b->r;
	size_t n = b->n - from, code_len = (size_t)(rb_loop_end - rb_loop);
	_cleanup_free_ uint8_t *buf = calloc(1, RB_CODE_LEN + n * sizeof(struct rb_entry));
	struct rb_entry *ent = (struct rb_entry *)(buf + RB_CODE_LEN);
	struct user_regs_struct regs;
	if (!buf)
		return -ENOMEM;
	memcpy(buf, rb_loop, code_len);
	for (size_t i = 0; i < n; i++) {
		const struct rbatch_call *c = &b->calls[from + i];
		ent[i] = (struct rb_entry){ .nr = (uint64_t)c->nr, .ret = (uint64_t)-ECANCELED };
		memcpy(ent[i].a, c->a, sizeof(ent[i].a));
	}
	int e = remote_write(r, r->scratch + RB_AT, buf, RB_CODE_LEN + n * sizeof(*ent));
	if (e < 0 || (e = regs_get(b->tid, &regs)) < 0)
		return e;
	regs.rip = r->scratch + RB_AT;
	regs.orig_rax = (uint64_t)-1; /* no syscall restart on the state we replace */
	regs.r12 = r->scratch + RB_CALLS_AT;
	regs.r13 = regs.r12 + n * sizeof(*ent);
	if ((e = remote_run_code(r, b->tid, &regs, r->scratch + RB_AT + code_len)) < 0 ||
	    (e = remote_read(r, r->scratch + RB_CALLS_AT, ent, n * sizeof(*ent))) < 0)
		return e;
	size_t done = (regs.r12 - (r->scratch + RB_CALLS_AT)) / sizeof(*ent);
	if (done > n)
		return -EFAULT;
	for (size_t i = 0; i < done; i++)
		b->calls[from + i].ret = (long)ent[i].ret;
	r->calls += done;
	*ret_done = done;
	return 0;
}

/* Where the task has no code of ours (a scratch area that is not
 * executable, or none; the dump's tasks), the calls go one by one. */
static int run_singly(struct rbatch *b, size_t from, size_t *ret_done)
{
	struct rbatch_call *c = &b->calls[from];
	c->ret = remote_syscall6(b->r, b->tid, c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
	*ret_done = 1;
	return 0;
}

static bool has_loop_room(const struct remote *r)
{
	return r->scratch && r->syscall_ip == r->scratch && !r->threads && r->scratch_len >= RB_DATA_AT + RBATCH_DATA;
}

int rbatch_run(struct rbatch *b)
{
	size_t from = 0, done;
	int e = 0;
	b->failed = RBATCH_NONE;
	inject_middle(b);
	bool loop = has_loop_room(b->r);
	if (b->n && !b->r->scratch)
		e = -EFAULT; /* nowhere for the data */
	if (e < 0 || (b->data_len && (e = remote_write(b->r, b->r->scratch + RB_DATA_AT, b->data, b->data_len)) < 0))
		goto out;
	while (from < b->n) {
		e = loop ? run_from(b, from, &done) : run_singly(b, from, &done);
		if (e < 0 || (!done && (e = -EFAULT)))
			goto out;
		from += done;
		if (!is_error(b->calls[from - 1].ret))
			continue;
		if (!(b->calls[from - 1].flags & RB_MAY_FAIL)) {
			b->failed = from - 1;
			e = (int)b->calls[from - 1].ret;
			goto out;
		}
	}
out:
	b->n = b->data_len = 0;
	return e;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clone3_vm (clone-vm.h). glibc has no clone3 that runs a function on a
 * new stack, and the raw syscall cannot return into C in the child: it
 * would return through our own stack frames, which we still need. So the
 * child's side is a few instructions here: it starts on its stack with
 * fn and arg in r8 and r9 (kept across the syscall), calls fn and, should
 * fn return, exits. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>

#include "engine/clone-vm.h"

long clone3_vm_raw(struct clone_args_v2 *a, size_t args_size, void (*fn)(void *), void *arg);

__asm__(".text\n"
	".globl clone3_vm_raw\n"
	".type clone3_vm_raw,@function\n"
	"clone3_vm_raw:\n"
	"	mov %rdx, %r8\n"
	"	mov %rcx, %r9\n"
	"	mov $435, %eax\n" /* __NR_clone3 */
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 1f\n"
	"	xor %ebp, %ebp\n"
	"	mov %r9, %rdi\n"
	"	call *%r8\n"
	"	mov $127, %edi\n"
	"	mov $60, %eax\n" /* __NR_exit */
	"	syscall\n"
	"	hlt\n"
	"1:	ret\n"
	".size clone3_vm_raw, .-clone3_vm_raw\n"
	".globl raw_syscall\n"
	".type raw_syscall,@function\n"
	"raw_syscall:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	syscall\n"
	"	ret\n"
	".size raw_syscall, .-raw_syscall\n"
	".section .note.GNU-stack,\"\",@progbits\n"
	".text\n");

long clone3_vm(struct clone_args_v2 *a, void *stack, size_t size, void (*fn)(void *), void *arg)
{
	/* The child's stack top, 16-byte aligned as its call expects. */
	uintptr_t lo = ((uintptr_t)stack + 15) & ~(uintptr_t)15, hi = ((uintptr_t)stack + size) & ~(uintptr_t)15;
	a->flags |= CLONE_VM;
	a->stack = lo;
	a->stack_size = hi - lo;
	return clone3_vm_raw(a, sizeof(*a), fn, arg);
}

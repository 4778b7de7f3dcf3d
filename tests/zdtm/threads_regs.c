/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Register spinners for the threads workload: load distinct values into
 * the vector, mask and callee-saved registers, spin (partly in user mode,
 * partly in sched_yield) until *flag is set, then store the registers.
 * Built with -mavx512f; regs_spin_avx512 is only called when the CPU has
 * it. Layout of in/out (uint64_t): [0,256) zmm0-31 (or ymm0-15 in the
 * first 64), [256,263) k1-k7, [263,267) r12-r15.
 *
 * stasis-build: part-of=threads c_args=-mavx512f
 */
#include "threads_regs.h"

#define SPIN_LOOP                                                                \
	"1:\n"                                                                   \
	"movl $2000, %%eax\n"                                                    \
	"2: pause\n"                                                             \
	"decl %%eax\n"                                                           \
	"jnz 2b\n"                                                               \
	"movl $24, %%eax\n" /* sched_yield */                                    \
	"syscall\n"                                                              \
	"cmpl $0, (%[flag])\n"                                                   \
	"je 1b\n"

void regs_spin_avx512(const uint64_t *in, uint64_t *out, volatile int *flag)
{
	__asm__ volatile(
		".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
		"vmovdqu64 \\i*64(%[in]), %%zmm\\i\n"
		".endr\n"
		".irp i,1,2,3,4,5,6,7\n"
		"kmovw 2048+(\\i-1)*8(%[in]), %%k\\i\n"
		".endr\n"
		"movq 2104(%[in]), %%r12\n"
		"movq 2112(%[in]), %%r13\n"
		"movq 2120(%[in]), %%r14\n"
		"movq 2128(%[in]), %%r15\n"
		SPIN_LOOP
		".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
		"vmovdqu64 %%zmm\\i, \\i*64(%[out])\n"
		".endr\n"
		".irp i,1,2,3,4,5,6,7\n"
		"kmovw %%k\\i, 2048+(\\i-1)*8(%[out])\n"
		".endr\n"
		"movq %%r12, 2104(%[out])\n"
		"movq %%r13, 2112(%[out])\n"
		"movq %%r14, 2120(%[out])\n"
		"movq %%r15, 2128(%[out])\n"
		"vzeroupper\n"
		:
		: [in] "r"(in), [out] "r"(out), [flag] "r"(flag)
		: "rax", "rcx", "r11", "r12", "r13", "r14", "r15", "memory", "cc",
		  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
		  "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
		  "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
		  "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

void regs_spin_avx2(const uint64_t *in, uint64_t *out, volatile int *flag)
{
	__asm__ volatile(
		".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
		"vmovdqu \\i*32(%[in]), %%ymm\\i\n"
		".endr\n"
		"movq 2104(%[in]), %%r12\n"
		"movq 2112(%[in]), %%r13\n"
		"movq 2120(%[in]), %%r14\n"
		"movq 2128(%[in]), %%r15\n"
		SPIN_LOOP
		".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
		"vmovdqu %%ymm\\i, \\i*32(%[out])\n"
		".endr\n"
		"movq %%r12, 2104(%[out])\n"
		"movq %%r13, 2112(%[out])\n"
		"movq %%r14, 2120(%[out])\n"
		"movq %%r15, 2128(%[out])\n"
		"vzeroupper\n"
		:
		: [in] "r"(in), [out] "r"(out), [flag] "r"(flag)
		: "rax", "rcx", "r11", "r12", "r13", "r14", "r15", "memory", "cc",
		  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

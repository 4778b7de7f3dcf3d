/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The restore stub: the smallest process that can be turned into another
 * one. It only waits (pause(2) in a loop) until the restorer seizes it and
 * replaces its whole address space; no libc, no stack use, no data. */
__asm__(".text\n"
	".globl _start\n"
	"_start:\n"
	"1:	mov $34, %eax\n" /* __NR_pause */
	"	syscall\n"
	"	jmp 1b\n"
	".section .note.GNU-stack,\"\",@progbits\n");

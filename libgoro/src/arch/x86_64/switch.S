/* SPDX-License-Identifier: MIT */
/*
 * switch.S - x86-64 goroutine context switch.  The contract (registers,
 * frame layout, alignment) is in arch.h; keep the two in step.
 */
	.text

/*
 * void gogo_switch(struct gobuf *save, struct gobuf *load)
 * Push the callee-saved state, store rsp in save->sp, take load->sp,
 * pop the state saved there and return into that context.
 */
	.globl	gogo_switch
	.hidden	gogo_switch
	.type	gogo_switch, @function
	.p2align 4
gogo_switch:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	movq	%rsp, %rbp		/* keep the frame chain during the switch */
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movl	(%rsp), %eax		/* kept to skip reloading equal ones */
	movzwl	4(%rsp), %ecx
	movq	%rsp, (%rdi)
	/* from here on we run on the other context's stack */
	movq	(%rsi), %rsp
	movq	$0, (%rsi)		/* a running context has no saved sp */
	/* ldmxcsr and fldcw are slow (microcoded, serialising): load
	 * them only when the incoming context's differ from ours */
	cmpl	(%rsp), %eax
	jne	1f
	cmpw	4(%rsp), %cx
	jne	1f
2:	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
1:	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	jmp	2b
	.cfi_endproc
	.size	gogo_switch, .-gogo_switch

/*
 * void goro_gostart_tramp(void): first code a new goroutine runs, entered
 * by gogo_switch's ret with rsp 16-aligned + 8 and rbp 0.  The return
 * address above it is 0 and the CFI marks rip undefined: the end of
 * every unwinder's chain.  Does not return.
 */
	.globl	goro_gostart_tramp
	.hidden	goro_gostart_tramp
	.type	goro_gostart_tramp, @function
	.p2align 4
goro_gostart_tramp:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	pushq	%rbp			/* frame record {rbp 0, ret 0} */
	movq	%rsp, %rbp
	call	goro_gostart
	ud2
	.cfi_endproc
	.size	goro_gostart_tramp, .-goro_gostart_tramp

	.section .note.GNU-stack,"",@progbits

/* SPDX-License-Identifier: MIT */
/*
 * preempt.S - x86-64 asynchronous preemption (Go's asyncPreempt).
 *
 * The preemption signal handler (preempt.c) makes the interrupted
 * goroutine "call" goro_asyncpreempt: it moves rsp down past the 128-byte
 * red zone, pushes the interrupted rip there and sets rip to this
 * routine.  So on entry:
 *
 *	rsp -> [interrupted rip], then 128 bytes of red zone, then the
 *	interrupted rsp; every other register holds the interrupted value.
 *
 * Unlike a call, nothing here is caller-saved: the interrupted code may
 * be anywhere.  The routine saves every GPR, RFLAGS and the full extended
 * state (XSAVE with the mask of XCR0: x87, SSE, AVX, AVX-512... into a
 * 64-byte aligned area of goro_xsave_size bytes, or FXSAVE when the CPU
 * has no XSAVE), calls goro_asyncpreempt2() (which yields the goroutine
 * and returns when it runs again, perhaps on another thread), restores
 * everything and returns with `ret $128`, which pops the red zone too:
 * the goroutine continues at the interrupted rip with the interrupted
 * rsp and registers.  The frame record {rbp, interrupted rip} pushed
 * first keeps the frame-pointer chain walkable through the preemption.
 */
	.text

	.globl	goro_asyncpreempt
	.hidden	goro_asyncpreempt
	.type	goro_asyncpreempt, @function
	.p2align 4
goro_asyncpreempt:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	movq	%rsp, %rbp
	.cfi_def_cfa_register rbp
	pushfq
	cld				/* the C ABI wants DF clear */
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rbx		/* callee-saved: the GPR block */
	movl	goro_xsave_size(%rip), %eax
	subq	%rax, %rsp
	andq	$-64, %rsp
	cmpl	$0, goro_have_xsave(%rip)
	je	1f
	/* XRSTOR faults on a non-zero XCOMP_BV or reserved header bytes,
	 * and XSAVE leaves them alone: zero the 64-byte header first. */
	xorl	%eax, %eax
	movq	%rax, 512(%rsp)
	movq	%rax, 520(%rsp)
	movq	%rax, 528(%rsp)
	movq	%rax, 536(%rsp)
	movq	%rax, 544(%rsp)
	movq	%rax, 552(%rsp)
	movq	%rax, 560(%rsp)
	movq	%rax, 568(%rsp)
	movl	$-1, %eax
	movl	$-1, %edx
	xsave	(%rsp)
	jmp	2f
1:	fxsave	(%rsp)
2:	call	goro_asyncpreempt2
	cmpl	$0, goro_have_xsave(%rip)
	je	3f
	movl	$-1, %eax
	movl	$-1, %edx
	xrstor	(%rsp)
	jmp	4f
3:	fxrstor	(%rsp)
4:	movq	%rbx, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	popfq
	popq	%rbp
	.cfi_def_cfa rsp, 8
	ret	$128
	.cfi_endproc
	.size	goro_asyncpreempt, .-goro_asyncpreempt

	.section .note.GNU-stack,"",@progbits

/* SPDX-License-Identifier: MIT */
/*
 * arch.h - the x86-64 context switch's contract (switch.S).
 *
 * A goroutine switch is a call: the compiler already saved every
 * caller-saved register around it, so switch.S saves exactly the SysV
 * callee-saved state - rbx, rbp, r12, r13, r14, r15, rsp - plus the x87
 * control word and MXCSR (their control bits are callee-saved too: a
 * goroutine that changes the rounding mode must not leak it to the next
 * one on the same thread).  The registers are pushed on the stack being
 * left; struct gobuf keeps only the resulting rsp.  MXCSR and the
 * control word are loaded only when they differ from the leaving
 * context's (ldmxcsr and fldcw are slow): the usual case costs a compare.
 *
 * Saved frame, from gobuf.sp upwards (8-byte slots):
 *	[0] MXCSR (low 32 bits) | x87 control word (bits 32..47)
 *	[1] r15  [2] r14  [3] r13  [4] r12  [5] rbx  [6] rbp
 *	[7] return address (where the switch resumes)
 * so a parked goroutine's frame chain starts at rbp = [6], pc = [7].
 *
 * Stack alignment: rsp is 16-byte aligned before the `call` of a switch
 * (SysV); gogo_switch itself needs no alignment of gobuf.sp (a saved
 * context has sp 16-aligned, a fresh one 16-aligned + 8 so that the
 * trampoline is entered like a called function).  gostart_frame() builds a
 * new goroutine's first frame with the same shape: the return address is
 * goro_gostart_tramp, rbp is 0, and above it sits a zero return address,
 * so the frame-pointer chain and DWARF unwinding (.cfi_undefined rip)
 * both end there: gdb and perf -g stop cleanly.
 */
#ifndef GORO_ARCH_X86_64_H
#define GORO_ARCH_X86_64_H

#include <stdint.h>

struct gobuf {
	uintptr_t sp;		/* saved rsp; 0 while the context runs */
};

#define GOBUF_SLOT_RBP	6
#define GOBUF_SLOT_PC	7
#define GOBUF_FRAME	(8 * 8)

/* Save the callee-saved state in *save, load *load: returns when some
 * thread switches back to *save, possibly on another thread.  No runtime
 * lock may be held across it. */
void gogo_switch(struct gobuf *save, struct gobuf *load);

/* Entry of every new goroutine (does not return): calls goro_gostart(). */
void goro_gostart_tramp(void);

/* Called by goro_gostart_tramp on the new stack; does not return. */
__attribute__((noreturn)) void goro_gostart(void);

/* Build the first frame of a goroutine whose stack ends at top (16-byte
 * aligned): switching to *buf then enters goro_gostart_tramp. */
static inline void gostart_frame(struct gobuf *buf, uintptr_t top)
{
	uint64_t *sp = (uint64_t *)(top - 8 - GOBUF_FRAME);

	sp[0] = 0x1f80 | (0x37fULL << 32);	/* default MXCSR, x87 CW */
	for (int i = 1; i <= GOBUF_SLOT_RBP; i++)
		sp[i] = 0;
	sp[GOBUF_SLOT_PC] = (uint64_t)(uintptr_t)goro_gostart_tramp;
	sp[8] = 0;		/* at top - 8: the zero return address */
	buf->sp = (uintptr_t)sp;
}

/* The running thread's frame pointer and stack pointer. */
static inline uintptr_t arch_getfp(void)
{
	return (uintptr_t)__builtin_frame_address(0);
}

/* Spin-wait hint. */
static inline void arch_pause(void)
{
	__builtin_ia32_pause();
}

#endif /* GORO_ARCH_X86_64_H */

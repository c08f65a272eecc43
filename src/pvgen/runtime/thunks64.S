/* thunks64.S - x86-64 port-I/O thunks: the call targets of rewritten sites (docs/thunk-abi.md, docs/runtime-direct.md). */

/* Each thunk saves the flags and the registers it loads with back-end arguments, clears DF (the C ABI), calls a
 * back-end function from pvio_backend.h (no_caller_saved_registers: it preserves every other register), writes
 * exactly the registers the original instruction writes, and restores the flags (no I/O instruction changes a flag).
 * Stack frame inside a thunk, from the top: saved registers (first %rdi), saved RFLAGS, return address,
 * [pushed port for _imm forms].  Every thunk returns with a plain `ret`: the caller pops the port of an _imm form
 * (objtool does not model a callee that pops its caller's argument).  Built with -DPVIO_RETHUNK (Linux
 * CONFIG_RETHUNK), returns go through __x86_return_thunk.
 * No port-I/O mnemonic appears here (docs/team.md); the real instructions live in the back end. */

#ifdef PVIO_RETHUNK
#define PVIO_RET jmp __x86_return_thunk
#else
#define PVIO_RET ret
#endif

#define DF_MASK 0x400

/* PVIO_CLD: the C back end expects DF=0.  In the kernel (-DPVIO_KERNEL) DF is clear at every call (objtool
 * warns about a call with DF set), so in/out/hlt thunks omit it there; objtool would call it redundant. */
#ifdef PVIO_KERNEL
#define PVIO_CLD
#else
#define PVIO_CLD cld
#endif

	.text

.macro PVIO_FUNC name
	.globl \name
	.type \name, @function
	.p2align 4
\name:
.endm

.macro PVIO_END name
	.size \name, . - \name
.endm

/* Clear DF when it is known to be set (string thunks, DF=1 path), without a cld objtool would track. */
.macro CLEAR_DF
	pushfq
	andq $~DF_MASK, (%rsp)
	popfq
.endm

/* Epilogue: %rdi is the last saved register on the stack, above it the saved flags. */
.macro EPI_RET
	popq %rdi
	popfq
	PVIO_RET
	int3
.endm

/* in{b,w}: only %al/%ax changes.  Frame: rax, rsi, rdi, flags, ret, [port]. */
.macro THUNK_IN_BW name, size, portload, mov, acc, epi
PVIO_FUNC \name
	pushfq
	pushq %rdi
	pushq %rsi
	pushq %rax
	\portload
	movl $\size, %esi
	PVIO_CLD
	call pvio_in
	\mov \acc, (%rsp)
	popq %rax
	popq %rsi
	\epi
PVIO_END \name
.endm

/* inl: %eax gets the value and, as with the real instruction, the upper half of %rax is cleared. */
.macro THUNK_IN_L name, portload, epi
PVIO_FUNC \name
	pushfq
	pushq %rdi
	pushq %rsi
	\portload
	movl $4, %esi
	PVIO_CLD
	call pvio_in
	movl %eax, %eax
	popq %rsi
	\epi
PVIO_END \name
.endm

THUNK_IN_BW __pvio_inb_dx,  1, "movzwl %dx, %edi",      movb, %al, EPI_RET
THUNK_IN_BW __pvio_inw_dx,  2, "movzwl %dx, %edi",      movw, %ax, EPI_RET
THUNK_IN_L  __pvio_inl_dx,     "movzwl %dx, %edi",                 EPI_RET
THUNK_IN_BW __pvio_inb_imm, 1, "movzbl 40(%rsp), %edi", movb, %al, EPI_RET
THUNK_IN_BW __pvio_inw_imm, 2, "movzbl 40(%rsp), %edi", movw, %ax, EPI_RET
THUNK_IN_L  __pvio_inl_imm,    "movzbl 32(%rsp), %edi",            EPI_RET

/* out{b,w,l}: nothing changes.  Frame: rdx, rsi, rdi, flags, ret, [port]. */
.macro THUNK_OUT name, size, portload, valload, epi
PVIO_FUNC \name
	pushfq
	pushq %rdi
	pushq %rsi
	pushq %rdx
	\portload
	\valload
	movl $\size, %esi
	PVIO_CLD
	call pvio_out
	popq %rdx
	popq %rsi
	\epi
PVIO_END \name
.endm

THUNK_OUT __pvio_outb_dx,  1, "movzwl %dx, %edi",      "movzbl %al, %edx", EPI_RET
THUNK_OUT __pvio_outw_dx,  2, "movzwl %dx, %edi",      "movzwl %ax, %edx", EPI_RET
THUNK_OUT __pvio_outl_dx,  4, "movzwl %dx, %edi",      "movl %eax, %edx",  EPI_RET
THUNK_OUT __pvio_outb_imm, 1, "movzbl 40(%rsp), %edi", "movzbl %al, %edx", EPI_RET
THUNK_OUT __pvio_outw_imm, 2, "movzbl 40(%rsp), %edi", "movzwl %ax, %edx", EPI_RET
THUNK_OUT __pvio_outl_imm, 4, "movzbl 40(%rsp), %edi", "movl %eax, %edx",  EPI_RET

/* One element, no rep: transfer at (%rdi) or (%rsi), then step that register by +-size as DF says.
 * Frame: rcx, rdx, rsi, rdi, flags, ret.  \ptr is the pointer register the instruction uses. */
.macro THUNK_STR1 name, size, fn, ptr
PVIO_FUNC \name
	pushfq
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	movq \ptr, %rcx			/* element address (temporary) */
	movzwl %dx, %edi		/* port */
	movq %rcx, %rdx			/* element address */
	movl $\size, %esi
	movl $1, %ecx			/* count */
	testl $DF_MASK, 32(%rsp)
	jz 5f
	CLEAR_DF			/* the back end runs with DF=0 */
5:	call \fn
	popq %rcx
	popq %rdx
	popq %rsi
	popq %rdi
	testl $DF_MASK, (%rsp)
	jnz 1f
	leaq \size(\ptr), \ptr
	popfq
	PVIO_RET
	int3
1:	leaq -\size(\ptr), \ptr
	popfq
	PVIO_RET
	int3
PVIO_END \name
.endm

THUNK_STR1 __pvio_insb,  1, pvio_ins,  %rdi
THUNK_STR1 __pvio_insw,  2, pvio_ins,  %rdi
THUNK_STR1 __pvio_insl,  4, pvio_ins,  %rdi
THUNK_STR1 __pvio_outsb, 1, pvio_outs, %rsi
THUNK_STR1 __pvio_outsw, 2, pvio_outs, %rsi
THUNK_STR1 __pvio_outsl, 4, pvio_outs, %rsi

/* rep: %rcx elements (none if %rcx is 0); \ptr ends at \ptr +- %rcx*size, %rcx at 0.
 * DF=0: one back-end call for the whole block.  DF=1: one call per element, descending, so the port sees the
 * elements in the order the real instruction would transfer them.  The back end never sees a zero count.
 * Frame: rdx, rsi, rdi, flags, ret; the saved-pointer slot is 16(%rsp) for %rdi and 8(%rsp) for %rsi. */
.macro THUNK_STRREP name, size, fn, ptr, slot
PVIO_FUNC \name
	pushfq
	pushq %rdi
	pushq %rsi
	pushq %rdx
	testq %rcx, %rcx
	jz 3f
	movq \ptr, %rsi			/* element address (temporary) */
	movzwl %dx, %edi		/* port */
	movq %rsi, %rdx			/* element address */
	movl $\size, %esi
	testl $DF_MASK, 24(%rsp)
	jnz 2f
	call \fn			/* DF=0 here; count = %rcx, preserved by the back end */
	popq %rdx
	popq %rsi
	popq %rdi
	leaq (\ptr, %rcx, \size), \ptr
	xorl %ecx, %ecx
	popfq
	PVIO_RET
	int3
2:	CLEAR_DF
4:	pushq %rcx
	movl $1, %ecx
	call \fn
	popq %rcx
	subq $\size, %rdx
	subq $1, %rcx
	jnz 4b
	movq %rdx, \slot(%rsp)		/* the final pointer replaces the saved one */
3:	popq %rdx
	popq %rsi
	EPI_RET
PVIO_END \name
.endm

THUNK_STRREP __pvio_rep_insb,  1, pvio_ins,  %rdi, 16
THUNK_STRREP __pvio_rep_insw,  2, pvio_ins,  %rdi, 16
THUNK_STRREP __pvio_rep_insl,  4, pvio_ins,  %rdi, 16
THUNK_STRREP __pvio_rep_outsb, 1, pvio_outs, %rsi, 8
THUNK_STRREP __pvio_rep_outsw, 2, pvio_outs, %rsi, 8
THUNK_STRREP __pvio_rep_outsl, 4, pvio_outs, %rsi, 8

/* hlt: a flush point; the back end decides whether the real hlt runs. */
PVIO_FUNC __pvio_hlt
	pushfq
	PVIO_CLD
	call pvio_hlt
	popfq
	PVIO_RET
	int3
PVIO_END __pvio_hlt

/* String I/O with 32-bit addressing or an %fs:/%gs: source (thunks_strx64.h). */
#include "thunks_strx64.h"

	.section .note.GNU-stack, "", @progbits

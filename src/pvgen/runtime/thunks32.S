/* thunks32.S - i386 port-I/O thunks: the call targets of rewritten 32-bit sites (docs/thunk-abi.md, docs/runtime-direct.md). */

/* Same contract as thunks64.S with the 32-bit registers.  Back-end functions use regparm(3) (pvio_backend.h):
 * arguments in %eax, %edx, %ecx, a 4th on the stack.  Each thunk saves the flags and the registers it loads,
 * clears DF, calls the back end (no_caller_saved_registers) and restores the flags.  The first register saved
 * after the flags is %edx in every in/out thunk.  _imm forms read the pushed port at 4(%esp) on entry and return
 * with a plain `ret`: the caller pops the port (objtool does not model a callee popping its caller's argument). */

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

	.code32			/* also when assembled into a 64-bit object (runtime target x86_64-code32) */
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
	pushfl
	andl $~DF_MASK, (%esp)
	popfl
.endm

.macro EPI_RET
	popl %edx
	popfl
	PVIO_RET
	int3
.endm

/* in{b,w}: only %al/%ax changes.  Frame: eax, edx, flags, ret, [port at 16]. */
.macro THUNK_IN_BW name, size, portload, mov, acc, epi
PVIO_FUNC \name
	pushfl
	pushl %edx
	pushl %eax
	\portload
	movl $\size, %edx
	PVIO_CLD
	call pvio_in
	\mov \acc, (%esp)
	popl %eax
	\epi
PVIO_END \name
.endm

/* inl: all of %eax.  Frame: edx, flags, ret, [port at 12]. */
.macro THUNK_IN_L name, portload, epi
PVIO_FUNC \name
	pushfl
	pushl %edx
	\portload
	movl $4, %edx
	PVIO_CLD
	call pvio_in
	\epi
PVIO_END \name
.endm

THUNK_IN_BW __pvio32_inb_dx,  1, "movzwl %dx, %eax",      movb, %al, EPI_RET
THUNK_IN_BW __pvio32_inw_dx,  2, "movzwl %dx, %eax",      movw, %ax, EPI_RET
THUNK_IN_L  __pvio32_inl_dx,     "movzwl %dx, %eax",                 EPI_RET
THUNK_IN_BW __pvio32_inb_imm, 1, "movzbl 16(%esp), %eax", movb, %al, EPI_RET
THUNK_IN_BW __pvio32_inw_imm, 2, "movzbl 16(%esp), %eax", movw, %ax, EPI_RET
THUNK_IN_L  __pvio32_inl_imm,    "movzbl 12(%esp), %eax",            EPI_RET

/* out{b,w,l}: nothing changes.  Frame: ecx, eax, edx, flags, ret, [port at 20].  The value is loaded first. */
.macro THUNK_OUT name, size, portload, valload, epi
PVIO_FUNC \name
	pushfl
	pushl %edx
	pushl %eax
	pushl %ecx
	\valload
	\portload
	movl $\size, %edx
	PVIO_CLD
	call pvio_out
	popl %ecx
	popl %eax
	\epi
PVIO_END \name
.endm

THUNK_OUT __pvio32_outb_dx,  1, "movzwl %dx, %eax",      "movzbl %al, %ecx", EPI_RET
THUNK_OUT __pvio32_outw_dx,  2, "movzwl %dx, %eax",      "movzwl %ax, %ecx", EPI_RET
THUNK_OUT __pvio32_outl_dx,  4, "movzwl %dx, %eax",      "movl %eax, %ecx",  EPI_RET
THUNK_OUT __pvio32_outb_imm, 1, "movzbl 20(%esp), %eax", "movzbl %al, %ecx", EPI_RET
THUNK_OUT __pvio32_outw_imm, 2, "movzbl 20(%esp), %eax", "movzwl %ax, %ecx", EPI_RET
THUNK_OUT __pvio32_outl_imm, 4, "movzbl 20(%esp), %eax", "movl %eax, %ecx",  EPI_RET

/* One element, no rep, at (%edi) or (%esi); then step that register by +-size as DF says.
 * Frame: ecx, eax, edx, flags, ret. */
.macro THUNK_STR1 name, size, fn, ptr
PVIO_FUNC \name
	pushfl
	pushl %edx
	pushl %eax
	pushl %ecx
	pushl $1			/* count (4th argument, on the stack) */
	movl \ptr, %ecx			/* element address */
	movzwl %dx, %eax		/* port */
	movl $\size, %edx
	testl $DF_MASK, 16(%esp)
	jz 5f
	CLEAR_DF			/* the back end runs with DF=0 */
5:	call \fn
	leal 4(%esp), %esp
	popl %ecx
	popl %eax
	popl %edx
	testl $DF_MASK, (%esp)
	jnz 1f
	leal \size(\ptr), \ptr
	popfl
	PVIO_RET
	int3
1:	leal -\size(\ptr), \ptr
	popfl
	PVIO_RET
	int3
PVIO_END \name
.endm

THUNK_STR1 __pvio32_insb,  1, pvio_ins,  %edi
THUNK_STR1 __pvio32_insw,  2, pvio_ins,  %edi
THUNK_STR1 __pvio32_insl,  4, pvio_ins,  %edi
THUNK_STR1 __pvio32_outsb, 1, pvio_outs, %esi
THUNK_STR1 __pvio32_outsw, 2, pvio_outs, %esi
THUNK_STR1 __pvio32_outsl, 4, pvio_outs, %esi

/* rep: %ecx elements (none if %ecx is 0); \ptr ends at \ptr +- %ecx*size, %ecx at 0.
 * DF=0: one back-end call; DF=1: one call per element, descending.  The count argument is pushed as a copy
 * (a callee may reuse its argument slot).  The back end never sees a zero count.  Frame: eax, edx, flags, ret. */
.macro THUNK_STRREP name, size, fn, ptr
PVIO_FUNC \name
	pushfl
	pushl %edx
	pushl %eax
	testl %ecx, %ecx
	jz 3f
	movzwl %dx, %eax		/* port */
	movl $\size, %edx
	testl $DF_MASK, 8(%esp)
	jnz 2f
	pushl %ecx			/* saved count */
	pushl %ecx			/* count argument */
	movl \ptr, %ecx
	call \fn
	leal 4(%esp), %esp
	popl %ecx
	leal (\ptr, %ecx, \size), \ptr
	xorl %ecx, %ecx
	jmp 3f
2:	CLEAR_DF
4:	pushl %ecx			/* remaining */
	pushl $1			/* count argument */
	movl \ptr, %ecx
	call \fn
	leal 4(%esp), %esp
	popl %ecx
	subl $\size, \ptr
	subl $1, %ecx
	jnz 4b
3:	popl %eax
	EPI_RET
PVIO_END \name
.endm

THUNK_STRREP __pvio32_rep_insb,  1, pvio_ins,  %edi
THUNK_STRREP __pvio32_rep_insw,  2, pvio_ins,  %edi
THUNK_STRREP __pvio32_rep_insl,  4, pvio_ins,  %edi
THUNK_STRREP __pvio32_rep_outsb, 1, pvio_outs, %esi
THUNK_STRREP __pvio32_rep_outsw, 2, pvio_outs, %esi
THUNK_STRREP __pvio32_rep_outsl, 4, pvio_outs, %esi

/* hlt: a flush point; the back end decides whether the real hlt runs. */
PVIO_FUNC __pvio32_hlt
	pushfl
	PVIO_CLD
	call pvio_hlt
	popfl
	PVIO_RET
	int3
PVIO_END __pvio32_hlt

/* String I/O with the other address size or a segment override (thunks_strx32.h). */
#define XBUF 512		/* bytes of stack per back-end call (one ATA sector) */
#include "thunks_strx32.h"
XSTR_ALL __pvio32_, 32, %edi, %esi, 16, %di, %si

	.section .note.GNU-stack, "", @progbits

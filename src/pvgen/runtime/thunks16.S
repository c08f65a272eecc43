/* thunks16.S - 16-bit (.code16 / .code16gcc) port-I/O thunks __pvio16_*: call targets of rewritten 16-bit sites. */

/* The rewriter calls these with `[pushl $PORT]; calll __pvio16_...[; lea 4(%esp),%sp]` (a 32-bit near call and
 * a 32-bit pushed port in both .code16 and .code16gcc, popped by the caller), so they return with `retl`; the
 * frame is the i386 one of thunks32.S, built from 32-bit pushes.  The back end is gcc -m16 code (build direct.c
 * with -m16 -DPVIO_CODE16), called with `calll` and regparm(3).  Like all gcc -m16 code this assumes a tiny
 * model: DS = ES = SS and %esp below 64 KiB (its upper half zero).  String forms use the 16-bit address size of
 * 16-bit code: the element address is %di/%si (zero-extended for the back end), the count is %cx, and only
 * %di/%si/%cx change, wrapping at 64 KiB, as the real instruction; the upper halves of %edi/%esi/%ecx are
 * preserved. */

#define DF_MASK 0x400

#ifdef PVIO_KERNEL
#define PVIO_CLD
#else
#define PVIO_CLD cld
#endif

	.code16
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

.macro CLEAR_DF
	pushfl
	andl $~DF_MASK, (%esp)
	popfl
.endm

.macro EPI_RET
	popl %edx
	popfl
	retl
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
	calll pvio_in
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
	calll pvio_in
	\epi
PVIO_END \name
.endm

THUNK_IN_BW __pvio16_inb_dx,  1, "movzwl %dx, %eax",      movb, %al, EPI_RET
THUNK_IN_BW __pvio16_inw_dx,  2, "movzwl %dx, %eax",      movw, %ax, EPI_RET
THUNK_IN_L  __pvio16_inl_dx,     "movzwl %dx, %eax",                 EPI_RET
THUNK_IN_BW __pvio16_inb_imm, 1, "movzbl 16(%esp), %eax", movb, %al, EPI_RET
THUNK_IN_BW __pvio16_inw_imm, 2, "movzbl 16(%esp), %eax", movw, %ax, EPI_RET
THUNK_IN_L  __pvio16_inl_imm,    "movzbl 12(%esp), %eax",            EPI_RET

/* out{b,w,l}: nothing changes.  Frame: ecx, eax, edx, flags, ret, [port at 20]. */
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
	calll pvio_out
	popl %ecx
	popl %eax
	\epi
PVIO_END \name
.endm

THUNK_OUT __pvio16_outb_dx,  1, "movzwl %dx, %eax",      "movzbl %al, %ecx", EPI_RET
THUNK_OUT __pvio16_outw_dx,  2, "movzwl %dx, %eax",      "movzwl %ax, %ecx", EPI_RET
THUNK_OUT __pvio16_outl_dx,  4, "movzwl %dx, %eax",      "movl %eax, %ecx",  EPI_RET
THUNK_OUT __pvio16_outb_imm, 1, "movzbl 20(%esp), %eax", "movzbl %al, %ecx", EPI_RET
THUNK_OUT __pvio16_outw_imm, 2, "movzbl 20(%esp), %eax", "movzwl %ax, %ecx", EPI_RET
THUNK_OUT __pvio16_outl_imm, 4, "movzbl 20(%esp), %eax", "movl %eax, %ecx",  EPI_RET

/* One element, no rep, at %di or %si; then that 16-bit register steps by +-size as DF says.
 * Frame: [count], ecx, eax, edx, flags, ret. */
.macro THUNK_STR1 name, size, fn, ptr
PVIO_FUNC \name
	pushfl
	pushl %edx
	pushl %eax
	pushl %ecx
	pushl $1			/* count (4th argument, on the stack) */
	movzwl \ptr, %ecx		/* element address */
	movzwl %dx, %eax		/* port */
	movl $\size, %edx
	testl $DF_MASK, 16(%esp)
	jz 5f
	CLEAR_DF			/* the back end runs with DF=0 */
5:	calll \fn
	leal 4(%esp), %esp
	popl %ecx
	popl %eax
	popl %edx
	testl $DF_MASK, (%esp)
	jnz 1f
	leaw \size(\ptr), \ptr
	popfl
	retl
	int3
1:	leaw -\size(\ptr), \ptr
	popfl
	retl
	int3
PVIO_END \name
.endm

THUNK_STR1 __pvio16_insb,  1, pvio_ins,  %di
THUNK_STR1 __pvio16_insw,  2, pvio_ins,  %di
THUNK_STR1 __pvio16_insl,  4, pvio_ins,  %di
THUNK_STR1 __pvio16_outsb, 1, pvio_outs, %si
THUNK_STR1 __pvio16_outsw, 2, pvio_outs, %si
THUNK_STR1 __pvio16_outsl, 4, pvio_outs, %si

/* rep: %cx elements (none if %cx is 0); \ptr ends at \ptr +- %cx*size (mod 64 KiB), %cx at 0, the upper half of
 * %ecx kept.  DF=0: one back-end call; DF=1: one call per element, descending.  Frame: ecx, eax, edx, flags, ret. */
.macro THUNK_STRREP name, size, fn, ptr
PVIO_FUNC \name
	pushfl
	pushl %edx
	pushl %eax
	pushl %ecx
	testw %cx, %cx
	jz 3f
	movzwl %dx, %eax		/* port */
	movl $\size, %edx
	testl $DF_MASK, 12(%esp)
	jnz 2f
	movzwl %cx, %ecx
	pushl %ecx			/* count argument */
	movzwl \ptr, %ecx		/* first element */
	calll \fn
	leal 4(%esp), %esp
	movzwl (%esp), %eax		/* count, from the saved %ecx */
	leal (, %eax, \size), %eax
	addw %ax, \ptr
	jmp 6f
2:	CLEAR_DF
4:	pushl %ecx			/* remaining (low half) */
	pushl $1			/* count argument */
	movzwl \ptr, %ecx
	calll \fn
	leal 4(%esp), %esp
	popl %ecx
	subw $\size, \ptr
	subw $1, %cx
	jnz 4b
6:	movw $0, (%esp)			/* %cx = 0 in the saved %ecx */
3:	popl %ecx
	popl %eax
	EPI_RET
PVIO_END \name
.endm

THUNK_STRREP __pvio16_rep_insb,  1, pvio_ins,  %di
THUNK_STRREP __pvio16_rep_insw,  2, pvio_ins,  %di
THUNK_STRREP __pvio16_rep_insl,  4, pvio_ins,  %di
THUNK_STRREP __pvio16_rep_outsb, 1, pvio_outs, %si
THUNK_STRREP __pvio16_rep_outsw, 2, pvio_outs, %si
THUNK_STRREP __pvio16_rep_outsl, 4, pvio_outs, %si

PVIO_FUNC __pvio16_hlt
	pushfl
	PVIO_CLD
	calll pvio_hlt
	popfl
	retl
	int3
PVIO_END __pvio16_hlt

/* String I/O with the other address size or a segment override (thunks_strx32.h). */
#define PVIO_RET retl
#define XBUF 256		/* bytes of stack per back-end call: 16-bit stacks are small */
#include "thunks_strx32.h"
XSTR_ALL __pvio16_, 16, %di, %si, 32, %edi, %esi

	.section .note.GNU-stack, "", @progbits

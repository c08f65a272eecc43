/* thunks16.S - 16-bit (.code16 / .code16gcc) port-I/O thunks __pvio16_*: call targets of rewritten 16-bit sites. */

/* The rewriter calls these with `[pushl $PORT]; calll __pvio16_...[; lea 4(%esp),%sp]` (a 32-bit near call and
 * a 32-bit pushed port in both .code16 and .code16gcc, popped by the caller), so they return with `retl`; the
 * frame is the i386 one of thunks32.S, built from 32-bit pushes.  The back end is gcc -m16 code (build direct.c
 * with -m16 -DPVIO_CODE16), called with `calll` and regparm(3).  Like all gcc -m16 code it assumes a tiny
 * model for itself: DS = ES = SS and %esp below 64 KiB.  The thunks give it DS = ES = SS around every call
 * (BACKEND_CALL) and restore the caller's, so the caller's DS, ES, FS, GS may hold anything; what they need of
 * the environment is in docs/thunk-abi.md ("16-bit code").  String forms honour the segments and the 16-bit
 * address size exactly (thunks_strx32.h): the element address is ES:%di (ins) or DS:%si, or the override's
 * segment (outs), the count is %cx, and only %di/%si/%cx change, wrapping at 64 KiB, as the real instruction;
 * the upper halves of %edi/%esi/%ecx are preserved. */

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

/* A call of the back end with DS = ES = SS, the segment its tiny model assumes; the caller's are restored. */
.macro BACKEND_CALL fn
	pushw %ds
	pushw %es
	pushw %ss
	popw %ds
	pushw %ss
	popw %es
	calll \fn
	popw %es
	popw %ds
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
	BACKEND_CALL pvio_in
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
	BACKEND_CALL pvio_in
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
	BACKEND_CALL pvio_out
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

PVIO_FUNC __pvio16_hlt
	pushfl
	PVIO_CLD
	BACKEND_CALL pvio_hlt
	popfl
	retl
	int3
PVIO_END __pvio16_hlt

/* String I/O (thunks_strx32.h): the plain forms (ES:%di, DS:%si), the other address size, segment overrides. */
#define PVIO_RET retl
#define XBUF 256		/* bytes of stack per back-end call: 16-bit stacks are small */
#include "thunks_strx32.h"
XFORM __pvio16_, ins,  , pvio_ins,  %di, 16, es
XFORM __pvio16_, outs, , pvio_outs, %si, 16, ds
XSTR_ALL __pvio16_, 16, %di, %si, 32, %edi, %esi

	.section .note.GNU-stack, "", @progbits

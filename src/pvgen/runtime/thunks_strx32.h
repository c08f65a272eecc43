/* thunks_strx32.h - string I/O that honours the segment and the address size, for 16- and 32-bit code.
 *
 * Included by thunks16.S (.code16: every 16-bit string form) and thunks32.S (.code32: the forms with the other
 * address size or a segment override), which define PVIO_FUNC/PVIO_END, CLEAR_DF, PVIO_RET, DF_MASK and XBUF.
 * Every frame is built from 32-bit pushes, so one text serves both sizes.  (docs/thunk-abi.md, "Address size
 * and segment")
 *
 * The element address is \seg:(\ptr) with the address size of \ptr (%di/%si: 16 bits, wrapping at 64 KiB;
 * %edi/%esi: 32 bits); the count (rep) is %cx or %ecx, of the same size (SDM Vol. 2, REP/INS/OUTS).  The memory
 * side is done here, element by element with that segment and register, through a buffer on the stack; the back
 * end moves up to XBUF bytes per call between the port and the buffer (pvio_ins/pvio_outs, ascending, DF=0).  So
 * any segment base is honoured.  The back end runs with DS = ES = SS (the buffer is at SS:ESP and C code reaches
 * it through DS, a `rep ins` through ES): the thunk loads them from SS around the call and restores the caller's.
 * Only \ptr (and the count, to 0) change, as the instruction changes them; a rep with a zero count changes nothing.
 *
 * One body per form (op, address size, segment); its six thunks b/w/l, with and without rep, are stubs that push
 * XSTUB_WORD (element size | rep << 3) and jump to it.  Frame, from the top: buffer (XBUF), step (+-size), size,
 * stub word, ebp, ebx, edx, ecx, flags, eax, ret.  Inside: %ebx = elements left, %ebp = elements in this chunk. */

#define XS_STEP XBUF
#define XS_SIZE (XBUF + 4)
#define XS_WORD (XBUF + 8)
#define XF_EDX (XBUF + 20)
#define XF_ECX (XBUF + 24)
#define XF_FL  (XBUF + 28)
#define XS_REP 8

#include "thunks_strx.h"

/* One thunk: the element size and rep for the form's body. */
.macro XSTUB name, size, op, rep, acc, body
	.globl \name
	.type \name, @function
\name:
	pushl $(\size | \rep * XS_REP)
	jmp \body
PVIO_END \name
.endm

/* One element between \seg:(\ptr) and the buffer at %ecx, through \acc. */
.macro XMOVE op, seg, ptr, acc
	.ifc \op,outs
	mov %\seg:(\ptr), \acc
	mov \acc, (%esp,%ecx)
	.else
	mov (%esp,%ecx), \acc
	mov \acc, %es:(\ptr)
	.endif
.endm

/* Copy %ebp elements of \size bytes through \acc (%ecx the offset in the buffer), stepping \ptr by XS_STEP: in its
 * own size, so %di/%si wrap at 64 KiB as the instruction's register does. */
.macro XLOOP op, seg, ptr, acc, size
3:	XMOVE \op, \seg, \ptr, \acc
	addl $\size, %ecx
	add XS_STEP(%esp), \ptr
	decl %edx
	jnz 3b
.endm

/* XLOOP for the element size in XS_SIZE. */
.macro XCOPYN op, seg, ptr
	xorl %ecx, %ecx
	movl %ebp, %edx
	testb $1, XS_SIZE(%esp)
	jz 31f
	XLOOP \op, \seg, \ptr, %al, 1
	jmp 33f
31:	testb $2, XS_SIZE(%esp)
	jz 32f
	XLOOP \op, \seg, \ptr, %ax, 2
	jmp 33f
32:	XLOOP \op, \seg, \ptr, %eax, 4
33:
.endm

.macro XBODY body, op, fn, ptr, asz, seg
	.type \body, @function		/* local: reached only from its stubs */
	.p2align 4
\body:
	xchgl %eax, (%esp)		/* %eax = the stub word; its slot keeps the caller's %eax */
	pushfl
	pushl %ecx
	pushl %edx
	pushl %ebx
	pushl %ebp
	pushl %eax			/* XS_WORD */
	andl $(XS_REP - 1), %eax
	pushl %eax			/* XS_SIZE */
	pushl %eax			/* XS_STEP */
	leal -XBUF(%esp), %esp
	movl $1, %ebx
	testb $XS_REP, XS_WORD(%esp)
	jz 1f
	.if \asz == 16
	movzwl XF_ECX(%esp), %ebx
	.else
	movl XF_ECX(%esp), %ebx
	.endif
	testl %ebx, %ebx
	jz 8f
1:	testl $DF_MASK, XF_FL(%esp)
	jz 2f
	negl XS_STEP(%esp)
	CLEAR_DF			/* the back end runs with DF=0; the copy loops step by XS_STEP */
2:	movl XS_SIZE(%esp), %ecx
	shrl $1, %ecx			/* log2 of the size */
	movl $XBUF, %ebp
	shrl %cl, %ebp
	cmpl %ebp, %ebx
	jae 4f
	movl %ebx, %ebp
4:	subl %ebp, %ebx
	.ifc \op,outs
	XCOPYN outs, \seg, \ptr
	.endif
	movzwl XF_EDX(%esp), %eax	/* port: the caller's %dx */
	movl XS_SIZE(%esp), %edx
	movl %esp, %ecx			/* the buffer */
	pushl %ds
	pushl %es
	pushl %ss
	popl %ds
	pushl %ss
	popl %es
	pushl %ebp			/* count (4th argument, on the stack) */
	calll \fn
	leal 4(%esp), %esp
	popl %es
	popl %ds
	.ifc \op,ins
	XCOPYN ins, \seg, \ptr
	.endif
	testl %ebx, %ebx
	jnz 2b
	testb $XS_REP, XS_WORD(%esp)
	jz 8f
	.if \asz == 16
	movw $0, XF_ECX(%esp)		/* %cx = 0, the upper half of %ecx kept */
	.else
	movl $0, XF_ECX(%esp)
	.endif
8:	leal XBUF+12(%esp), %esp
	popl %ebp
	popl %ebx
	popl %edx
	popl %ecx
	popfl
	popl %eax
	PVIO_RET
	int3
PVIO_END \body
.endm

/* A form: its body (a local function) and its six thunks.  \seg: the segment of the memory operand (es for ins). */
.macro XFORM pfx, op, tail, fn, ptr, asz, seg
XBODY \pfx\()str_\op\tail, \op, \fn, \ptr, \asz, \seg
XSET XSTUB, \pfx, \op, \tail, \pfx\()str_\op\tail
.endm

/* Every form with the other address size (asz_other, registers di/si), and each source segment of outs with both
 * address sizes.  Names: asm/sites.py, string_tail. */
.macro XSTR_ALL pfx, asz_own, own_di, own_si, asz_other, other_di, other_si
XFORM \pfx, ins,  _a\asz_other, pvio_ins,  \other_di, \asz_other, es
XFORM \pfx, outs, _a\asz_other, pvio_outs, \other_si, \asz_other, ds
.irp seg, es, cs, ss, fs, gs
XFORM \pfx, outs, _a\asz_other\()_\seg, pvio_outs, \other_si, \asz_other, \seg
XFORM \pfx, outs, _\seg, pvio_outs, \own_si, \asz_own, \seg
.endr
.endm

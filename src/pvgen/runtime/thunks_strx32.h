/* thunks_strx32.h - string I/O with the other address size or a segment override, for 16- and 32-bit code.
 *
 * Included by thunks16.S (.code16) and thunks32.S (.code32), which define PVIO_FUNC/PVIO_END, CLEAR_DF,
 * PVIO_RET, DF_MASK and XBUF.  Every frame is built from 32-bit pushes, so one text serves both sizes.
 * (docs/thunk-abi.md, "Address size and segment")
 *
 * The element address is \seg:(\ptr) with the address size of \ptr (%di/%si: 16 bits, wrapping at 64 KiB;
 * %edi/%esi: 32 bits); the count (rep) is %cx or %ecx, of the same size (SDM Vol. 2, REP/INS/OUTS).  The memory
 * side is done here, element by element with that segment and register, through a buffer on the stack; the back
 * end moves up to XBUF bytes per call between the port and the buffer (pvio_ins/pvio_outs, ascending, DF=0).  So
 * any segment base is honoured; the back end itself needs DS = SS, as all its C code does, and runs with ES = DS.  Only \ptr (and the
 * count, to 0) change, as the instruction changes them; a rep with a zero count changes nothing.
 * Frame, from the top: buffer (XBUF), ebp, ebx, edx, ecx, eax, flags, ret.
 * Inside: %ebx = elements left, %ebp = elements in this chunk. */

#define XF_EDX (XBUF + 8)
#define XF_ECX (XBUF + 12)
#define XF_FL  (XBUF + 20)

#include "thunks_strx.h"

.macro XSTR name, size, op, rep, acc, fn, ptr, asz, seg
PVIO_FUNC \name
	pushfl
	pushl %eax
	pushl %ecx
	pushl %edx
	pushl %ebx
	pushl %ebp
	leal -XBUF(%esp), %esp
	.if \rep
	  .if \asz == 16
	movzwl %cx, %ebx
	  .else
	movl %ecx, %ebx
	  .endif
	testl %ebx, %ebx
	jz 8f
	.else
	movl $1, %ebx
	.endif
	testl $DF_MASK, XF_FL(%esp)
	jz 1f
	CLEAR_DF			/* the back end runs with DF=0; the copy loops read DF from the saved flags */
1:	movl $(XBUF / \size), %ebp
	cmpl %ebp, %ebx
	jae 2f
	movl %ebx, %ebp
2:	subl %ebp, %ebx
	.ifc \op,outs
	XCOPY \size, \ptr, "mov %\seg:(\ptr), \acc", "mov \acc, (%esp,%ecx)", XF_FL(%esp)
	.endif
	movzwl XF_EDX(%esp), %eax	/* port: the caller's %dx */
	movl $\size, %edx
	movl %esp, %ecx			/* the buffer */
	pushl %es			/* C code expects ES = DS (a real `rep ins` in the back end writes to ES) */
	pushl %ds
	popl %es
	pushl %ebp			/* count (4th argument, on the stack) */
	calll \fn
	leal 4(%esp), %esp
	popl %es
	.ifc \op,ins
	XCOPY \size, \ptr, "mov (%esp,%ecx), \acc", "mov \acc, %es:(\ptr)", XF_FL(%esp)
	.endif
	testl %ebx, %ebx
	jnz 1b
	.if \rep
	  .if \asz == 16
	movw $0, XF_ECX(%esp)		/* %cx = 0, the upper half of %ecx kept */
	  .else
	movl $0, XF_ECX(%esp)
	  .endif
	.endif
8:	leal XBUF(%esp), %esp
	popl %ebp
	popl %ebx
	popl %edx
	popl %ecx
	popl %eax
	popfl
	PVIO_RET
	int3
PVIO_END \name
.endm

/* Every form of one code size: the other address size (asz_other, registers di/si), and each source segment of
 * outs with both address sizes.  Names: asm/sites.py, string_tail. */
.macro XSTR_ALL pfx, asz_own, own_di, own_si, asz_other, other_di, other_si
XSET XSTR, \pfx, ins,  _a\asz_other, pvio_ins,  \other_di, \asz_other, es
XSET XSTR, \pfx, outs, _a\asz_other, pvio_outs, \other_si, \asz_other, ds
.irp seg, es, cs, ss, fs, gs
XSET XSTR, \pfx, outs, _a\asz_other\()_\seg, pvio_outs, \other_si, \asz_other, \seg
XSET XSTR, \pfx, outs, _\seg, pvio_outs, \own_si, \asz_own, \seg
.endr
.endm

/* thunks_strx64.h - string I/O in 64-bit code with 32-bit addressing (addr32, %edi/%esi) or an %fs:/%gs: source.
 *
 * Included by thunks64.S (PVIO_FUNC/PVIO_END, CLEAR_DF, PVIO_RET, DF_MASK).  The same scheme as
 * thunks_strx32.h: the memory side is done here, element by element at \seg:(\ptr) with the address size of
 * \ptr, through a stack buffer that the back end fills or drains (pvio_ins/pvio_outs, at most XBUF64 bytes per
 * call).  With 32-bit addressing the count is %ecx, and each write of %edi/%esi/%ecx clears the upper half of the
 * 64-bit register, as the instruction's do (SDM Vol. 1 §3.4.1.1); a rep with a zero count changes nothing.
 * Only FS and GS have a base in 64-bit mode, so other overrides call the plain thunks (asm/sites.py).
 * Frame, from the top: buffer (XBUF64), rbp, rbx, rdx, rcx, rax, flags, ret.
 * Inside: %rbx = elements left, %rbp = elements in this chunk. */

#define XBUF64 512			/* bytes per back-end call (one ATA sector) */
#define XF64_RDX (XBUF64 + 16)
#define XF64_RCX (XBUF64 + 24)
#define XF64_FL  (XBUF64 + 40)

#include "thunks_strx.h"

.macro XSTR64 name, size, op, rep, acc, fn, ptr, seg
PVIO_FUNC \name
	pushfq
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	leaq -XBUF64(%rsp), %rsp
	.if \rep
	  .ifc \ptr,%edi
	movl %ecx, %ebx
	  .else
	    .ifc \ptr,%esi
	movl %ecx, %ebx
	    .else
	movq %rcx, %rbx
	    .endif
	  .endif
	testq %rbx, %rbx
	jz 8f
	.else
	movl $1, %ebx
	.endif
	testl $DF_MASK, XF64_FL(%rsp)
	jz 1f
	CLEAR_DF
1:	movl $(XBUF64 / \size), %ebp
	cmpq %rbp, %rbx
	jae 2f
	movq %rbx, %rbp
2:	subq %rbp, %rbx
	.ifc \op,outs
	XCOPY \size, \ptr, "mov \seg(\ptr), \acc", "mov \acc, (%rsp,%rcx)", XF64_FL(%rsp)
	.endif
	movq %rsp, %rdx			/* the buffer */
	pushq %rdi
	pushq %rsi
	movzwl XF64_RDX+16(%rsp), %edi	/* port: the caller's %dx */
	movl $\size, %esi
	movq %rbp, %rcx			/* count */
	call \fn
	popq %rsi
	popq %rdi
	.ifc \op,ins
	XCOPY \size, \ptr, "mov (%rsp,%rcx), \acc", "mov \acc, (\ptr)", XF64_FL(%rsp)
	.endif
	testq %rbx, %rbx
	jnz 1b
	.if \rep
	movq $0, XF64_RCX(%rsp)		/* %rcx = 0 (with 32-bit addressing: %ecx = 0, zero-extended) */
	.endif
8:	leaq XBUF64(%rsp), %rsp
	popq %rbp
	popq %rbx
	popq %rdx
	popq %rcx
	popq %rax
	popfq
	PVIO_RET
	int3
PVIO_END \name
.endm

/* \seg: `%fs:`, `%gs:` or empty (DS, whose base is 0). */
XSET XSTR64, __pvio_, ins,  _a32,    pvio_ins,  %edi,
XSET XSTR64, __pvio_, outs, _a32,    pvio_outs, %esi,
XSET XSTR64, __pvio_, outs, _a32_fs, pvio_outs, %esi, %fs:
XSET XSTR64, __pvio_, outs, _a32_gs, pvio_outs, %esi, %gs:
XSET XSTR64, __pvio_, outs, _fs,     pvio_outs, %rsi, %fs:
XSET XSTR64, __pvio_, outs, _gs,     pvio_outs, %rsi, %gs:

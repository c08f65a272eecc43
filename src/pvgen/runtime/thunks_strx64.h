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

.macro XCOPY64 size, ptr, load, store
	xorl %ecx, %ecx
	movl %ebp, %edx
3:	\load
	\store
	addl $\size, %ecx
	testl $DF_MASK, XF64_FL(%rsp)
	jnz 4f
	add $\size, \ptr
	jmp 5f
4:	sub $\size, \ptr
5:	decl %edx
	jnz 3b
.endm

.macro XSTR64 name, size, op, rep, fn, ptr, seg, acc
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
	XCOPY64 \size, \ptr, "mov \seg(\ptr), \acc", "mov \acc, (%rsp,%rcx)"
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
	XCOPY64 \size, \ptr, "mov (%rsp,%rcx), \acc", "mov \acc, (\ptr)"
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

/* The six thunks {,rep_}\op{b,w,l}\tail of one address size and segment (\seg: `%fs:`, `%gs:` or empty). */
.macro XSTR64_SET op, fn, ptr, seg, tail
XSTR64 __pvio_\op\()b\tail,     1, \op, 0, \fn, \ptr, \seg, %al
XSTR64 __pvio_\op\()w\tail,     2, \op, 0, \fn, \ptr, \seg, %ax
XSTR64 __pvio_\op\()l\tail,     4, \op, 0, \fn, \ptr, \seg, %eax
XSTR64 __pvio_rep_\op\()b\tail, 1, \op, 1, \fn, \ptr, \seg, %al
XSTR64 __pvio_rep_\op\()w\tail, 2, \op, 1, \fn, \ptr, \seg, %ax
XSTR64 __pvio_rep_\op\()l\tail, 4, \op, 1, \fn, \ptr, \seg, %eax
.endm

XSTR64_SET ins,  pvio_ins,  %edi, , _a32
XSTR64_SET outs, pvio_outs, %esi, , _a32
XSTR64_SET outs, pvio_outs, %esi, %fs:, _a32_fs
XSTR64_SET outs, pvio_outs, %esi, %gs:, _a32_gs
XSTR64_SET outs, pvio_outs, %rsi, %fs:, _fs
XSTR64_SET outs, pvio_outs, %rsi, %gs:, _gs

/* thunks16_tiny.S - the 16-bit rep ins/outs thunks as they were before issue 11: a known-bad runtime for the oracle.
 *
 * They hand %di/%si to the back end as a flat pointer (the tiny model DS = ES = SS) in one call for the block:
 * a back end that uses the pointer as C data then reads and writes DS:%di instead of ES:%di, and the block runs
 * past 0xFFFF instead of wrapping.  test_diff_seg16.py puts them in place of the exact thunks (thunks16.S) and
 * requires the oracle to tell them apart from the real instructions. */

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

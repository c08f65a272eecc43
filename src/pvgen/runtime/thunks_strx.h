/* thunks_strx.h - the six thunks of a form (thunks_strx32.h, thunks_strx64.h) and thunks_strx64.h's element copy loop. */

/* Copy %ebp elements between the stack buffer and \seg:(\ptr) (`load` then `store`, %ecx the offset in the
 * buffer), stepping \ptr by +-size as the caller's DF (in the saved flags at \flags) says; \ptr wraps at its own
 * size, as the instruction's register does. */
.macro XCOPY size, ptr, load, store, flags
	xorl %ecx, %ecx
	movl %ebp, %edx
3:	\load
	\store
	addl $\size, %ecx
	testl $DF_MASK, \flags
	jnz 4f
	add $\size, \ptr
	jmp 5f
4:	sub $\size, \ptr
5:	decl %edx
	jnz 3b
.endm

/* The six thunks \pfx{,rep_}\op{b,w,l}\tail of one form, made by the macro \thunk (name, size, op, rep, acc, args). */
.macro XSET thunk, pfx, op, tail, args:vararg
\thunk \pfx\()\op\()b\tail,     1, \op, 0, %al,  \args
\thunk \pfx\()\op\()w\tail,     2, \op, 0, %ax,  \args
\thunk \pfx\()\op\()l\tail,     4, \op, 0, %eax, \args
\thunk \pfx\()rep_\op\()b\tail, 1, \op, 1, %al,  \args
\thunk \pfx\()rep_\op\()w\tail, 2, \op, 1, %ax,  \args
\thunk \pfx\()rep_\op\()l\tail, 4, \op, 1, %eax, \args
.endm

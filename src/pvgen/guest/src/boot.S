/* boot.S - CPL0 entry points: the boot stub, exception and IRQ gates, the idle syscall, and the CPL3 upcall stub.
 * Everything at CPL0 is kept to a few instructions: on hosts without VMX/SVM, KVM emulates CPL0 code. */
#include "hx_internal.h"

	.section .text.hx_boot, "ax"
	.globl _start
_start:					/* CPL0, 64-bit, paging on: the monitor set up CR0/CR4/EFER/CR3 */
	movq	$hx_kstack_top, %rsp
	call	hx_boot			/* GDT, TSS (I/O bitmap), IDT, PIC, PIT */
	pushq	$HX_USER_DS		/* iretq to CPL3: SS, RSP, RFLAGS (IF=1, IOPL=0), CS, RIP */
	pushq	$hx_ustack_top
	pushq	$0x202
	pushq	$HX_USER_CS
	pushq	$hx_user_start
	iretq

	.text
/* Exceptions 0-31: report to the monitor, which reads the frame at rsp: vector, error, rip, cs, rflags, rsp, ss. */
.macro EXC vec, has_err
	.globl hx_exc\vec
hx_exc\vec:
	.if \has_err == 0
	pushq	$0
	.endif
	pushq	$\vec
	jmp	hx_fault_common
.endm
	EXC 0,0; EXC 1,0; EXC 2,0; EXC 3,0; EXC 4,0; EXC 5,0; EXC 7,0
	EXC 8,1; EXC 9,0; EXC 10,1; EXC 11,1; EXC 12,1; EXC 13,1; EXC 14,1; EXC 15,0
	EXC 16,0; EXC 17,1; EXC 18,0; EXC 19,0; EXC 20,0; EXC 21,1; EXC 22,0; EXC 23,0
	EXC 24,0; EXC 25,0; EXC 26,0; EXC 27,0; EXC 28,0; EXC 29,1; EXC 30,1; EXC 31,0
hx_fault_common:
	movw	$HX_PORT_FAULT, %dx
	outb	%al, %dx
1:	hlt
	jmp	1b

/* IRQs 0-15 (vectors 0x20-0x2f). Mark pending, count jiffies, EOI; if the interrupted code ran at CPL3 with
 * upcalls enabled, redirect it to hx_upcall_entry signal-style: the interrupted RFLAGS and RIP are pushed below
 * its red zone and the frame's RIP/RSP are replaced. */
.macro IRQ n
	.globl hx_irq\n
hx_irq\n:
	pushq	$\n
	jmp	hx_irq_common
.endm
	IRQ 0; IRQ 1; IRQ 2; IRQ 3; IRQ 4; IRQ 5; IRQ 6; IRQ 7
	IRQ 8; IRQ 9; IRQ 10; IRQ 11; IRQ 12; IRQ 13; IRQ 14; IRQ 15
hx_irq_common:				/* rdx, rax, irq, RIP, CS, RFLAGS, RSP, SS */
	pushq	%rax
	pushq	%rdx
	movl	16(%rsp), %edx
	lock btsq %rdx, hx_irq_pending(%rip)
	testl	%edx, %edx
	jnz	1f
	incq	hx_jiffies(%rip)
1:	movb	$0x20, %al		/* non-specific EOI (8259A OCW2) */
	cmpl	$8, %edx
	jb	2f
	outb	%al, $0xa0
2:	outb	%al, $0x20
	testb	$3, 32(%rsp)
	jz	9f
	cmpl	$0, hx_irq_soft_disabled(%rip)
	jne	9f
	movl	$1, hx_irq_soft_disabled(%rip)
	movq	48(%rsp), %rax
	subq	$144, %rax		/* 128-byte red zone, then RFLAGS and RIP */
	movq	24(%rsp), %rdx
	movq	%rdx, 8(%rax)
	movq	40(%rsp), %rdx
	movq	%rdx, (%rax)
	movq	%rax, 48(%rsp)
	movq	$hx_upcall_entry, 24(%rsp)
9:	popq	%rdx
	popq	%rax
	addq	$8, %rsp
	iretq

/* #UD. A `ud2` executed at CPL3 is hx_idle's request to wait for the next interrupt at CPL0 (KVM's emulator
 * cannot deliver `int $n` in long mode on hosts without VMX/SVM, but exceptions arrive): step over it, sti; hlt. */
	.globl hx_exc6
hx_exc6:
	testb	$3, 8(%rsp)
	jz	1f
	pushq	%rax
	movq	8(%rsp), %rax
	cmpw	$0x0b0f, (%rax)
	popq	%rax
	jne	1f
	addq	$2, (%rsp)
	cmpq	$0, hx_irq_pending(%rip)	/* an IRQ already pending: do not wait for the next one */
	jne	2f
	sti
	hlt
2:	iretq
1:	pushq	$0
	pushq	$6
	jmp	hx_fault_common

/* CPL3: entered with [rsp] = interrupted RFLAGS, [rsp+8] = interrupted RIP, 128 bytes of red zone above. */
	.globl hx_upcall_entry
hx_upcall_entry:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%rbp
	movq	%rsp, %rbp
	andq	$-16, %rsp
	subq	$512, %rsp
	fxsave64 (%rsp)
	cld
	call	hx_irq_upcall
	fxrstor64 (%rsp)
	movq	%rbp, %rsp
	popq	%rbp
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rax
	popfq
	ret	$128
	.section .note.GNU-stack, "", @progbits

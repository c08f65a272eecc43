/* irq.c - CPL3 interrupt upcalls: registration, soft masking, the dispatcher, idle, and the PIC mask. */
#include "hx_internal.h"

volatile unsigned long hx_irq_pending;
volatile unsigned int hx_irq_soft_disabled;
volatile hx_u64 hx_jiffies;

/* The batching runtime's timer flush, when it is linked in (docs/thunk-abi.md, issue 3). */
extern void pvio_tick(void) __attribute__((weak));

static struct { hx_irq_fn fn; void *arg; } handlers[16];
static unsigned char pic_mask[2] = { 0xfa, 0xff };

void hx_pic_set_mask(int irq, int masked)
{
	int chip = irq >> 3, bit = 1 << (irq & 7);
	if (masked)
		pic_mask[chip] |= bit;
	else
		pic_mask[chip] &= ~bit;
	hx_outb(chip ? 0xa1 : 0x21, pic_mask[chip]);
}

int hx_irq_register(int irq, hx_irq_fn fn, void *arg)
{
	if (irq < 0 || irq > 15 || irq == 2 || !fn || handlers[irq].fn)
		return -1;
	unsigned long f = hx_irq_save();
	handlers[irq].arg = arg;
	handlers[irq].fn = fn;
	if (irq)
		hx_pic_set_mask(irq, 0);
	hx_irq_restore(f);
	return 0;
}

void hx_irq_unregister(int irq)
{
	if (irq < 0 || irq > 15)
		return;
	unsigned long f = hx_irq_save();
	if (irq && irq != 2)
		hx_pic_set_mask(irq, 1);
	handlers[irq].fn = 0;
	handlers[irq].arg = 0;
	hx_irq_restore(f);
}

/* Runs the handlers of every pending IRQ; called with upcalls soft-disabled. */
static void dispatch_pending(void)
{
	unsigned long p;
	while ((p = __atomic_exchange_n(&hx_irq_pending, 0, __ATOMIC_SEQ_CST)) != 0) {
		while (p) {
			int irq = __builtin_ctzl(p);
			p &= p - 1;
			if (irq == 0) {
				void (*volatile tick)(void) = pvio_tick;
				if (tick)
					tick();
			}
			if (handlers[irq].fn)
				handlers[irq].fn(irq, handlers[irq].arg);
		}
	}
}

/* Entered from hx_upcall_entry (boot.S) with hx_irq_soft_disabled already set by the CPL0 entry. */
void hx_irq_upcall(void)
{
	for (;;) {
		dispatch_pending();
		hx_barrier();
		hx_irq_soft_disabled = 0;
		hx_barrier();
		if (!hx_irq_pending)
			return;
		hx_irq_soft_disabled = 1;
		hx_barrier();
	}
}

unsigned long hx_irq_save(void)
{
	unsigned long old = hx_irq_soft_disabled;
	hx_irq_soft_disabled = 1;
	hx_barrier();
	return old;
}

void hx_irq_restore(unsigned long flags)
{
	hx_barrier();
	if (flags) {
		hx_irq_soft_disabled = 1;
		return;
	}
	hx_irq_soft_disabled = 0;
	hx_barrier();
	if (hx_irq_pending) {
		hx_irq_soft_disabled = 1;
		hx_irq_upcall();
	}
}

void hx_irq_enable(void) { hx_irq_restore(0); }
void hx_irq_disable(void) { (void)hx_irq_save(); }
int hx_irqs_disabled(void) { return hx_irq_soft_disabled != 0; }

/* Waits for the next interrupt and dispatches what is pending, even inside hx_irq_save (like `sti; hlt`), then
 * returns with the caller's soft state. So `f = hx_irq_save(); while (!cond) hx_idle(); hx_irq_restore(f);` has no
 * lost wake-up: an IRQ arriving after the check stays pending, the CPL0 path then skips the halt, and it is
 * dispatched here. */
void hx_idle(void)
{
	if (hx_before_idle) {
		/* e.g. the batching runtime's queued I/O goes out before the CPU sleeps.  Masked: an interrupt it makes
		 * pending is dispatched below, with no halt, and hx_idle returns, so the caller sees what the handler
		 * did (and the handler's own queued I/O goes out at the next hx_idle, not after a sleep). */
		unsigned long f = hx_irq_save();

		hx_before_idle();
		hx_irq_soft_disabled = f;
		hx_barrier();
	}
	if (!hx_irq_pending)
		__asm__ volatile("ud2" ::: "memory");	/* CPL0 #UD entry: sti; hlt unless an IRQ is pending (boot.S) */
	if (hx_irq_pending) {
		unsigned int prev = hx_irq_soft_disabled;
		hx_irq_soft_disabled = 1;
		hx_barrier();
		hx_irq_upcall();
		hx_irq_soft_disabled = prev;
		hx_barrier();
	}
}

/* The batching runtime's interrupt mask (runtime/pvio_arch.h) on the soft-disable word itself. These strong
 * definitions replace runtime/arch_hx.c's weak wrappers around hx_irq_save/restore: a runtime operation then costs
 * a load and two stores instead of two calls with a full register spill (no_caller_saved_registers). Only an IRQ
 * that arrived while masked takes the out-of-line path, which runs it through hx_irq_restore. */
#define HX_NO_CALLER_SAVED __attribute__((no_caller_saved_registers))

HX_NO_CALLER_SAVED unsigned long pvio_arch_irq_save(void)
{
	unsigned long old = hx_irq_soft_disabled;
	hx_irq_soft_disabled = 1;
	hx_barrier();
	return old;
}

static HX_NO_CALLER_SAVED __attribute__((noinline)) void pvio_irq_restore_pending(void)
{
	hx_irq_restore(0);
}

HX_NO_CALLER_SAVED void pvio_arch_irq_restore(unsigned long flags)
{
	hx_barrier();
	if (flags) {
		hx_irq_soft_disabled = 1;	/* nested: still masked, the outer level unmasks */
		return;
	}
	hx_irq_soft_disabled = 0;
	hx_barrier();
	if (hx_irq_pending)
		pvio_irq_restore_pending();
}

/* Interrupt notification (runtime/pvio_arch.h, docs/protocol.md): a flush that raised a device line hands it back
 * in the batch area instead of the monitor asserting it on the PIC. It becomes pending exactly like an upcall the
 * CPL0 entry marked, and runs when the runtime's operation unmasks (pvio_arch_irq_restore), or at the end of the
 * handler that flushed. The timer (IRQ 0) and the cascade (IRQ 2) never come this way. */
#define HX_NOTIFY_LINES 0xfffau	/* every ISA line but the timer (0) and the cascade (2) */

unsigned int pvio_arch_irq_lines(void)
{
	return HX_NOTIFY_LINES;
}

HX_NO_CALLER_SAVED void pvio_arch_irq_notify(unsigned int lines)
{
	/* masked again here: irq_notify and irq_lines live in memory the monitor writes */
	__atomic_fetch_or(&hx_irq_pending, (unsigned long)(lines & HX_NOTIFY_LINES), __ATOMIC_SEQ_CST);
}

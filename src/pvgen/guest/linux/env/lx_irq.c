/* lx_irq.c - request_irq and disable_irq/enable_irq over the harness's interrupt upcalls. */
#include <linux/interrupt.h>
#include <linux/irq.h>
#include "lx_env.h"

#define LX_NR_IRQS 16
#define LX_ACTIONS 4

struct lx_action {
	irq_handler_t handler, thread_fn;
	void *dev_id;
	const char *name;
	unsigned long flags;
};

/* A line disabled by disable_irq keeps its interrupt pending here (the PIC acknowledged it already) and
 * enable_irq replays it: the 8390 driver masks its line around every transmit. */
static struct {
	struct lx_action act[LX_ACTIONS];
	int nact, depth, pending;
	unsigned long count;
} lines[LX_NR_IRQS];

static void run_actions(int irq)
{
	for (int i = 0; i < lines[irq].nact; i++) {
		struct lx_action *a = &lines[irq].act[i];
		irqreturn_t r = a->handler ? a->handler(irq, a->dev_id) : IRQ_WAKE_THREAD;

		if (r == IRQ_WAKE_THREAD && a->thread_fn)
			a->thread_fn(irq, a->dev_id);
	}
	lines[irq].count++;
}

static void lx_irq_entry(int irq, void *arg)
{
	if (lines[irq].depth) {
		lines[irq].pending = 1;
		return;
	}
	run_actions(irq);
}

int request_threaded_irq(unsigned int irq, irq_handler_t handler, irq_handler_t thread_fn,
			 unsigned long irqflags, const char *devname, void *dev_id)
{
	struct lx_action *a;

	if (irq >= LX_NR_IRQS || (!handler && !thread_fn))
		return -EINVAL;
	if (lines[irq].nact) {
		if (!(irqflags & IRQF_SHARED) || !(lines[irq].act[0].flags & IRQF_SHARED) || lines[irq].nact == LX_ACTIONS)
			return -EBUSY;
	} else if (hx_irq_register(irq, lx_irq_entry, NULL) < 0) {
		return -EBUSY;
	}
	a = &lines[irq].act[lines[irq].nact++];
	a->handler = handler;
	a->thread_fn = thread_fn;
	a->dev_id = dev_id;
	a->name = devname;
	a->flags = irqflags;
	return 0;
}

const void *free_irq(unsigned int irq, void *dev_id)
{
	int i;

	if (irq >= LX_NR_IRQS)
		return NULL;
	for (i = 0; i < lines[irq].nact; i++) {
		if (lines[irq].act[i].dev_id == dev_id) {
			const char *name = lines[irq].act[i].name;

			for (; i + 1 < lines[irq].nact; i++)
				lines[irq].act[i] = lines[irq].act[i + 1];
			if (--lines[irq].nact == 0)
				hx_irq_unregister(irq);
			return name;
		}
	}
	_printk(KERN_ERR "lxenv: trying to free already-free IRQ %u\n", irq);
	return NULL;
}

void disable_irq_nosync(unsigned int irq)
{
	if (irq < LX_NR_IRQS)
		lines[irq].depth++;
}

void disable_irq(unsigned int irq)
{
	disable_irq_nosync(irq);   /* one vCPU: no handler can be running on another CPU */
}

bool disable_hardirq(unsigned int irq)
{
	disable_irq_nosync(irq);
	return true;
}

void enable_irq(unsigned int irq)
{
	unsigned long flags;

	if (irq >= LX_NR_IRQS)
		return;
	if (!lines[irq].depth) {
		_printk(KERN_WARNING "lxenv: unbalanced enable for IRQ %u\n", irq);
		return;
	}
	if (--lines[irq].depth || !lines[irq].pending)
		return;
	lines[irq].pending = 0;
	flags = hx_irq_save();
	run_actions(irq);
	hx_irq_restore(flags);
}

void synchronize_irq(unsigned int irq)
{
}

unsigned long lx_irq_count(int irq)
{
	return irq >= 0 && irq < LX_NR_IRQS ? lines[irq].count : 0;
}

// SPDX-License-Identifier: GPL-2.0
/* arch_linux_glue.c - Linux module glue for the batching runtime: per-CPU areas, registration, the hrtimer tick.
 * Compiled by Kbuild with the kernel's headers (pvgen runtime export); the driver calls pvio_linux_start() from
 * its init and pvio_linux_stop() from its exit. CPUs brought online later stay direct (always correct). */

#include <linux/gfp.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/cpu.h>
#include <linux/smp.h>

#include "pvio_protocol.h"

int pvio_init(void *mem, unsigned long size);
void pvio_fini(void);
void pvio_tick(void);
int pvio_linux_start(unsigned int hz);
void pvio_linux_stop(void);

#define PVIO_ORDER 7   /* 128 pages >= PVIO_AREA_SIZE */
_Static_assert((PAGE_SIZE << PVIO_ORDER) >= PVIO_AREA_SIZE, "area order");

static DEFINE_PER_CPU(struct page *, pvio_pages);
static DEFINE_PER_CPU(struct hrtimer, pvio_timer);
static DEFINE_PER_CPU(int, pvio_rc);
static ktime_t pvio_period;

static enum hrtimer_restart pvio_timer_fn(struct hrtimer *t)
{
	pvio_tick();                       /* the timer flush trigger (docs/protocol.md) */
	hrtimer_forward_now(t, pvio_period);
	return HRTIMER_RESTART;
}

static void pvio_start_cpu(void *unused)
{
	struct page *p = this_cpu_read(pvio_pages);
	struct hrtimer *t = this_cpu_ptr(&pvio_timer);

	this_cpu_write(pvio_rc, p ? pvio_init(page_address(p), PAGE_SIZE << PVIO_ORDER) : -1);
	hrtimer_init(t, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED);
	t->function = pvio_timer_fn;
	if (this_cpu_read(pvio_rc) == 0)
		hrtimer_start(t, pvio_period, HRTIMER_MODE_REL_PINNED);
}

static void pvio_stop_cpu(void *unused)
{
	pvio_fini();
}

/* Register an area on every online CPU and tick `hz` times a second; returns the number of active CPUs. */
int pvio_linux_start(unsigned int hz)
{
	int cpu, active = 0;

	pvio_period = ns_to_ktime(NSEC_PER_SEC / (hz ? hz : 250));
	cpus_read_lock();
	for_each_online_cpu(cpu)
		per_cpu(pvio_pages, cpu) = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, PVIO_ORDER);
	on_each_cpu(pvio_start_cpu, NULL, 1);
	for_each_online_cpu(cpu)
		active += per_cpu(pvio_rc, cpu) == 0;
	cpus_read_unlock();
	return active;
}

void pvio_linux_stop(void)
{
	int cpu;

	cpus_read_lock();
	for_each_online_cpu(cpu)
		hrtimer_cancel(per_cpu_ptr(&pvio_timer, cpu));
	on_each_cpu(pvio_stop_cpu, NULL, 1);
	for_each_online_cpu(cpu) {
		if (per_cpu(pvio_pages, cpu))
			__free_pages(per_cpu(pvio_pages, cpu), PVIO_ORDER);
		per_cpu(pvio_pages, cpu) = NULL;
	}
	cpus_read_unlock();
}

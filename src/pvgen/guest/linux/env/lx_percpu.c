/* lx_percpu.c - per-CPU variables and the memory map that inline kernel code reads (kmap_atomic, page_address). */
#include <linux/sched.h>
#include <linux/mm.h>
#include <linux/cpumask.h>
#include "lx_env.h"

/* Per-CPU variables are %gs-relative: their symbols are offsets into the per-CPU area the monitor points GS at
 * (the harness's hx_percpu; the stack canary sits at 0x28). Absolute symbols give the drivers those offsets. */
#define LX_PCPU_PREEMPT_COUNT 0x800
#define LX_PCPU_CURRENT_TASK 0x808
#define LX_PCPU_CPU_NUMBER 0x810
#define STR(x) #x
#define XSTR(x) STR(x)
asm(".globl __preempt_count\n.set __preempt_count, " XSTR(LX_PCPU_PREEMPT_COUNT) "\n"
    ".globl current_task\n.set current_task, " XSTR(LX_PCPU_CURRENT_TASK) "\n"
    ".globl cpu_number\n.set cpu_number, " XSTR(LX_PCPU_CPU_NUMBER) "\n");

/* One CPU, online. */
struct cpumask __cpu_online_mask = { .bits = { 1 } };
struct static_key_false hugetlb_optimize_vmemmap_key;

/* The direct map: page_address(page) = page_offset_base + pfn * PAGE_SIZE, page_to_pfn(page) =
 * (page - vmemmap_base) / sizeof(struct page). The harness maps guest RAM at HX_KERNEL_BASE, and lx_page_map
 * places a small struct page array so that the pages of one buffer have real (zeroed) entries. */
unsigned long page_offset_base = HX_KERNEL_BASE;
unsigned long vmemmap_base;

static struct task_struct *task;

/* The state a task context has in the kernel: preempt count "enabled" (x86 keeps PREEMPT_NEED_RESCHED
 * inverted in bit 31, so a count of 0x80000000 means enabled and no reschedule), a zeroed current task. */
void lx_percpu_init(void)
{
	if (!task)
		task = hx_alloc(sizeof(*task), 64);
	asm volatile("movl %0, %%gs:" XSTR(LX_PCPU_PREEMPT_COUNT) :: "r"(PREEMPT_ENABLED) : "memory");
	asm volatile("movq %0, %%gs:" XSTR(LX_PCPU_CURRENT_TASK) :: "r"(task) : "memory");
	asm volatile("movl %0, %%gs:" XSTR(LX_PCPU_CPU_NUMBER) :: "r"(0) : "memory");
}

struct page *lx_page_map(void *buf, unsigned long npages)
{
	unsigned long pfn = hx_virt_to_phys(buf) >> PAGE_SHIFT;
	struct page *pages = hx_alloc(npages * sizeof(struct page), 64);

	if ((unsigned long)buf & ~PAGE_MASK)
		hx_panic("lx_page_map: buffer %p is not page aligned", buf);
	if ((unsigned long)buf != page_offset_base + (pfn << PAGE_SHIFT))
		hx_panic("lx_page_map: %p is not in the direct map", buf);
	vmemmap_base = (unsigned long)pages - pfn * sizeof(struct page);
	return pages;
}

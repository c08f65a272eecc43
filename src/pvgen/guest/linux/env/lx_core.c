/* lx_core.c - the kernel's ABI glue: ftrace/retpoline thunks, spinlocks, delays, I/O regions, crc32, misc. */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/spinlock.h>
#include <linux/ioport.h>
#include <linux/io.h>
#include <linux/crc32.h>
#include <linux/cc_platform.h>
#include "lx_env.h"

/* Every Kbuild object calls __fentry__ first (ftrace), returns through __x86_return_thunk (RETHUNK) and makes
 * indirect calls through __x86_indirect_thunk_<reg> (RETPOLINE). With no ftrace and no speculation mitigations
 * in the guest, each is the plain instruction. Weak, so a harness built with the same flags can bring its own. */
#define INDIRECT_THUNK(reg) \
	".weak __x86_indirect_thunk_" #reg "\n" \
	".type __x86_indirect_thunk_" #reg ", @function\n" \
	"__x86_indirect_thunk_" #reg ":\n\tjmp *%" #reg "\n"
asm(".pushsection .text.lx_thunks, \"ax\"\n"
    ".weak __fentry__\n.type __fentry__, @function\n__fentry__:\n\tret\n"
    ".weak __x86_return_thunk\n.type __x86_return_thunk, @function\n__x86_return_thunk:\n\tret\n\tint3\n"
    INDIRECT_THUNK(rax) INDIRECT_THUNK(rbx) INDIRECT_THUNK(rcx) INDIRECT_THUNK(rdx)
    INDIRECT_THUNK(rsi) INDIRECT_THUNK(rdi) INDIRECT_THUNK(rbp)
    INDIRECT_THUNK(r8) INDIRECT_THUNK(r9) INDIRECT_THUNK(r10) INDIRECT_THUNK(r11)
    INDIRECT_THUNK(r12) INDIRECT_THUNK(r13) INDIRECT_THUNK(r14) INDIRECT_THUNK(r15)
    ".popsection\n");

/* Module bookkeeping that only the data sections refer to. */
struct module __this_module = { .name = "pvgen-guest" };
const struct kernel_param_ops param_ops_int;
const struct kernel_param_ops param_ops_uint;
const struct kernel_param_ops param_ops_bool;
const struct kernel_param_ops param_array_ops;

void __stack_chk_fail(void)
{
	hx_panic("stack protector: canary changed");
}

void fortify_panic(const char *name)
{
	hx_panic("fortify: buffer overflow detected in %s", name);
}

bool cc_platform_has(enum cc_attr attr)
{
	return false;   /* not a confidential-computing guest: string I/O stays rep ins/outs */
}

/* Spinlocks: one vCPU. A lock taken twice would deadlock on real hardware, so it stops the guest here. */
static inline void lx_lock(raw_spinlock_t *lock, const char *what)
{
	if (atomic_read(&lock->raw_lock.val))
		hx_panic("spinlock recursion in %s (lock %p)", what, lock);
	atomic_set(&lock->raw_lock.val, 1);
}

static inline void lx_unlock(raw_spinlock_t *lock)
{
	atomic_set(&lock->raw_lock.val, 0);
}

void _raw_spin_lock(raw_spinlock_t *lock) { lx_lock(lock, "spin_lock"); }
void _raw_spin_unlock(raw_spinlock_t *lock) { lx_unlock(lock); }
void _raw_spin_lock_bh(raw_spinlock_t *lock) { lx_lock(lock, "spin_lock_bh"); }
void _raw_spin_unlock_bh(raw_spinlock_t *lock) { lx_unlock(lock); }

int _raw_spin_trylock(raw_spinlock_t *lock)
{
	if (atomic_read(&lock->raw_lock.val))
		return 0;
	atomic_set(&lock->raw_lock.val, 1);
	return 1;
}

/* Interrupt masking at CPL3 is the harness's soft mask: cli/sti would fault. */
unsigned long _raw_spin_lock_irqsave(raw_spinlock_t *lock)
{
	unsigned long flags = hx_irq_save();

	lx_lock(lock, "spin_lock_irqsave");
	return flags;
}

void _raw_spin_unlock_irqrestore(raw_spinlock_t *lock, unsigned long flags)
{
	lx_unlock(lock);
	hx_irq_restore(flags);
}

void _raw_spin_lock_irq(raw_spinlock_t *lock)
{
	hx_irq_disable();
	lx_lock(lock, "spin_lock_irq");
}

void _raw_spin_unlock_irq(raw_spinlock_t *lock)
{
	lx_unlock(lock);
	hx_irq_enable();
}

/* udelay(n) is __const_udelay(n * 0x10c7) and ndelay(n) is __const_udelay(n * 5): xloops is seconds scaled by
 * 2^32 (0x10c7 = 2^32 / 10^6, rounded up), so it waits xloops * 10^9 / 2^32 ns, as the kernel's own delay loop
 * does: ndelay(400) waits 466 ns, not a whole microsecond. */
void __const_udelay(unsigned long xloops)
{
	hx_ndelay((unsigned long)(((unsigned __int128)xloops * 1000000000u + 0xffffffffu) >> 32));
}

void __udelay(unsigned long usecs) { hx_udelay(usecs); }
void __ndelay(unsigned long nsecs) { hx_ndelay(nsecs); }
void __delay(unsigned long loops) { hx_udelay(loops / 1000 + 1); }

/* I/O port and memory regions: a flat list of requests per root, refused when they overlap. */
struct resource ioport_resource = {
	.name = "PCI IO", .start = 0, .end = IO_SPACE_LIMIT, .flags = IORESOURCE_IO,
};
struct resource iomem_resource = {
	.name = "PCI mem", .start = 0, .end = -1, .flags = IORESOURCE_MEM,
};

struct resource *__request_region(struct resource *parent, resource_size_t start, resource_size_t n,
				  const char *name, int flags)
{
	resource_size_t end = start + n - 1;
	struct resource *r;

	if (!n || end < start || start < parent->start || end > parent->end)
		return NULL;
	for (r = parent->child; r; r = r->sibling)
		if (start <= r->end && r->start <= end)
			return NULL;
	r = hx_alloc(sizeof(*r), 8);
	r->name = name;
	r->start = start;
	r->end = end;
	r->flags = (parent->flags & IORESOURCE_TYPE_BITS) | IORESOURCE_BUSY | flags;
	r->parent = parent;
	r->sibling = parent->child;
	parent->child = r;
	return r;
}

void __release_region(struct resource *parent, resource_size_t start, resource_size_t n)
{
	struct resource **pp;

	for (pp = &parent->child; *pp; pp = &(*pp)->sibling) {
		if ((*pp)->start == start && (*pp)->end == start + n - 1) {
			struct resource *r = *pp;

			*pp = r->sibling;
			hx_free(r);
			return;
		}
	}
	hx_printf("lxenv: trying to free nonexistent resource <0x%llx-0x%llx>\n",
		  (unsigned long long)start, (unsigned long long)(start + n - 1));
}

/* lib/crc32.c, bit at a time: little-endian CRC-32 (poly 0xedb88320), no pre/post inversion. */
u32 __pure crc32_le(u32 crc, unsigned char const *p, size_t len)
{
	while (len--) {
		crc ^= *p++;
		for (int i = 0; i < 8; i++)
			crc = (crc >> 1) ^ (crc & 1 ? 0xedb88320 : 0);
	}
	return crc;
}

/* lib/bitrev.c's table: byte_rev_table[b] is b with its bit order reversed. */
#define R2(n) n, n + 2 * 64, n + 1 * 64, n + 3 * 64
#define R4(n) R2(n), R2(n + 2 * 16), R2(n + 1 * 16), R2(n + 3 * 16)
#define R6(n) R4(n), R4(n + 2 * 4), R4(n + 1 * 4), R4(n + 3 * 4)
const u8 byte_rev_table[256] = { R6(0), R6(2), R6(1), R6(3) };

void refcount_warn_saturate(refcount_t *r, enum refcount_saturation_type t)
{
	refcount_set(r, REFCOUNT_SATURATED);
	_printk(KERN_WARNING "lxenv: refcount_t %p: saturation event %d\n", r, t);
}

unsigned long __msecs_to_jiffies(const unsigned int m)
{
	return ((unsigned long)m * HZ + 999) / 1000;
}

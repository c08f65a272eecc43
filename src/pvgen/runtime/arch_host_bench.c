/* arch_host_bench.c - host build only: a posted-OUT loop with an in-process stand-in monitor, for callgrind. */

/* Usage: pvio_bench N [threshold].  The stand-in monitor answers the probe, activates the area with port 0x80
 * posted, and empties the queue on each flush (what pvbatch does, minus the replay), so the instructions counted
 * are the guest's: call site, thunk, back end, and the amortized flush exit. */

#include "pvio_arch.h"

int pvio_init(void *mem, unsigned long size);
unsigned pvio_set_threshold(unsigned n);
void pvio_flush(void);
void pvio_host_outb_loop(pvio_u16 port, unsigned long n);
int atoi(const char *s);
int printf(const char *fmt, ...);

static struct pvio_area area __attribute__((aligned(4096)));
static unsigned long flushes;

static void fake_exit(pvio_u16 port, pvio_u32 value)
{
	(void)value;
	if (port == PVIO_CTRL_REGISTER) {
		area.classes[0x80] = (PVIO_CLASS_POSTED << PVIO_CLS_WRITE_SHIFT) | PVIO_CLS_OWNED;
		area.header.slot = 0;
		area.header.state = PVIO_STATE_ACTIVE;
	} else if (port == PVIO_CTRL_FLUSH) {
		flushes++;
		area.header.count = 0;
	}
}

static pvio_u32 fake_in(pvio_u16 port, unsigned size)
{
	(void)size;
	return port == PVIO_CTRL_REGISTER ? PVIO_MAGIC : 0xffffffffu;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? (unsigned long)atoi(argv[1]) : 1000000;
	unsigned t = argc > 2 ? (unsigned)atoi(argv[2]) : PVIO_ENTRY_CAPACITY;

	pvio_host_ops.exit = fake_exit;
	pvio_host_ops.in = fake_in;
	pvio_host_ram_base = (unsigned long)&area;   /* "guest RAM" starts at the area: GPA 0 */
	if (pvio_init(&area, sizeof(area)) != 0) {
		printf("pvio_init failed\n");
		return 1;
	}
	t = pvio_set_threshold(t);
	pvio_host_outb_loop(0x80, n);
	pvio_flush();
	printf("outs=%lu threshold=%u flushes=%lu\n", n, t, flushes);
	return 0;
}

/* pvideal.c - the hand-written paravirtual driver for the pvring device, and the net/disk benchmark workloads. */
#include "harness.h"
#include "pvring.h"
#include "workload.h"

/* Command line (docs/bench.md): wl=net|disk ops=N seed=S batch=B blocks=K pvring=0xBASE qsize=Q [irq=LINE].
 * Requests are queued `batch` at a time and each batch costs one doorbell write; completion is found by polling
 * the ring's used index (the device completes during the doorbell exit, so the poll normally succeeds at once).
 * With irq=LINE the rings ask for an interrupt on completion instead, and the driver waits in hx_idle() until its
 * handler (which reads and so clears ISR) has seen the queue's bit. */

#define NET_BUF 2048
#define TIMEOUT_NS 2000000000ULL

struct queue {
	struct pvr_ring *ring;
	struct pvr_desc *desc;
	unsigned size;
	unsigned avail;
	unsigned char **buf;
};

static unsigned short pvr_base;
static unsigned long errors;
static int use_irq;
static volatile unsigned irq_seen, irq_count;

static unsigned pvr_read(unsigned reg);

static void pvr_interrupt(int irq, void *arg)
{
	(void)irq;
	(void)arg;
	irq_seen |= pvr_read(PVR_REG_ISR);
	irq_count++;
}

static inline void pvr_write(unsigned reg, unsigned value)
{
	__asm__ volatile("outl %0, %w1" : : "a"(value), "Nd"((unsigned short)(pvr_base + reg)) : "memory");
}

static unsigned pvr_read(unsigned reg)
{
	unsigned v;
	__asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"((unsigned short)(pvr_base + reg)) : "memory");
	return v;
}

static void queue_setup(struct queue *q, unsigned qnum, unsigned size, unsigned nbuf, unsigned bufsize)
{
	q->size = size;
	q->avail = 0;
	q->ring = hx_alloc(sizeof(struct pvr_ring) + size * sizeof(struct pvr_desc), 4096);
	q->desc = (struct pvr_desc *)(q->ring + 1);
	q->ring->flags = use_irq ? PVR_F_INTERRUPT : 0;
	q->buf = hx_alloc(nbuf * sizeof(*q->buf), 8);
	for (unsigned i = 0; i < nbuf; i++)
		q->buf[i] = hx_alloc(bufsize, 64);
	hx_u64 pa = hx_virt_to_phys(q->ring);
	pvr_write(PVR_REG_QSEL, qnum);
	pvr_write(PVR_REG_QADDR_LO, (unsigned)pa);
	pvr_write(PVR_REG_QADDR_HI, (unsigned)(pa >> 32));
	pvr_write(PVR_REG_QSIZE, size);
}

static struct pvr_desc *queue_add(struct queue *q, void *buf, unsigned len, unsigned op, hx_u64 block)
{
	struct pvr_desc *d = &q->desc[q->avail & (q->size - 1)];
	d->addr = hx_virt_to_phys(buf);
	d->len = len;
	d->op = op;
	d->status = PVR_ST_PENDING;
	d->block = block;
	d->used_len = 0;
	q->avail++;
	return d;
}

/* Publish the new entries, ring the doorbell once, and wait until the device has used them all. */
static int queue_kick_wait(struct queue *q, unsigned qnum)
{
	__asm__ volatile("" ::: "memory");
	q->ring->avail = q->avail;
	pvr_write(PVR_REG_NOTIFY, qnum);
	hx_u64 t0 = hx_nsec();
	if (use_irq) {
		while (!(irq_seen & (1u << qnum)) && hx_nsec() - t0 < TIMEOUT_NS)
			hx_idle();
		unsigned long fl = hx_irq_save();
		irq_seen &= ~(1u << qnum);
		hx_irq_restore(fl);
	}
	while (q->ring->used != q->avail) {
		if (hx_nsec() - t0 > TIMEOUT_NS) {
			hx_printf("pvideal: queue %u: used %u of %u after timeout\n", qnum, q->ring->used, q->avail);
			return -1;
		}
	}
	__asm__ volatile("" ::: "memory");
	return 0;
}

static int net_workload(const char *cmd)
{
	wl_u64 ops = wl_param(cmd, "ops", 100), seed = wl_param(cmd, "seed", 1);
	unsigned batch = wl_param(cmd, "batch", 1), qsize = wl_param(cmd, "qsize", 256);
	if (batch < 1 || batch > qsize)
		hx_panic("pvideal: batch %u outside 1..qsize %u", batch, qsize);
	struct queue tx, rx;
	queue_setup(&tx, PVR_Q_NET_TX, qsize, batch, NET_BUF);
	queue_setup(&rx, PVR_Q_NET_RX, qsize, batch, NET_BUF);

	wl_u64 sent = 0;
	hx_mark(WL_MARK_TX_START);
	while (sent < ops) {
		unsigned n = ops - sent < batch ? (unsigned)(ops - sent) : batch;
		struct pvr_desc *d[n];
		for (unsigned k = 0; k < n; k++) {
			unsigned len = wl_frame(seed, WL_TAG_TX, sent + k, tx.buf[k]);
			d[k] = queue_add(&tx, tx.buf[k], len, PVR_OP_NET_TX, 0);
		}
		if (queue_kick_wait(&tx, PVR_Q_NET_TX))
			return 1;
		for (unsigned k = 0; k < n; k++)
			errors += d[k]->status != PVR_ST_OK;
		sent += n;
	}
	hx_mark(WL_MARK_TX_END);

	wl_u64 got = 0, bytes = 0;
	wl_u32 crc = 0;
	hx_mark(WL_MARK_RX_START);
	while (got < ops) {
		unsigned n = ops - got < batch ? (unsigned)(ops - got) : batch;
		struct pvr_desc *d[n];
		for (unsigned k = 0; k < n; k++)
			d[k] = queue_add(&rx, rx.buf[k], NET_BUF, PVR_OP_NET_RX, 0);
		if (queue_kick_wait(&rx, PVR_Q_NET_RX))
			break;
		for (unsigned k = 0; k < n; k++) {
			if (d[k]->status != PVR_ST_OK) {
				errors++;
				continue;
			}
			crc = wl_frame_crc(crc, rx.buf[k], d[k]->used_len);
			bytes += d[k]->used_len;
			got++;
		}
	}
	hx_mark(WL_MARK_RX_END);
	hx_printf("PVGEN-RESULT tx=%llu rx=%llu rx_bytes=%llu rx_crc=0x%08x errors=%lu dev_errors=%u irqs=%u\n",
		  sent, got, bytes, crc, errors, pvr_read(PVR_REG_ERRORS), irq_count);
	return errors != 0 || got != ops;
}

static int disk_workload(const char *cmd)
{
	wl_u64 ops = wl_param(cmd, "ops", 100), seed = wl_param(cmd, "seed", 1);
	unsigned batch = wl_param(cmd, "batch", 1), qsize = wl_param(cmd, "qsize", 256);
	wl_u64 blocks = pvr_read(PVR_REG_BLOCKS);            /* this device's IDENTIFY */
	if (blocks == 0 || blocks != wl_param(cmd, "blocks", blocks))
		hx_panic("pvideal: device reports %llu blocks, command line %llu", blocks, wl_param(cmd, "blocks", 0));
	if (batch < 1 || batch > qsize || ops < 4)
		hx_panic("pvideal: need ops >= 4 and batch in 1..%u", qsize);
	struct queue q;
	queue_setup(&q, PVR_Q_DISK, qsize, batch, WL_BLOCK);

	wl_u64 done = 0, reads = 0, writes = 0;
	wl_u32 crc = 0;
	hx_mark(WL_MARK_DISK_START);
	while (done < ops) {
		unsigned n = ops - done < batch ? (unsigned)(ops - done) : batch;

		wl_disk_quarter_mark(done, ops, hx_mark);
		for (wl_u64 q = 1; q < 4; q++) {        /* a batch never spans two quarters (the phases' marks) */
			wl_u64 start = wl_disk_quarter_start(q, ops);
			if (done < start && done + n > start)
				n = (unsigned)(start - done);
		}
		struct pvr_desc *d[n];
		for (unsigned k = 0; k < n; k++) {
			wl_u64 i = done + k;
			int w = wl_disk_is_write(i, ops);
			if (w)
				wl_write_data(seed, i, q.buf[k]);
			d[k] = queue_add(&q, q.buf[k], WL_BLOCK, w ? PVR_OP_DISK_WRITE : PVR_OP_DISK_READ,
					 wl_disk_block(seed, i, ops, blocks));
		}
		if (queue_kick_wait(&q, PVR_Q_DISK))
			return 1;
		for (unsigned k = 0; k < n; k++) {
			if (d[k]->status != PVR_ST_OK) {
				errors++;
			} else if (d[k]->op == PVR_OP_DISK_READ) {
				crc = wl_crc32(crc, q.buf[k], WL_BLOCK);
				reads++;
			} else {
				writes++;
			}
		}
		done += n;
	}
	hx_mark(WL_MARK_DISK_END);
	hx_printf("PVGEN-RESULT reads=%llu writes=%llu read_crc=0x%08x errors=%lu dev_errors=%u irqs=%u\n",
		  reads, writes, crc, errors, pvr_read(PVR_REG_ERRORS), irq_count);
	return errors != 0;
}

int hx_main(void)
{
	const char *cmd = hx_cmdline();
	pvr_base = wl_param(cmd, "pvring", 0xe80);
	if (pvr_read(PVR_REG_MAGIC) != PVR_MAGIC)
		hx_panic("pvideal: no pvring device at 0x%x", pvr_base);
	int line = (int)wl_param(cmd, "irq", 0);
	if (line) {
		if (hx_irq_register(line, pvr_interrupt, 0))
			hx_panic("pvideal: IRQ %d is taken", line);
		use_irq = 1;
	}
	if (wl_is(cmd, "net"))
		return net_workload(cmd);
	if (wl_is(cmd, "disk"))
		return disk_workload(cmd);
	hx_panic("pvideal: command line needs wl=net or wl=disk: '%s'", cmd);
}

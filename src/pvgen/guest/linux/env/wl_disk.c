/* wl_disk.c - the `disk` workload: IDENTIFY, then 4 KiB PIO reads and writes through the real libata SFF code. */
#include <linux/libata.h>
#include <linux/ata.h>
#include <linux/io.h>
#include "lx_env.h"
#include "workload.h"   /* the shared workload contract (guest/pvideal/workload.h, bench/workload.py) */

/* The legacy primary channel (ATA/ATAPI-6 and the ISA compatibility map): command block and control block. */
#define ATA_PRIMARY_CMD 0x1f0
#define ATA_PRIMARY_CTL 0x3f6
#define SECTORS (WL_BLOCK / ATA_SECT_SIZE)

/* Two ways through the real libata-sff.o, both polled (nIEN set), on port addresses that lib/iomap.c's
 * ioread8/iowrite8/ioread16_rep/iowrite16_rep turn into inb/outb/insw/outsw:
 * - direct (default): ata_sff_tf_load, ata_sff_exec_command, ata_sff_check_status (through ata_sff_busy_wait)
 *   and one ata_sff_data_xfer per DRQ block;
 * - hsm=1: the task file as ata_tf_to_host issues it, then libata's own state machine, ata_sff_hsm_move, driven
 *   the way ata_sff_pio_task drives a polled command: it moves the data a sector at a time through
 *   ata_pio_sectors/ata_pio_sector (a scatterlist, kmap_atomic) and completes the qc. */
static void noop_irq_on(struct ata_port *ap)
{
	/* stay polled: ata_hsm_qc_complete would otherwise turn the device's interrupt on (ata_sff_irq_on) */
}

static struct ata_port_operations port_ops = {
	.sff_check_status = ata_sff_check_status,
	.sff_tf_load = ata_sff_tf_load,
	.sff_tf_read = ata_sff_tf_read,
	.sff_exec_command = ata_sff_exec_command,
	.sff_data_xfer = ata_sff_data_xfer,
	.sff_dev_select = ata_sff_dev_select,
	.sff_irq_on = noop_irq_on,
};
static struct ata_host host;
static struct ata_port port;
static struct ata_queued_cmd qc;
static unsigned long errors, dev_errors;
static bool multiple, hsm;

static void port_init(void)
{
	struct ata_port *ap = &port;

	ap->ops = &port_ops;
	ap->host = &host;
	spin_lock_init(&host.lock);
	ap->lock = &host.lock;
	ap->link.ap = ap;
	ap->print_id = 1;
	for (int i = 0; i < ATA_MAX_DEVICES; i++) {
		ap->link.device[i].link = &ap->link;
		ap->link.device[i].devno = i;
	}
	ap->ioaddr.cmd_addr = ioport_map(ATA_PRIMARY_CMD, 8);
	ap->ioaddr.ctl_addr = ap->ioaddr.altstatus_addr = ioport_map(ATA_PRIMARY_CTL, 1);
	ata_sff_std_ports(&ap->ioaddr);
	ap->last_ctl = 0xff;   /* unknown: the first task file writes Device Control */
	qc.ap = ap;
	qc.dev = &ap->link.device[0];
}

/* Load the task file and write the command (the device is polled: nIEN). */
static void issue(struct ata_taskfile *tf)
{
	tf->ctl = ATA_DEVCTL_OBS | ATA_NIEN;
	tf->protocol = ATA_PROT_PIO;
	port.ops->sff_tf_load(&port, tf);
	port.ops->sff_exec_command(&port, tf);
}

/* Wait for BSY to clear; then the status must show `want` (DRQ before a data block, or not) and no error. */
static int wait_status(u8 want, const char *what)
{
	u8 status = ata_sff_busy_wait(&port, ATA_BUSY, 100000);

	if (status & ATA_BUSY || status & (ATA_ERR | ATA_DF) || (status & ATA_DRQ) != want) {
		hx_printf("lxdisk: %s: status 0x%02x\n", what, status);
		dev_errors++;
		return -1;
	}
	return 0;
}

static int identify(u16 *id)
{
	struct ata_taskfile tf = { .flags = ATA_TFLAG_DEVICE, .device = ATA_DEVICE_OBS, .command = ATA_CMD_ID_ATA };
	u8 sum = 0;

	issue(&tf);
	if (wait_status(ATA_DRQ, "IDENTIFY"))
		return -1;
	ata_sff_data_xfer(&qc, (unsigned char *)id, ATA_ID_WORDS * 2, READ);
	if (wait_status(0, "IDENTIFY done"))
		return -1;
	/* ATA/ATAPI-6 8.15.61: word 255 = checksum (high byte) and signature 0xA5; all 512 bytes sum to zero. */
	for (int i = 0; i < ATA_ID_WORDS * 2; i++)
		sum += ((u8 *)id)[i];
	if ((id[255] & 0xff) == 0xa5 && sum) {
		hx_printf("lxdisk: IDENTIFY checksum mismatch\n");
		return -1;
	}
	return 0;
}

static int set_multiple(unsigned int count)
{
	struct ata_taskfile tf = { .flags = ATA_TFLAG_DEVICE | ATA_TFLAG_ISADDR, .device = ATA_DEVICE_OBS,
				   .nsect = count, .command = ATA_CMD_SET_MULTI };

	issue(&tf);
	return wait_status(0, "SET MULTIPLE MODE");
}

/* One 4 KiB request: READ/WRITE MULTIPLE (one DRQ block of 8 sectors) or READ/WRITE SECTORS (8 blocks of one). */
static int transfer(u64 lba, u8 *buf, bool write)
{
	struct ata_taskfile tf = {
		.flags = ATA_TFLAG_ISADDR | ATA_TFLAG_DEVICE | ATA_TFLAG_LBA | (write ? ATA_TFLAG_WRITE : 0),
		.nsect = SECTORS, .lbal = lba, .lbam = lba >> 8, .lbah = lba >> 16,
		.device = ATA_LBA | ((lba >> 24) & 0xf),
	};
	unsigned int per_drq = multiple ? SECTORS : 1;

	tf.command = multiple ? (write ? ATA_CMD_WRITE_MULTI : ATA_CMD_READ_MULTI)
			      : (write ? ATA_CMD_PIO_WRITE : ATA_CMD_PIO_READ);
	issue(&tf);
	for (unsigned int s = 0; s < SECTORS; s += per_drq) {
		if (wait_status(ATA_DRQ, write ? "write DRQ" : "read DRQ"))
			return -1;
		ata_sff_data_xfer(&qc, buf + s * ATA_SECT_SIZE, per_drq * ATA_SECT_SIZE, write ? WRITE : READ);
	}
	return wait_status(0, write ? "write done" : "read done");
}

/* The same request through ata_sff_hsm_move (libata-sff.c), as ata_sff_pio_task runs it for a polled command. */
static int transfer_hsm(u64 lba, u8 *buf, struct page *page, bool write)
{
	static struct scatterlist sg;
	struct ata_taskfile *tf = &qc.tf;
	int poll_next;

	lx_memset(tf, 0, sizeof(*tf));
	tf->flags = ATA_TFLAG_ISADDR | ATA_TFLAG_DEVICE | ATA_TFLAG_LBA | ATA_TFLAG_POLLING |
		    (write ? ATA_TFLAG_WRITE : 0);
	tf->nsect = SECTORS;
	tf->lbal = lba;
	tf->lbam = lba >> 8;
	tf->lbah = lba >> 16;
	tf->device = ATA_LBA | ((lba >> 24) & 0xf);
	tf->command = multiple ? (write ? ATA_CMD_WRITE_MULTI : ATA_CMD_READ_MULTI)
			       : (write ? ATA_CMD_PIO_WRITE : ATA_CMD_PIO_READ);
	lx_memset(&sg, 0, sizeof(sg));
	sg_set_page(&sg, page, WL_BLOCK, 0);
	sg_mark_end(&sg);
	qc.sg = qc.cursg = &sg;
	qc.n_elem = 1;
	qc.cursg_ofs = 0;
	qc.sect_size = ATA_SECT_SIZE;
	qc.nbytes = WL_BLOCK;
	qc.curbytes = 0;
	qc.err_mask = 0;
	qc.flags = ATA_QCFLAG_ACTIVE;
	qc.dev->multi_count = multiple ? SECTORS : 0;

	issue(tf);
	/* ata_sff_qc_issue, ATA_PROT_PIO with polling: a write starts by sending data, a read by waiting for it */
	port.hsm_task_state = write ? HSM_ST_FIRST : HSM_ST;
	spin_lock_irq(port.lock);
	do {
		u8 status = ata_sff_busy_wait(&port, ATA_BUSY, 100000);

		poll_next = ata_sff_hsm_move(&port, &qc, status, 1);
	} while (poll_next);
	spin_unlock_irq(port.lock);
	if (qc.flags & ATA_QCFLAG_ACTIVE || qc.err_mask || port.hsm_task_state != HSM_ST_IDLE) {
		hx_printf("lxdisk: %s via ata_sff_hsm_move: err_mask 0x%x, state %u\n", write ? "write" : "read",
			  qc.err_mask, port.hsm_task_state);
		dev_errors++;
		return -1;
	}
	return 0;
}

int hx_main(void)
{
	const char *cmd = hx_cmdline();
	u64 ops = wl_param(cmd, "ops", 64), seed = wl_param(cmd, "seed", 1);
	u64 blocks = wl_param(cmd, "blocks", 16384), capacity, reads = 0, writes = 0;
	/* check=1: also compare each read of a block this run wrote with the data written, in the guest (a
	 * diagnosis: it names the block).  Off by default: pv-ideal's workload does not do it, and the host checks
	 * every byte read anyway (the CRC chain) and the image after the run (docs/bench.md). */
	u64 check = wl_param(cmd, "check", 0);
	static u16 id[ATA_ID_WORDS];
	static u8 want[WL_BLOCK];
	u8 *buf;
	struct page *page;
	char model[ATA_ID_PROD_LEN + 1];
	u32 crc = 0, *writer;
	hx_u64 t0;

	lx_verbose = wl_param(cmd, "verbose", 0);
	hsm = wl_param(cmd, "hsm", 0);
	lx_percpu_init();
	buf = hx_alloc(WL_BLOCK, PAGE_SIZE);
	page = lx_page_map(buf, 1);
	if (ops < 4) {
		hx_printf("lxdisk: FAIL: need ops >= 4\n");
		return 2;
	}
	port_init();
	if (identify(id)) {
		hx_printf("lxdisk: FAIL: no ATA disk on the primary channel\n");
		return 2;
	}
	for (int i = 0; i < ATA_ID_PROD_LEN / 2; i++) {
		model[2 * i] = id[ATA_ID_PROD + i] >> 8;
		model[2 * i + 1] = id[ATA_ID_PROD + i] & 0xff;
	}
	model[ATA_ID_PROD_LEN] = 0;
	for (int i = ATA_ID_PROD_LEN - 1; i >= 0 && model[i] == ' '; i--)
		model[i] = 0;
	capacity = ata_id_has_lba48(id) ? ata_id_u64(id, ATA_ID_LBA_CAPACITY_2) : ata_id_u32(id, ATA_ID_LBA_CAPACITY);
	hx_printf("lxdisk: %s, %llu sectors, max multiple %u\n", model, capacity, id[ATA_ID_MAX_MULTSECT] & 0xff);
	if (!ata_id_has_lba(id) || capacity < blocks * SECTORS || blocks * SECTORS > (1 << 28)) {
		hx_printf("lxdisk: FAIL: need LBA28 and %llu sectors\n", blocks * SECTORS);
		return 2;
	}
	multiple = (id[ATA_ID_MAX_MULTSECT] & 0xff) >= SECTORS && set_multiple(SECTORS) == 0;

	/* Reference for check=1: which op last wrote each block. */
	writer = hx_alloc(blocks * sizeof(*writer), 8);
	hx_mark(WL_MARK_DISK_START);
	t0 = hx_nsec();
	for (u64 i = 0; i < ops; i++) {
		u64 block = wl_disk_block(seed, i, ops, blocks);
		bool write = wl_disk_is_write(i, ops);

		wl_disk_quarter_mark(i, ops, hx_mark);

		if (write) {
			wl_write_data(seed, i, buf);
			if (hsm ? transfer_hsm(block * SECTORS, buf, page, true) : transfer(block * SECTORS, buf, true)) {
				errors++;
				continue;
			}
			writer[block] = i + 1;
			writes++;
		} else {
			if (hsm ? transfer_hsm(block * SECTORS, buf, page, false) : transfer(block * SECTORS, buf, false)) {
				errors++;
				continue;
			}
			crc = wl_crc32(crc, buf, WL_BLOCK);
			reads++;
			if (check && writer[block]) {
				wl_write_data(seed, writer[block] - 1, want);
				if (lx_memcmp(buf, want, WL_BLOCK)) {
					hx_printf("lxdisk: read of block %llu (op %llu) differs from op %u's write\n",
						  block, i, writer[block] - 1);
					errors++;
				}
			}
		}
	}
	t0 = hx_nsec() - t0;
	hx_mark(WL_MARK_DISK_END);
	hx_printf("lxdisk: %llu ops in %llu us (guest clock), %llu us/op\n", ops, t0 / 1000, t0 / 1000 / ops);
	hx_printf("PVGEN-RESULT reads=%llu writes=%llu read_crc=0x%08x errors=%lu dev_errors=%lu multiple=%d hsm=%d\n",
		  reads, writes, crc, errors, dev_errors, multiple, hsm);
	hx_printf("lxdisk: %s\n", errors ? "FAIL" : "PASS");
	return errors ? 1 : 0;
}

/* pvring.h - the pv-ideal device's guest ABI: registers, ring layout, request codes (mirror of devices/pvring.py). */
#ifndef PVGEN_PVRING_H
#define PVGEN_PVRING_H

/* Registers: 32-bit port I/O at the base the monitor passes in the command line (pvring=0x...). */
#define PVR_REG_MAGIC    0x00   /* R: PVR_MAGIC */
#define PVR_REG_QSEL     0x04   /* W: queue the QADDR/QSIZE registers refer to */
#define PVR_REG_QADDR_LO 0x08   /* W: guest-physical address of the ring, low 32 bits */
#define PVR_REG_QADDR_HI 0x0c   /* W: high 32 bits */
#define PVR_REG_QSIZE    0x10   /* W: ring entries (power of two, <= PVR_MAX_QSIZE); enables the queue, 0 disables */
#define PVR_REG_NOTIFY   0x14   /* W: doorbell — the device processes every available entry of queue `value` */
#define PVR_REG_ISR      0x18   /* R: bit q = queue q completed entries with PVR_F_INTERRUPT set; read clears */
#define PVR_REG_ERRORS   0x1c   /* R: descriptors and notifications rejected so far */
#define PVR_REG_BLOCKS   0x20   /* R: disk capacity in 4 KiB blocks */
#define PVR_REG_MAC_LO   0x24   /* R: MAC bytes 0-3 */
#define PVR_REG_MAC_HI   0x28   /* R: MAC bytes 4-5 */
#define PVR_PORTS        0x30

#define PVR_MAGIC 0x31525650u   /* "PVR1" */
#define PVR_MAX_QSIZE 1024

#define PVR_Q_NET_TX 0
#define PVR_Q_NET_RX 1
#define PVR_Q_DISK   2
#define PVR_NQUEUES  3

#define PVR_OP_NET_TX     1
#define PVR_OP_NET_RX     2
#define PVR_OP_DISK_READ  3
#define PVR_OP_DISK_WRITE 4

#define PVR_ST_PENDING 0xffff   /* written by the guest; the device replaces it */
#define PVR_ST_OK      0
#define PVR_ST_IOERR   1
#define PVR_ST_UNSUPP  2

#define PVR_F_INTERRUPT 1u      /* ring flags: raise the interrupt line on completion */

/* A ring: this 16-byte header, then qsize descriptors. The guest owns `avail` and `flags`, the device `used`.
 * Indices run freely (mod 2^32); entry k is desc[k & (qsize - 1)]. */
struct pvr_ring {
	volatile unsigned int avail;
	volatile unsigned int used;
	volatile unsigned int flags;
	unsigned int reserved;
};

struct pvr_desc {
	unsigned long long addr;     /* guest-physical buffer */
	unsigned int len;            /* buffer length (TX: frame length; RX: capacity; disk: a multiple of 4096) */
	unsigned short op;           /* PVR_OP_* */
	volatile unsigned short status;
	unsigned long long block;    /* disk: first 4 KiB block */
	volatile unsigned int used_len;   /* bytes the device produced (RX frame length, disk read bytes) */
	unsigned int reserved;
};

#endif

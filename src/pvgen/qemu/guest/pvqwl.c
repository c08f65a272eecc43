/* pvqwl.c - the guest side of `pvgen qemu`: the bench's net and disk workloads as a static Linux program.
 *
 * Runs in the initramfs of Debian's kernel in QEMU, against the real driver modules. The frames, blocks and CRC
 * chains come from workload.h (the generator every bench workload shares, mirror of bench/workload.py). Phase
 * boundaries are marked by writing two bytes to the data register of the parallel port (0x378): MARK_TAG, then the
 * mark id; the host counts QEMU's trace events between marks (pvgen/qemu/trace.py).  With PVQWL_MARK=hx in the
 * environment (the kernel in pvgen's own monitor, `pvgen bench net --guest linux`) a mark is one write of the id
 * to the monitor's hx_mark port (0x501), where the monitor snapshots KVM's statistics, and the net workload sends
 * no READY frame: the monitor's receive pacer starts at the receive mark.
 *
 *   pvqwl mark ID
 *   pvqwl net IFACE SEED OPS       transmit OPS frames, send a READY frame, receive OPS frames
 *   pvqwl disk DEV SEED OPS BLOCKS the four quarters of the disk workload with O_DIRECT 4 KiB requests
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define MARK_PORT 0x378
#define MARK_TAG 0xA5
#define HX_MARK_PORT 0x501 /* vmm/hxdev.py: HX_PORT_BASE + MARK */
#define READY_ETHERTYPE 0x88B6 /* "the receiver is ready": not a workload frame */

static int hx_marks(void)
{
	const char *m = getenv("PVQWL_MARK");
	return m && !strcmp(m, "hx");
}

static void mark(int id)
{
	static int ready;
	int port = hx_marks() ? HX_MARK_PORT : MARK_PORT;
	if (!ready) {
		if (ioperm(port, 1, 1) != 0) {
			perror("pvqwl: ioperm");
			exit(2);
		}
		ready = 1;
	}
	if (port == HX_MARK_PORT) {
		outb((unsigned char)id, port);
		return;
	}
	outb(MARK_TAG, MARK_PORT);
	outb((unsigned char)id, MARK_PORT);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long num(const char *s)
{
	return strtoull(s, NULL, 0);
}

static int packet_socket(const char *iface, int proto)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));
	if (fd < 0) {
		perror("pvqwl: socket(AF_PACKET)");
		exit(2);
	}
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(proto),
				  .sll_ifindex = (int)if_nametoindex(iface)};
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
		perror("pvqwl: bind");
		exit(2);
	}
	return fd;
}

static int net(const char *iface, wl_u64 seed, wl_u64 ops)
{
	static wl_u8 buf[2048];
	unsigned long tx_bytes = 0, rx = 0, rx_bytes = 0, errors = 0;
	wl_u32 crc = 0;
	int rxfd = packet_socket(iface, WL_ETHERTYPE); /* open before READY: no frame can be missed */
	int txfd = packet_socket(iface, WL_ETHERTYPE);
	double t0 = now();
	mark(WL_MARK_TX_START);
	for (wl_u64 i = 0; i < ops; i++) {
		unsigned len = wl_frame(seed, WL_TAG_TX, i, buf);
		if (send(txfd, buf, len, 0) != (long)len)
			errors++;
		tx_bytes += len;
	}
	mark(WL_MARK_TX_END);
	double t1 = now();
	if (!hx_marks()) {
		memset(buf, 0xff, 6);
		memcpy(buf + 6, wl_guest_mac, 6);
		buf[12] = READY_ETHERTYPE >> 8;
		buf[13] = READY_ETHERTYPE & 0xff;
		memset(buf + 14, 0, 46);
		if (send(txfd, buf, 60, 0) != 60)
			errors++;
	}
	usleep(20000); /* the last transmit interrupt is over before the phase starts */
	double t2 = now();
	mark(WL_MARK_RX_START);
	while (rx < ops) {
		long n = recv(rxfd, buf, sizeof(buf), 0);
		if (n < 14 || memcmp(buf + 6, wl_peer_mac, 6) != 0)
			continue;
		crc = wl_frame_crc(crc, buf, (unsigned)n);
		rx++;
		rx_bytes += (unsigned long)n;
	}
	mark(WL_MARK_RX_END);
	double t3 = now();
	printf("PVGEN-RESULT tx=%llu tx_bytes=%lu rx=%lu rx_bytes=%lu rx_crc=0x%08x errors=%lu\n", ops, tx_bytes, rx,
	       rx_bytes, crc, errors);
	printf("PVGEN-WALL tx=%.6f rx=%.6f\n", t1 - t0, t3 - t2);
	return 0;
}

static int disk(const char *dev, wl_u64 seed, wl_u64 ops, wl_u64 blocks)
{
	wl_u8 *buf = aligned_alloc(WL_BLOCK, WL_BLOCK);
	unsigned long long reads = 0, writes = 0;
	unsigned long errors = 0;
	wl_u32 crc = 0;
	int fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0 || !buf) {
		perror("pvqwl: open");
		return 2;
	}
	double t0 = now();
	mark(WL_MARK_DISK_START);
	for (wl_u64 i = 0; i < ops; i++) {
		for (wl_u64 q = 1; q < 4; q++)
			if (i == wl_disk_quarter_start(q, ops))
				mark(WL_MARK_DISK_Q1 + (int)(q - 1));
		off_t off = (off_t)(wl_disk_block(seed, i, ops, blocks) * WL_BLOCK);
		if (wl_disk_is_write(i, ops)) {
			wl_write_data(seed, i, buf);
			errors += pwrite(fd, buf, WL_BLOCK, off) != WL_BLOCK;
			writes++;
		} else {
			errors += pread(fd, buf, WL_BLOCK, off) != WL_BLOCK;
			crc = wl_crc32(crc, buf, WL_BLOCK);
			reads++;
		}
	}
	mark(WL_MARK_DISK_END);
	double t1 = now();
	close(fd);
	printf("PVGEN-RESULT reads=%llu writes=%llu read_crc=0x%08x errors=%lu\n", reads, writes, crc, errors);
	printf("PVGEN-WALL disk=%.6f\n", t1 - t0);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "mark")) {
		mark((int)num(argv[2]));
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "net"))
		return net(argv[2], num(argv[3]), num(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "disk"))
		return disk(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	fprintf(stderr, "usage: pvqwl mark ID | net IFACE SEED OPS | disk DEV SEED OPS BLOCKS\n");
	return 2;
}

/* workload.h - the benchmark workload generator shared by every guest workload (mirror of pvgen/bench/workload.py). */
#ifndef PVGEN_WORKLOAD_H
#define PVGEN_WORKLOAD_H

/* Freestanding, header-only: include it from any guest workload (pv-ideal, the Linux driver workloads).
 * docs/bench.md states the contract: command line keys, hx_mark ids, the PVGEN-RESULT line. */

typedef unsigned long long wl_u64;
typedef unsigned int wl_u32;
typedef unsigned char wl_u8;

#define WL_GOLDEN    0x9E3779B97F4A7C15ULL
#define WL_INDEX_MUL 0xD1B54A32D192ED03ULL
#define WL_TAG_TX    0x5458u
#define WL_TAG_RX    0x5258u
#define WL_TAG_LBA   0x4C42u
#define WL_TAG_DATA  0x4454u

#define WL_MARK_TX_START   10
#define WL_MARK_TX_END     11
#define WL_MARK_RX_START   12
#define WL_MARK_RX_END     13
#define WL_MARK_PROBE_START 14  /* the Linux net workload's PCI probe (module inits); pv-ideal has no probe */
#define WL_MARK_PROBE_END   15
#define WL_MARK_DISK_START 20
#define WL_MARK_DISK_END   21
#define WL_MARK_DISK_Q1    22   /* the first request of quarters 1, 2, 3: the disk's phases (bench/workload.py) */

#define WL_FRAME_MIN 60
#define WL_FRAME_MAX 1514
#define WL_ETHERTYPE 0x88B5
#define WL_BLOCK     4096

static const wl_u8 wl_guest_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
static const wl_u8 wl_peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};

static inline wl_u64 wl_stream_init(wl_u64 seed, wl_u32 tag, wl_u64 index)
{
	return seed ^ ((wl_u64)tag << 32) ^ (index * WL_INDEX_MUL);
}

static inline wl_u64 wl_next(wl_u64 *state)
{
	wl_u64 z = (*state += WL_GOLDEN);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static inline void wl_fill(wl_u64 *state, wl_u8 *dst, unsigned long n)
{
	while (n) {
		wl_u64 w = wl_next(state);
		for (int b = 0; b < 8 && n; b++, n--) {
			*dst++ = (wl_u8)w;
			w >>= 8;
		}
	}
}

/* Frame `index` of the TX (WL_TAG_TX) or RX (WL_TAG_RX) sequence into buf (>= WL_FRAME_MAX bytes); returns its length. */
static inline unsigned wl_frame(wl_u64 seed, wl_u32 tag, wl_u64 index, wl_u8 *buf)
{
	wl_u64 s = wl_stream_init(seed, tag, index);
	unsigned len = WL_FRAME_MIN + (unsigned)(wl_next(&s) % (WL_FRAME_MAX - WL_FRAME_MIN + 1));
	const wl_u8 *src = tag == WL_TAG_TX ? wl_guest_mac : wl_peer_mac;
	for (int i = 0; i < 6; i++) {
		buf[i] = 0xff;
		buf[6 + i] = src[i];
	}
	buf[12] = WL_ETHERTYPE >> 8;
	buf[13] = WL_ETHERTYPE & 0xff;
	wl_fill(&s, buf + 14, len - 14);
	return len;
}

/* Disk op i of `ops`: quarters seq-write, seq-read (reads the written blocks back), rand-write, rand-read. */
static inline int wl_disk_is_write(wl_u64 i, wl_u64 ops)
{
	wl_u64 q = (4 * i) / ops;
	return q == 0 || q == 2;
}

/* The first request of quarter q (0..4): the smallest i with (4 * i) / ops >= q. */
static inline wl_u64 wl_disk_quarter_start(wl_u64 q, wl_u64 ops)
{
	return (q * ops + 3) / 4;
}

/* Marks the start of quarters 1..3 at request i (call before each request): the disk's per-quarter phases. */
static inline void wl_disk_quarter_mark(wl_u64 i, wl_u64 ops, void (*mark)(int))
{
	for (wl_u64 q = 1; q < 4; q++)
		if (i == wl_disk_quarter_start(q, ops))
			mark(WL_MARK_DISK_Q1 + (int)(q - 1));
}

static inline wl_u64 wl_disk_block(wl_u64 seed, wl_u64 i, wl_u64 ops, wl_u64 blocks)
{
	wl_u64 q = (4 * i) / ops;
	if (q < 2)
		return (i - (q * ops + 3) / 4) % blocks;
	wl_u64 s = wl_stream_init(seed, WL_TAG_LBA, i);
	return wl_next(&s) % blocks;
}

static inline void wl_write_data(wl_u64 seed, wl_u64 i, wl_u8 *buf)
{
	wl_u64 s = wl_stream_init(seed, WL_TAG_DATA, i);
	wl_fill(&s, buf, WL_BLOCK);
}

/* CRC-32 as zlib computes it (reflected 0xEDB88320), chainable: crc = wl_crc32(crc, p, n), starting from 0. */
static inline wl_u32 wl_crc32(wl_u32 crc, const void *p, unsigned long n)
{
	static wl_u32 table[256];
	static int ready;
	const wl_u8 *b = p;
	if (!ready) {
		for (wl_u32 i = 0; i < 256; i++) {
			wl_u32 c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* The frame CRC chain: the 32-bit little-endian length, then the bytes (bench/workload.py frames_crc). */
static inline wl_u32 wl_frame_crc(wl_u32 crc, const void *frame, unsigned len)
{
	wl_u8 l[4] = {(wl_u8)len, (wl_u8)(len >> 8), (wl_u8)(len >> 16), (wl_u8)(len >> 24)};
	return wl_crc32(wl_crc32(crc, l, 4), frame, len);
}

/* Value of `key=` in a space-separated command line, or dflt. Decimal or 0x hex. */
static inline wl_u64 wl_param(const char *cmdline, const char *key, wl_u64 dflt)
{
	const char *p = cmdline;
	while (p && *p) {
		while (*p == ' ')
			p++;
		const char *k = key, *q = p;
		while (*k && *q == *k) {
			k++;
			q++;
		}
		if (!*k && *q == '=') {
			q++;
			wl_u64 v = 0;
			int base = 10;
			if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
				base = 16;
				q += 2;
			}
			for (;; q++) {
				int d;
				if (*q >= '0' && *q <= '9')
					d = *q - '0';
				else if (base == 16 && *q >= 'a' && *q <= 'f')
					d = *q - 'a' + 10;
				else if (base == 16 && *q >= 'A' && *q <= 'F')
					d = *q - 'A' + 10;
				else
					break;
				v = v * base + d;
			}
			return v;
		}
		while (*p && *p != ' ')
			p++;
	}
	return dflt;
}

/* 1 if the command line holds the word `wl=<name>`. */
static inline int wl_is(const char *cmdline, const char *name)
{
	const char *p = cmdline;
	while (p && *p) {
		while (*p == ' ')
			p++;
		if (p[0] == 'w' && p[1] == 'l' && p[2] == '=') {
			const char *q = p + 3, *n = name;
			while (*n && *q == *n) {
				q++;
				n++;
			}
			if (!*n && (*q == ' ' || *q == 0))
				return 1;
		}
		while (*p && *p != ' ')
			p++;
	}
	return 0;
}

#endif

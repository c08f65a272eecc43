"""The guest-physical layout the monitor sets up for the harness: boot info, command line, page tables, image."""

from __future__ import annotations

import struct

KERNEL_BASE = 0xFFFFFFFF80000000   # VMA of GPA 0 in the top 2 GiB (harness.h HX_KERNEL_BASE)
BOOTINFO_GPA = 0x1000               # struct hx_bootinfo (guest/src/hx_internal.h)
CMDLINE_GPA = 0x2000                # NUL-terminated, at most CMDLINE_MAX bytes
CMDLINE_MAX = 0x1000
PML4_GPA = 0x3000
PDPT_LOW_GPA = 0x4000               # identity map, 0..4 GiB
PDPT_HIGH_GPA = 0x5000              # top 2 GiB -> GPA 0..2 GiB
PD_GPA = 0x6000                     # four page directories of 2 MiB pages: GPA 0..4 GiB
IMAGE_GPA = 0x100000
BOOTINFO_MAGIC = 0x31584E4547565055
BOOTINFO_VERSION = 2               # 2: delay_ns (the guest checks the version: hx_user_start)
BOOTINFO = struct.Struct("<7Q")     # magic, version, ram_size, tsc_khz, cmdline_gpa, heap_start, delay_ns
BOOTINFO_DELAY_NS_GPA = BOOTINFO_GPA + 6 * 8   # written by the guest at every hx_mark: hx_udelay's total busy-wait

PTE_P, PTE_W, PTE_U, PTE_PS = 0x1, 0x2, 0x4, 0x80


def page_tables() -> list[tuple[int, bytes]]:
    """(gpa, bytes) blocks of the 4-level tables: identity 0..4 GiB and the top 2 GiB, all user-accessible,
    with 2 MiB pages (SDM vol. 3 §4.5)."""
    flags = PTE_P | PTE_W | PTE_U
    pml4 = bytearray(4096)
    struct.pack_into("<Q", pml4, 0, PDPT_LOW_GPA | flags)
    struct.pack_into("<Q", pml4, 511 * 8, PDPT_HIGH_GPA | flags)
    low = bytearray(4096)
    for i in range(4):
        struct.pack_into("<Q", low, i * 8, (PD_GPA + i * 4096) | flags)
    high = bytearray(4096)
    struct.pack_into("<Q", high, 510 * 8, PD_GPA | flags)
    struct.pack_into("<Q", high, 511 * 8, (PD_GPA + 4096) | flags)
    pds = bytearray(4 * 4096)
    for i in range(4 * 512):
        struct.pack_into("<Q", pds, i * 8, (i << 21) | flags | PTE_PS)
    return [(PML4_GPA, bytes(pml4)), (PDPT_LOW_GPA, bytes(low)), (PDPT_HIGH_GPA, bytes(high)), (PD_GPA, bytes(pds))]


def virt_to_phys(va: int) -> int | None:
    """A guest virtual address under the harness page tables, as a GPA (None when unmapped)."""
    if va >= KERNEL_BASE:
        return va - KERNEL_BASE
    if 0 <= va < 1 << 32:
        return va
    return None

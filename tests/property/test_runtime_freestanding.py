"""The freestanding i386 and x86-64 batching runtimes, run in unicorn: real `in`/`out` exits to the pvbatch monitor."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_runtime_batch import BASE, CTRL, LONG, buf_data, complete, immediate, op_st, split
from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_32, UC_MODE_64, Uc
from unicorn import x86_const as X

from pvgen import protocol as P
from pvgen.devices.pvbatch import PvBatch
from pvgen.runtime.build import COMMON, KERNEL64, RUNTIME_DIR, build
from pvgen.runtime.refmodel import Trace, lab_bus, mask

MAX_OPS = 80
RAM = 16 << 20

DRIVER = r"""
#include "pvio_arch.h"

struct op { pvio_u32 kind, port, size, value; pvio_u64 buf; };
enum { OUT = 1, IN, OUTS, INS, TICK, HLT, THRESHOLD, FLUSH };
void pvio_tick(void);
void pvio_flush(void);
unsigned pvio_set_threshold(unsigned n);
int pvio_init(void *mem, unsigned long size);

struct op ops[MAX_OPS];
pvio_u32 results[MAX_OPS];
unsigned long nops;
int init_rc;
#ifndef PVIO_TARGET_LINUX
unsigned long soft_mask;                /* the environment's interrupt mask, checked by the test at every exit */
#endif
static struct pvio_area area __attribute__((aligned(4096)));
unsigned char bufs[MAX_OPS][256] __attribute__((aligned(4096)));

#if defined(PVIO_TARGET_LINUX)
#define CALL(name) "lea -128(%%rsp), %%rsp\n\tcall " name "\n\tlea 128(%%rsp), %%rsp"
/* What the kernel provides: the per-CPU cpu_number (read as %gs:cpu_number, GS base 0 here), page-table
 * translation, and the return thunk. The interrupt mask is the real IF flag. */
int cpu_number;
unsigned long long slow_virt_to_phys(void *p) { return (unsigned long)p - RAM_BASE; }
__asm__(".globl __x86_return_thunk\n__x86_return_thunk:\n\tret\n");
unsigned long soft_mask;
#elif defined(__x86_64__)
#define CALL(name) "lea -128(%%rsp), %%rsp\n\tcall " name "\n\tlea 128(%%rsp), %%rsp"
/* The harness's hooks (harness.h), as arch_hx.c calls them. */
unsigned long hx_irq_save(void) { unsigned long o = soft_mask; soft_mask = 1; return o; }
void hx_irq_restore(unsigned long f) { soft_mask = f; }
unsigned long long hx_virt_to_phys(const void *p) { return (unsigned long)p - RAM_BASE; }
#else
#define CALL(name) "call " name
#define TH(n) "__pvio32_" n   /* 32-bit code calls the 32-bit thunks (docs/runtime.md) */
PVIO_BACKEND unsigned long pvio_arch_irq_save(void) { unsigned long o = soft_mask; soft_mask = 1; return o; }
PVIO_BACKEND void pvio_arch_irq_restore(unsigned long f) { soft_mask = f; }
pvio_u64 pvio_arch_virt_to_phys(const void *p) { return (unsigned long)p - RAM_BASE; }
pvio_u32 pvio_arch_irq_lines(void) { return 0; }
PVIO_BACKEND void pvio_arch_irq_notify(pvio_u32 lines) { (void)lines; }
#endif
#ifndef TH
#define TH(n) "__pvio_" n            /* the 64-bit thunks */
#endif

static void t_out(pvio_u16 port, unsigned size, pvio_u32 v)
{
	if (size == 1) __asm__ __volatile__(CALL(TH("outb_dx")) : : "d"(port), "a"(v) : "memory");
	else if (size == 2) __asm__ __volatile__(CALL(TH("outw_dx")) : : "d"(port), "a"(v) : "memory");
	else __asm__ __volatile__(CALL(TH("outl_dx")) : : "d"(port), "a"(v) : "memory");
}

static pvio_u32 t_in(pvio_u16 port, unsigned size)
{
	pvio_u32 v = 0;
	if (size == 1) __asm__ __volatile__(CALL(TH("inb_dx")) : "+a"(v) : "d"(port) : "memory");
	else if (size == 2) __asm__ __volatile__(CALL(TH("inw_dx")) : "+a"(v) : "d"(port) : "memory");
	else __asm__ __volatile__(CALL(TH("inl_dx")) : "+a"(v) : "d"(port) : "memory");
	return v;
}

static void t_outs(pvio_u16 port, unsigned size, const void *s, unsigned long n)
{
	if (size == 1) __asm__ __volatile__(CALL(TH("rep_outsb")) : "+S"(s), "+c"(n) : "d"(port) : "memory");
	else if (size == 2) __asm__ __volatile__(CALL(TH("rep_outsw")) : "+S"(s), "+c"(n) : "d"(port) : "memory");
	else __asm__ __volatile__(CALL(TH("rep_outsl")) : "+S"(s), "+c"(n) : "d"(port) : "memory");
}

static void t_ins(pvio_u16 port, unsigned size, void *d, unsigned long n)
{
	if (size == 1) __asm__ __volatile__(CALL(TH("rep_insb")) : "+D"(d), "+c"(n) : "d"(port) : "memory");
	else if (size == 2) __asm__ __volatile__(CALL(TH("rep_insw")) : "+D"(d), "+c"(n) : "d"(port) : "memory");
	else __asm__ __volatile__(CALL(TH("rep_insl")) : "+D"(d), "+c"(n) : "d"(port) : "memory");
}

void drive(void)
{
	unsigned long i;

	init_rc = pvio_init(&area, sizeof(area));
	for (i = 0; i < nops; i++) {
		struct op *o = &ops[i];
		switch (o->kind) {
		case OUT: t_out(o->port, o->size, o->value); break;
		case IN: results[i] = t_in(o->port, o->size); break;
		case OUTS: t_outs(o->port, o->size, bufs[i], o->value); break;
		case INS: t_ins(o->port, o->size, bufs[i], o->value); break;
		case TICK: pvio_tick(); break;
		case THRESHOLD: results[i] = pvio_set_threshold(o->value); break;
		case FLUSH: pvio_flush(); break;
		}
	}
	pvio_flush();
}
"""

MODES = {
    "i386": dict(base=0, cflags=["-m32", "-ffreestanding", "-fno-pic"], ld=["-m", "elf_i386"], uc=UC_MODE_32),
    # -mcmodel=kernel code links anywhere its addresses fit a sign-extended 32 bits; unicorn cannot fetch from the
    # top 2 GiB without paging, so the test links it low.
    "x86_64": dict(base=0, cflags=list(KERNEL64), ld=[], uc=UC_MODE_64),
    # The Linux module build (pushfq/cli/popfq, %gs:cpu_number, RETHUNK returns) with stand-ins for the kernel.
    "linux-module": dict(base=0, cflags=[*KERNEL64, "-DPVIO_TARGET_LINUX"], ld=[], uc=UC_MODE_64),
}
KIND = {"out": 1, "in": 2, "fifo": 2, "outs": 3, "ins": 4, "tick": 5, "flush": 8, "threshold": 7}


@pytest.fixture(scope="module", params=list(MODES))
def image(request, tmp_path_factory):
    mode = MODES[request.param]
    d = tmp_path_factory.mktemp(request.param)
    rt = build(request.param, "batch", d / "rt.o")
    src = d / "drive.c"
    src.write_text(DRIVER)
    flags = [*COMMON, *mode["cflags"], f"-DMAX_OPS={MAX_OPS}", f"-DRAM_BASE={mode['base']:#x}UL",
             "-fcf-protection=none"]
    subprocess.run(["gcc", *flags, f"-I{RUNTIME_DIR}", "-c", str(src), "-o", str(d / "drive.o")], check=True)
    elf = d / "drive.elf"
    subprocess.run(["ld", *mode["ld"], "-static", "-nostdlib", f"-Ttext={mode['base'] + 0x100000:#x}", "-e", "drive",
                    "-o", str(elf), str(d / "drive.o"), str(rt)], check=True)
    return request.param, elf


class UcMemory:
    """GuestMemory over the emulator's RAM: GPA = virtual address - base."""

    def __init__(self, uc: Uc, base: int, size: int):
        self.uc, self.base, self.size = uc, base, size

    def read(self, gpa: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(self.base + gpa, n))

    def write(self, gpa: int, data: bytes) -> None:
        self.uc.mem_write(self.base + gpa, bytes(data))


def run(image, ops, monitor: bool = True):
    assert len(ops) <= MAX_OPS
    name, elf = image
    mode = MODES[name]
    base = mode["base"]
    with open(elf, "rb") as f:
        e = ELFFile(f)
        segs = [(s["p_vaddr"], s.data()) for s in e.iter_segments() if s["p_type"] == "PT_LOAD"]
        sym = {s.name: s["st_value"] for s in e.get_section_by_name(".symtab").iter_symbols() if s.name}
    uc = Uc(UC_ARCH_X86, mode["uc"])
    uc.mem_map(base, RAM)       # GPA = address - base
    for vaddr, data in segs:
        uc.mem_write(vaddr, data)
    trace = Trace()
    bus, _ = lab_bus(trace, BASE)
    mem = UcMemory(uc, base, RAM)
    mon = PvBatch(bus, mem)
    if monitor:
        bus.register(P.CTRL_BASE, P.CTRL_LEN, mon)
    seen = {"exits": 0, "unmasked": 0}
    word = 4 if name == "i386" else 8

    def masked() -> bool:
        if name == "linux-module":
            return not uc.reg_read(X.UC_X86_REG_EFLAGS) & 0x200       # IF clear
        return int.from_bytes(uc.mem_read(sym["soft_mask"], word), "little") != 0

    def on_in(uc_, port, size, _):
        v = bus.read(port, size)
        if bus.find(port) is None and port not in CTRL:
            trace.events.append(("r", port, size, v))
        return v

    def on_out(uc_, port, size, value, _):
        value = mask(size, value)
        if port in CTRL:
            seen["exits"] += 1
            if not masked():
                seen["unmasked"] += 1
        elif bus.find(port) is None:
            trace.events.append(("w", port, size, value))
        bus.write(port, size, value)

    uc.hook_add(UC_HOOK_INSN, on_in, None, 1, 0, X.UC_X86_INS_IN)
    uc.hook_add(UC_HOOK_INSN, on_out, None, 1, 0, X.UC_X86_INS_OUT)
    for i, (kind, port, size, v) in enumerate(ops):
        uc.mem_write(sym["ops"] + 24 * i, (KIND[kind]).to_bytes(4, "little") + port.to_bytes(4, "little")
                     + size.to_bytes(4, "little") + (mask(size, v) if kind == "out" else v).to_bytes(4, "little")
                     + bytes(8))
        if kind == "outs":
            uc.mem_write(sym["bufs"] + 256 * i, buf_data(i, size, v))
    uc.mem_write(sym["nops"], len(ops).to_bytes(word, "little"))
    stop = base + 0x1000
    sp = base + RAM - 0x1000
    uc.mem_write(sp, stop.to_bytes(word, "little"))
    uc.reg_write(X.UC_X86_REG_RSP if word == 8 else X.UC_X86_REG_ESP, sp)
    if name == "linux-module":
        uc.reg_write(X.UC_X86_REG_EFLAGS, 0x202)                       # interrupts enabled, as in a module
        uc.reg_write(X.UC_X86_REG_GS_BASE, 0)
    uc.emu_start(sym["drive"], stop, count=50_000_000)
    if name == "linux-module":
        assert uc.reg_read(X.UC_X86_REG_EFLAGS) & 0x200, "interrupts left disabled"
    assert int.from_bytes(uc.mem_read(sym["init_rc"], 4), "little", signed=True) == (0 if monitor else -2)
    results = []
    for i, (kind, port, size, v) in enumerate(ops):
        if kind in ("in", "fifo"):
            results.append(int.from_bytes(uc.mem_read(sym["results"] + 4 * i, 4), "little"))
        elif kind == "ins":
            results.append(bytes(uc.mem_read(sym["bufs"] + 256 * i, v * size)))
    return trace, results, seen, mon


# hlt would stop the emulator; a string must fit its 256-byte buffer (several still overflow the staging buffer)
small_ops = st.lists(op_st.filter(lambda o: o[0] != "hlt" and (o[0] not in ("outs", "ins") or o[2] * o[3] <= 256)),
                     max_size=40)


@settings(max_examples=300 if LONG else 25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(small_ops)
def test_runtime_freestanding_trace_equals_immediate_execution(image, ops):
    ops = complete(ops)
    want_trace, want_results = immediate(ops)
    got_trace, got_results, seen, mon = run(image, ops)
    assert mon.stats.rejected == 0, mon.stats.errors
    assert seen["unmasked"] == 0
    assert got_results == want_results
    assert split(got_trace) == split(want_trace)


def test_runtime_freestanding_batches_posted_writes(image):
    ops = [("threshold", 0, 1, 16)] + [("out", BASE, 1, i) for i in range(70)] + [("in", BASE + 10, 1, 0)]
    assert len(ops) <= MAX_OPS
    trace, results, seen, mon = run(image, ops)
    assert split(trace) == split(immediate(ops)[0])
    # registration, one flush per 16 posted writes, and the strict owned read travels with the last partial batch
    assert seen["exits"] == 1 + 70 // 16 + 1 and seen["unmasked"] == 0
    assert mon.stats.flushes == seen["exits"] - 1


def test_runtime_freestanding_without_monitor_runs_the_instructions(image):
    ops = [("out", BASE, 1, 5), ("out", BASE + 4, 2, 1), ("in", BASE + 5, 1, 0), ("in", BASE + 6, 1, 0),
           ("outs", BASE + 12, 2, 3), ("fifo", BASE + 8, 2, 0)]
    trace, results, seen, mon = run(image, ops, monitor=False)
    want_trace, want_results = immediate(ops)
    assert seen["exits"] == 0 and mon.stats.flushes == 0          # the probe read all ones: never registered
    assert results == want_results and trace.events == want_trace.events

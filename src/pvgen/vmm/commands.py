"""CLI of the monitor: `pvgen run GUEST` and `pvgen bench micro` / `pvgen bench roundtrip`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pvgen.outputs import OutputPath
from pvgen.vmm.stats import ExitReport, print_table, write_json


@click.command("run")
@click.argument("guest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--arg", "arg", default="", help="Parameter string the guest reads with hx_cmdline().")
@click.option("--json", "json_path", type=OutputPath(), help="Write the exit report as JSON.")
@click.option("--ram", "ram_mb", default=128, show_default=True, help="Guest RAM in MiB (even, 2..3072).")
@click.option("--timeout", default=120.0, show_default=True,
              help="Stop the guest after this many seconds (0: no limit).")
@click.option("--coalesce", "coalesce", multiple=True,
              help="Coalesce writes to a port range BASE[:LEN] in KVM's ring (KVM_CAP_COALESCED_PIO).")
@click.option("--pvbatch", is_flag=True, help="Attach the batch handler (pvgen's paravirtual port, 0xf00).")
@click.option("--full", is_flag=True, help="Show every non-zero KVM statistic, not only the main ones.")
def run_cmd(guest: Path, arg: str, json_path: str | None, ram_mb: int, timeout: float, coalesce: tuple[str, ...],
            pvbatch: bool, full: bool) -> None:
    """Boot a guest ELF built against the harness, stream its console, print the exit table."""
    from pvgen.vmm.guestimage import read_image
    from pvgen.vmm.machine import Machine, check_ram_mb, check_timeout

    check_timeout(timeout)
    check_ram_mb(ram_mb)
    read_image(guest, ram_mb << 20)       # a file that would not run is refused before a VM exists

    def console(data: bytes) -> None:
        sys.stdout.write(data.decode("utf-8", "replace"))
        sys.stdout.flush()

    with Machine(ram_mb=ram_mb, console=console) as m:
        for spec in coalesce:
            base, _, length = spec.partition(":")
            try:
                m.add_coalesced_pio(int(base, 0), int(length or "1", 0))
            except ValueError:
                raise click.BadParameter(f"--coalesce {spec!r}: expected BASE[:LEN], e.g. 0x510:1") from None
        pvb = None
        if pvbatch:
            from pvgen.vmm.bench_micro import attach_pvbatch

            pvb = attach_pvbatch(m)
        m.boot(guest, arg)
        res = m.run(timeout=timeout)
    if json_path:       # first: a console that fails below (stdout full or gone) must not lose the results
        payload = {"schema": "pvgen-run/1", "guest": str(guest), "arg": arg, "stop": res.stop, "code": res.code,
                   "message": res.message, **res.report.to_json(),
                   "marks": [{"id": i, "kvm_stats": s["stats"], "kvm_run_exits": s["runs"], "t": s["t"],
                              "guest_delay_ns": s["guest_delay_ns"]}
                             for i, s in res.marks]}
        write_json(json_path, payload)
    if res.console and not res.console.endswith(b"\n"):
        sys.stdout.write("\n")
    click.echo(f"guest stopped: {res.stop}, code {res.code}" + (f": {res.message}" if res.message else ""),
               err=True)
    print_table(res.report, title=f"KVM exits: {guest.name}", full=full)
    if pvb is not None:
        click.echo(f"pvbatch: {pvb.stats}", err=True)
    if m.ports.unowned_reads or m.ports.unowned_writes:
        click.echo(f"unowned ports: {m.ports.unowned_reads} reads, {m.ports.unowned_writes} writes", err=True)
    sys.exit(0 if res.stop == "exit" and res.code == 0 else (res.code if res.stop == "exit" else 1))


@click.group("bench")
def bench() -> None:
    """Benchmarks."""


@bench.command("micro")
@click.option("--outs", default=10000, show_default=True, help="Number of posted outb before the strict read.")
@click.option("--variants", default="original,coalesced,generated", show_default=True,
              help="Comma-separated: original, coalesced, generated.")
@click.option("--roundtrips", default=20000, show_default=True,
              help="Exits for the KVM_RUN round-trip measurement (0 to skip).")
@click.option("--repeat", default=1, show_default=True, help="Runs per variant; the median wall time is reported.")
@click.option("--json", "json_path", type=OutputPath(), help="Write the results as JSON.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Keep the built images here.")
def micro_cmd(outs: int, variants: str, roundtrips: int, repeat: int, json_path: str | None,
              workdir: Path | None) -> None:
    """N `outb` to a posted port, then a strict read: exits and wall time per variant, and their ratios."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from pvgen.cache import workdir as workdir_under_cache
    from pvgen.vmm.bench_micro import VARIANTS, micro

    chosen = [v.strip() for v in variants.split(",") if v.strip()]
    bad = [v for v in chosen if v not in VARIANTS]
    if bad:
        raise click.BadParameter(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")
    with workdir_under_cache("micro-") as tmp:
        result = micro(outs, chosen, Path(workdir or tmp), roundtrips, repeat)
    if json_path:
        write_json(json_path, result)
    t = Table(title=f"pvgen bench micro: {outs} posted outb + 1 strict inb", title_justify="left")
    for col in ("variant", "status", "exits", "io_exits", "KVM_RUN IO", "wall ms", "µs/out", "exits ÷",
                "speed ×", "verified"):
        t.add_column(col, justify="left" if col in ("variant", "status") else "right")
    for name, r in result["variants"].items():
        if r["status"] == "unavailable":
            t.add_row(name, "unavailable", "", "", "", "", "", "", "", escape(r["reason"][:60]))
            continue
        t.add_row(name, r["status"], f"{r['exits']:,}", f"{r['io_exits']:,}", f"{r['kvm_run_io']:,}",
                  f"{r['wall_s'] * 1e3:,.1f}", f"{r['ns_per_out'] / 1e3:.2f}",
                  f"{r['exit_reduction']:.1f}" if "exit_reduction" in r else "",
                  f"{r['speedup']:.2f}" if r.get("speedup") else "", "yes" if r["verified"] else "NO")
    con = Console(width=None if sys.stdout.isatty() else 132)
    con.print(t)
    ran = [r for r in result["variants"].values() if r["status"] != "unavailable"]
    if ran and all(r["io_exits"] == 0 and r["kvm_run_io"] > 0 for r in ran):
        con.print("note: this host's KVM does not maintain the io_exits statistic (no VMX/SVM exit handler); "
                  "`KVM_RUN IO` counts the I/O exits that returned to the monitor.")
    rt = result.get("roundtrip")
    if rt:
        con.print(f"per exit ({rt['n']} exits, CPL3 guest): KVM_RUN ioctl without guest entry "
                  f"{rt['ioctl_us']:.1f} µs; KVM_RUN round trip {rt['kvm_run_us']:.1f} µs; "
                  f"full dispatch (exit loop + port bus + device) {rt['dispatch_us']:.1f} µs, "
                  f"of which the monitor's share {rt['python_us']:.1f} µs (the handler alone, warm: "
                  f"{rt['handler_warm_us']:.1f} µs); the same bare round trip from CPL0: "
                  f"{rt['kvm_run_cpl0_us']:.1f} µs")
    if any(r["status"] == "failed" for r in result["variants"].values()):
        sys.exit(1)


from pvgen.vmm.linuxcmd import linux  # noqa: E402  (pvgen linux boot joins the `linux` group)

COMMANDS = [run_cmd, bench, linux]

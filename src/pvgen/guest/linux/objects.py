"""ELF object handling for the driver environment: symbol sets (pyelftools), section clean-up and relinking."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.constants import SH_FLAGS

from pvgen.errors import EnvironmentMissing, PvgenError

# Symbols the pvgen runtime provides to rewritten drivers (docs/thunk-abi.md).
RUNTIME_PREFIXES = ("__pvio_", "pvio_")

# Sections that only the kernel's own patching, unwinding, tracing or module loader reads. Dropping them leaves the
# code as compiled (alternatives unpatched, static keys at their defaults, which is what the compiler emitted).
DROP = {
    ".modinfo", "__versions", ".gnu.linkonce.this_module", "__mcount_loc", "__patchable_function_entries",
    ".return_sites", ".retpoline_sites", ".call_sites", ".ibt_endbr_seal", ".orc_unwind", ".orc_unwind_ip",
    ".orc_header", ".altinstructions", ".altinstr_replacement", ".parainstructions", ".smp_locks", "__bug_table",
    "__ex_table", ".static_call_sites", "__jump_table", "__ksymtab_strings", ".note.gnu.property", ".note.Linux",
    ".comment",
}
DROP_PREFIXES = ("___ksymtab", "__ksymtab", "__kcrctab", ".BTF")
KEEP_PREFIXES = (".text", ".rodata", ".data", ".bss")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EnvironmentMissing(name, "install binutils (apt-get install binutils)")
    return path


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise PvgenError(f"{Path(cmd[0]).name} failed: " + " | ".join(msg[:6]))


def _symbols(path: Path):
    st = Path(path).stat()
    return _symbols_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _symbols_cached(path: str, mtime_ns: int, size: int):
    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            return ()
        return tuple((s.name, s["st_shndx"], s["st_info"]["bind"]) for s in symtab.iter_symbols() if s.name)


def defined_symbols(objects: Iterable[Path]) -> set[str]:
    """Global and weak symbols the objects define."""
    return {n for o in objects for n, shndx, bind in _symbols(Path(o))
            if shndx != "SHN_UNDEF" and bind in ("STB_GLOBAL", "STB_WEAK")}


def undefined_symbols(objects: Iterable[Path]) -> set[str]:
    """What the objects reference and do not define themselves (nm -u, over all of them)."""
    objects = list(objects)
    undef = {n for o in objects for n, shndx, _ in _symbols(Path(o)) if shndx == "SHN_UNDEF"}
    return undef - defined_symbols(objects)


def unresolved(objects: Iterable[Path], provided: set[str], renames: dict[str, str] | None = None) -> list[str]:
    """The symbols that need a stub: referenced, defined neither by the objects nor by what the final link adds."""
    renames = renames if renames is not None else {"jiffies": "hx_jiffies"}
    out = []
    for name in sorted(undefined_symbols(objects)):
        target = renames.get(name, name)
        if target in provided or target.startswith(RUNTIME_PREFIXES):
            continue
        out.append(name)
    return out


def _section_plan(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(sections to remove, sections to rename) so every allocated section lands in .text/.rodata/.data/.bss."""
    remove, rename = [], []
    with open(path, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            name = sec.name
            if sec["sh_type"] in ("SHT_RELA", "SHT_REL", "SHT_SYMTAB", "SHT_STRTAB", "SHT_GROUP"):
                continue
            if name in DROP or name.startswith(DROP_PREFIXES) or name.startswith(".debug"):
                remove.append(name)
                continue
            if not sec["sh_flags"] & SH_FLAGS.SHF_ALLOC or name.startswith(KEEP_PREFIXES):
                continue
            flags = sec["sh_flags"]
            tag = name.strip(".").replace(".", "_")
            if flags & SH_FLAGS.SHF_EXECINSTR:
                rename.append((name, f".text.lx_{tag}"))
            elif sec["sh_type"] == "SHT_NOBITS":
                rename.append((name, f".bss.lx_{tag}"))
            elif flags & SH_FLAGS.SHF_WRITE:
                rename.append((name, f".data.lx_{tag}"))
            else:
                rename.append((name, f".rodata.lx_{tag}"))
    return remove, rename


def prepare_object(src: Path, dst: Path, redefine: dict[str, str] | None = None) -> Path:
    """objcopy: drop kernel-only metadata and debug info, fold the other sections (.init.text, __param, ...)
    into the standard ones, and rename symbols."""
    remove, rename = _section_plan(src)
    cmd = [_tool("objcopy"), "--strip-debug"]
    for name in remove:
        cmd += ["--remove-section", name]
    for old, new in rename:
        cmd += ["--rename-section", f"{old}={new}"]
    for old, new in (redefine or {}).items():
        cmd += ["--redefine-sym", f"{old}={new}"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    _run([*cmd, str(src), str(dst)])
    return dst


def prepare_driver_object(src: Path, dst: Path, prefix: str) -> Path:
    """A module object with its init_module/cleanup_module renamed <prefix>_init_module/<prefix>_cleanup_module,
    so several modules link into one image."""
    return prepare_object(src, dst, {"init_module": f"{prefix}_init_module",
                                     "cleanup_module": f"{prefix}_cleanup_module"})


def link_relocatable(objects: list[Path], out: Path, renames: dict[str, str] | None = None) -> Path:
    """ld -r the objects into one, then apply symbol renames (jiffies -> hx_jiffies: same 64-bit tick counter)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.o")
    _run([_tool("ld"), "-r", "-o", str(tmp), *map(str, objects)])
    cmd = [_tool("objcopy")]
    for old, new in (renames or {}).items():
        cmd += ["--redefine-sym", f"{old}={new}"]
    _run([*cmd, str(tmp), str(out)])
    tmp.unlink()
    return out

"""The batching runtime inside a real Kbuild module (Debian linux-headers): compiles, links, objtool-clean."""

from __future__ import annotations

import subprocess

from pvgen.runtime.build import export_kbuild

DRIVER = r"""
#include <linux/module.h>
#include <linux/gfp.h>
#include <linux/mm.h>
int pvio_linux_start(unsigned int hz);
void pvio_linux_stop(void);
static int __init pvdemo_init(void)
{
	pr_info("pvio: batching on %d CPUs\n", pvio_linux_start(250));
	return 0;
}
static void __exit pvdemo_exit(void)
{
	pvio_linux_stop();
}
module_init(pvdemo_init);
module_exit(pvdemo_exit);
MODULE_LICENSE("GPL");
"""


def test_runtime_kbuild_module_links(tmp_path, kernel_headers):
    export_kbuild(tmp_path / "pvio", "pvdemo")
    (tmp_path / "pvdemo_main.c").write_text(DRIVER)
    (tmp_path / "Kbuild").write_text("obj-m := pvdemo.o\npvdemo-y := pvdemo_main.o\ninclude $(src)/pvio/Kbuild.pvio\n")
    proc = subprocess.run(["make", "-j2", "-C", str(kernel_headers), f"M={tmp_path}", "modules"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning" not in proc.stderr, proc.stderr          # objtool and gcc: not one warning
    syms = subprocess.run(["nm", str(tmp_path / "pvdemo.ko")], capture_output=True, text=True).stdout
    for name in ("pvio_out", "pvio_in", "pvio_init", "__pvio_outb_dx", "__pvio_rep_insw", "pvio_linux_start"):
        assert f" T {name}\n" in syms, name

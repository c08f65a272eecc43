"""Accessor redirection on the real libata + ata_piix: every call to lib/iomap.c's port-I/O accessors goes to the
module's rewritten copy, one site of kind `accessor` per reference of the unmodified build, none left."""

from __future__ import annotations

from pvgen.rewrite.accessors import KIND, PREFIX, redirect_text


def test_libata_accessors_redirected(corpus_check):
    checks, _, pv = corpus_check("libata")
    for c in checks:
        assert c.ok, (c.module, c.problems())
        assert c.sites[KIND] == c.plain_io[KIND] > 0
        assert not c.accessor_left


def test_redirect_text_renames_references_not_names():
    src = ("\tcall\tioread8\n\tjmp\tiowrite16_rep\n\tmovq\t$ioread32, %rax\n\t.quad\tioread8\n"
           "\t.string\t\"ioread8\"\n\tcall\tioread8x\n\t.globl\tioread8\n")
    new, sites = redirect_text(src, frozenset({"ioread8", "iowrite16_rep", "ioread32"}), "x.s")
    assert [s["accessor"] for s in sites] == ["ioread8", "iowrite16_rep", "ioread32", "ioread8"]
    assert f"call\t{PREFIX}ioread8\n" in new and f"${PREFIX}ioread32" in new
    assert '"ioread8"' in new and "ioread8x" in new and "\t.globl\tioread8\n" in new

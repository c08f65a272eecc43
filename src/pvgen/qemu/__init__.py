"""Generated modules in Debian's own kernel on a VMM we did not write: QEMU, its ne2k_pci and PIIX IDE models."""

/* ioinsn.h - the real port-I/O instructions as .byte sequences, so the runtime never spells an I/O mnemonic. */
#ifndef PVGEN_IOINSN_H
#define PVGEN_IOINSN_H

/* docs/team.md: runtime code is passed through pvgen-as unchanged, which is only safe if no site is written as a
 * mnemonic.  Encodings from the Intel SDM vol. 2 (IN: EC/ED, OUT: EE/EF, INS: 6C/6D, OUTS: 6E/6F, HLT: F4;
 * 66 = operand-size prefix, F3 = REP).  The same bytes mean the same instruction in 32- and 64-bit mode
 * (string forms use %esi/%edi/%ecx in 32-bit mode and %rsi/%rdi/%rcx in 64-bit mode). Port always in %dx. */

#ifndef PVIO_CODE16
#define PVIO_INSN_INB       ".byte 0xec"              /* inb  %dx,%al   */
#define PVIO_INSN_INW       ".byte 0x66,0xed"         /* inw  %dx,%ax   */
#define PVIO_INSN_INL       ".byte 0xed"              /* inl  %dx,%eax  */
#define PVIO_INSN_OUTB      ".byte 0xee"              /* outb %al,%dx   */
#define PVIO_INSN_OUTW      ".byte 0x66,0xef"         /* outw %ax,%dx   */
#define PVIO_INSN_OUTL      ".byte 0xef"              /* outl %eax,%dx  */
#define PVIO_INSN_REP_INSB  ".byte 0xf3,0x6c"         /* rep insb  (%dx),%es:(%rdi) */
#define PVIO_INSN_REP_INSW  ".byte 0x66,0xf3,0x6d"    /* rep insw  (%dx),%es:(%rdi) */
#define PVIO_INSN_REP_INSL  ".byte 0xf3,0x6d"         /* rep insl  (%dx),%es:(%rdi) */
#define PVIO_INSN_REP_OUTSB ".byte 0xf3,0x6e"         /* rep outsb (%rsi),(%dx) */
#define PVIO_INSN_REP_OUTSW ".byte 0x66,0xf3,0x6f"    /* rep outsw (%rsi),(%dx) */
#define PVIO_INSN_REP_OUTSL ".byte 0xf3,0x6f"         /* rep outsl (%rsi),(%dx) */
#else
/* gcc -m16 (.code16gcc) code runs in a 16-bit segment: 0x66 selects 32-bit operands there, and the string forms
 * need 0x67 (addr32) to use the 32-bit %edi/%esi/%ecx that the C code passes.  Build with -m16 -DPVIO_CODE16. */
#define PVIO_INSN_INB       ".byte 0xec"                  /* inb  %dx,%al   */
#define PVIO_INSN_INW       ".byte 0xed"                  /* inw  %dx,%ax   */
#define PVIO_INSN_INL       ".byte 0x66,0xed"             /* inl  %dx,%eax  */
#define PVIO_INSN_OUTB      ".byte 0xee"                  /* outb %al,%dx   */
#define PVIO_INSN_OUTW      ".byte 0xef"                  /* outw %ax,%dx   */
#define PVIO_INSN_OUTL      ".byte 0x66,0xef"             /* outl %eax,%dx  */
#define PVIO_INSN_REP_INSB  ".byte 0x67,0xf3,0x6c"        /* addr32 rep insb  (%dx),%es:(%edi) */
#define PVIO_INSN_REP_INSW  ".byte 0x67,0xf3,0x6d"        /* addr32 rep insw  (%dx),%es:(%edi) */
#define PVIO_INSN_REP_INSL  ".byte 0x66,0x67,0xf3,0x6d"   /* addr32 rep insl  (%dx),%es:(%edi) */
#define PVIO_INSN_REP_OUTSB ".byte 0x67,0xf3,0x6e"        /* addr32 rep outsb (%esi),(%dx) */
#define PVIO_INSN_REP_OUTSW ".byte 0x67,0xf3,0x6f"        /* addr32 rep outsw (%esi),(%dx) */
#define PVIO_INSN_REP_OUTSL ".byte 0x66,0x67,0xf3,0x6f"   /* addr32 rep outsl (%esi),(%dx) */
#endif
#define PVIO_INSN_HLT       ".byte 0xf4"              /* hlt */

#endif

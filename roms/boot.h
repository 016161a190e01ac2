/* Loading the Multiboot v1 kernel from fw_cfg and building its boot
 * information (see README.md, "fw_cfg contract"). */
#ifndef BOOT_H
#define BOOT_H

#include <stdint.h>

#include "memmap.h"

struct boot_handoff {
    uint32_t entry; /* where to jump */
    uint32_t mbi;   /* physical address of the Multiboot info (EBX) */
};

/* Load the kernel, command line and module, build the info block and the
 * memory map.  Any problem is fatal(). */
void boot_load(const struct ram_layout *ram, struct boot_handoff *out);

/* Jump to the kernel: EAX = 0x2BADB002, EBX = info, flat segments, IF=0. */
__attribute__((noreturn)) void boot_jump(const struct boot_handoff *h);

#endif

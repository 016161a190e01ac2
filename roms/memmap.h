/* Guest RAM size and the memory map handed to the kernel. */
#ifndef MEMMAP_H
#define MEMMAP_H

#include <stdint.h>

#include "lib/multiboot.h"

#define PCI_MEM_WINDOW_MIN 0xc0000000u /* the PCI window never starts lower */
#define PCI_MEM_WINDOW_END 0xfec00000u /* IOAPIC/LAPIC/BIOS above */
#define BIOS_ROM_BASE 0xfffe0000u

struct ram_layout {
    uint32_t low_end;   /* RAM is [0, low_end) below 4 GiB (minus the legacy holes) */
    uint64_t high_size; /* RAM at [4 GiB, 4 GiB + high_size) */
    const char *source; /* where the sizes came from */
};

/* Find the RAM size: fw_cfg "etc/e820", else fw_cfg RAM_SIZE, else CMOS. */
void ram_detect(struct ram_layout *ram);

/* Write the Multiboot memory map (size-prefixed entries) to `out`; returns
 * its length in bytes. */
uint32_t mmap_build(const struct ram_layout *ram, struct multiboot_mmap_entry *out,
                    uint32_t max_bytes);

/* Print the map, one "bios: mmap ..." line per entry. */
void mmap_print(const struct multiboot_mmap_entry *map, uint32_t bytes);

#endif

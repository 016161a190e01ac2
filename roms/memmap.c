#include "memmap.h"
#include "bios.h"
#include "fwcfg.h"
#include "lib/io.h"

#define GiB4 0x100000000ull
#define E820_RAM 1

/* QEMU's pc split (hw/i386/pc_piix.c): RAM of 3.5 GiB or more is 3 GiB
 * below 4 GiB plus the rest at 4 GiB; smaller RAM is all below. */
#define SPLIT_THRESHOLD 0xe0000000u
#define LOW_WHEN_SPLIT 0xc0000000u
#define LOW_RAM_MAX 0xe0000000u /* never trust more below 4 GiB than this */

static void from_e820(struct ram_layout *ram, uint16_t key, uint32_t size)
{
    struct {
        uint64_t addr, len;
        uint32_t type;
    } __attribute__((packed)) e;
    for (uint32_t off = 0; off + sizeof(e) <= size; off += sizeof(e)) {
        fwcfg_read_at(key, off, &e, sizeof(e));
        if (e.type != E820_RAM)
            continue;
        uint64_t end = e.addr + e.len;
        if (e.addr <= KERNEL_MIN_ADDR && end > KERNEL_MIN_ADDR)
            ram->low_end = end > LOW_RAM_MAX ? LOW_RAM_MAX : (uint32_t)end;
        else if (e.addr >= GiB4)
            ram->high_size += e.len;
    }
}

static void from_cmos(struct ram_layout *ram)
{
    /* 0x34/0x35: 64 KiB units above 16 MiB; 0x30/0x31: KiB above 1 MiB;
     * 0x5b-0x5d: 64 KiB units above 4 GiB. */
    uint32_t above16 = cmos_read(0x34) | (uint32_t)cmos_read(0x35) << 8;
    if (above16)
        ram->low_end = 0x1000000u + above16 * 0x10000u;
    else
        ram->low_end = 0x100000u + (cmos_read(0x30) | (uint32_t)cmos_read(0x31) << 8) * 1024u;
    uint32_t high = cmos_read(0x5b) | (uint32_t)cmos_read(0x5c) << 8 |
                    (uint32_t)cmos_read(0x5d) << 16;
    ram->high_size = (uint64_t)high * 0x10000u;
    if (ram->low_end > LOW_RAM_MAX)
        ram->low_end = LOW_RAM_MAX;
}

void ram_detect(struct ram_layout *ram)
{
    ram->low_end = 0;
    ram->high_size = 0;
    uint16_t key;
    uint32_t size;
    if (fwcfg_present() && fwcfg_find_file("etc/e820", &key, &size)) {
        from_e820(ram, key, size);
        ram->source = "fw_cfg etc/e820";
    }
    if (!ram->low_end && fwcfg_present()) {
        uint64_t total = fwcfg_read64(FW_CFG_RAM_SIZE);
        if (total) {
            ram->low_end = total >= SPLIT_THRESHOLD ? LOW_WHEN_SPLIT : (uint32_t)total;
            ram->high_size = total - ram->low_end;
            ram->source = "fw_cfg RAM_SIZE";
        }
    }
    if (!ram->low_end) {
        from_cmos(ram);
        ram->source = "CMOS";
    }
    ram->low_end &= ~0xfffu;
    if (ram->low_end < 2 * KERNEL_MIN_ADDR)
        fatal("only 0x%x bytes of RAM below 4 GiB (from %s); at least 2 MiB needed",
              ram->low_end, ram->source);
}

static struct multiboot_mmap_entry *add(struct multiboot_mmap_entry *e, uint64_t addr,
                                        uint64_t len, uint32_t type)
{
    e->size = sizeof(*e) - 4;
    e->addr = addr;
    e->len = len;
    e->type = type;
    return e + 1;
}

uint32_t mmap_build(const struct ram_layout *ram, struct multiboot_mmap_entry *out,
                    uint32_t max_bytes)
{
    (void)max_bytes; /* at most 5 entries, far below MB_MMAP_MAX_BYTES */
    struct multiboot_mmap_entry *e = out;
    /* Conventional memory; the VGA window 0xa0000-0xbffff and the option
     * ROM area 0xc0000-0xdffff are left out, the BIOS alias is reserved. */
    e = add(e, 0, 0xa0000, MMAP_AVAILABLE);
    e = add(e, 0xe0000, 0x20000, MMAP_RESERVED);
    e = add(e, KERNEL_MIN_ADDR, ram->low_end - KERNEL_MIN_ADDR, MMAP_AVAILABLE);
    /* The PCI window is not listed; the ROM at the top of 4 GiB is. */
    e = add(e, BIOS_ROM_BASE, GiB4 - BIOS_ROM_BASE, MMAP_RESERVED);
    if (ram->high_size)
        e = add(e, GiB4, ram->high_size, MMAP_AVAILABLE);
    return (uint32_t)((uintptr_t)e - (uintptr_t)out);
}

void mmap_print(const struct multiboot_mmap_entry *map, uint32_t bytes)
{
    const struct multiboot_mmap_entry *e = map;
    while ((uintptr_t)e + sizeof(*e) <= (uintptr_t)map + bytes) {
        info("mmap 0x%010llx-0x%010llx %s", e->addr, e->addr + e->len - 1,
             e->type == MMAP_AVAILABLE ? "available" : "reserved");
        e = (const struct multiboot_mmap_entry *)((uintptr_t)e + e->size + 4);
    }
}

/* Multiboot v1 information passed by the loader (QEMU's -kernel or the
 * spicevm BIOS), and helpers to read the command line and memory map. */
#ifndef LIB_MULTIBOOT_H
#define LIB_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

/* multiboot_info.flags bits */
#define MBI_FLAG_MEM (1u << 0)
#define MBI_FLAG_BOOTDEV (1u << 1)
#define MBI_FLAG_CMDLINE (1u << 2)
#define MBI_FLAG_MODS (1u << 3)
#define MBI_FLAG_MMAP (1u << 6)
#define MBI_FLAG_LOADER_NAME (1u << 9)

/* Memory map entry types */
#define MMAP_AVAILABLE 1
#define MMAP_RESERVED 2

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower; /* KiB below 1 MiB */
    uint32_t mem_upper; /* KiB from 1 MiB to the first hole */
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length;
    uint32_t mmap_addr;
    uint32_t drives_length;
    uint32_t drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;
    uint32_t apm_table;
    uint32_t vbe_control_info, vbe_mode_info;
    uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
} __attribute__((packed));

/* `size` counts the bytes after itself (20 for this layout). */
struct multiboot_mmap_entry {
    uint32_t size;
    uint64_t addr;
    uint64_t len;
    uint32_t type;
} __attribute__((packed));

struct multiboot_module {
    uint32_t mod_start;
    uint32_t mod_end; /* one past the last byte */
    uint32_t cmdline;
    uint32_t reserved;
} __attribute__((packed));

/* Record the loader's hand-off.  Returns false (and keeps no info) when
 * magic is not 0x2BADB002.  Called by the start-up code. */
bool mb_init(uint32_t magic, uint32_t mbi_addr);

/* The info structure, or NULL when the magic was wrong. */
const struct multiboot_info *mb_info(void);

/* The kernel command line ("" when absent). */
const char *mb_cmdline(void);

/* The boot loader's name ("" when absent). */
const char *mb_loader_name(void);

/* Look up a word "key" or "key=value" on the command line.  Returns true
 * when present; the value (or "" for a bare key) is copied into val
 * (NUL-terminated, truncated to len) when val is not NULL. */
bool mb_cmdline_opt(const char *key, char *val, size_t len);

/* The integer value of "key=N" on the command line (decimal or 0x hex), or
 * `fallback` when absent. */
long mb_cmdline_int(const char *key, long fallback);

/* Iterate over the memory map: pass NULL for the first entry, then the
 * previous one; returns NULL after the last (or if there is no map). */
const struct multiboot_mmap_entry *mb_mmap_next(const struct multiboot_mmap_entry *prev);

/* Number of modules, and module i (NULL when out of range). */
uint32_t mb_module_count(void);
const struct multiboot_module *mb_module(uint32_t i);

/* End of the highest memory the hand-off occupies (info block, command
 * line, loader name, module list, modules) -- the heap starts above it. */
uintptr_t mb_reserved_end(void);

#endif

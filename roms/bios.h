/* Shared definitions of the spicevm BIOS: where it keeps things in RAM,
 * how it reports, and how it dies. */
#ifndef BIOS_H
#define BIOS_H

#include <stdint.h>

#include "lib/console.h"

#define BIOS_NAME "spicevm-bios"

/* RAM below 1 MiB used by the firmware (see README.md, "Memory map").
 * .data/.bss live at 0x1000 (placed by link.ld), the stack grows down
 * from BIOS_STACK_TOP, the Multiboot structures follow. */
#define BIOS_STACK_TOP 0x9000u
#define MB_MMAP_ADDR 0x9000u      /* memory map entries, up to 0x500 bytes */
#define MB_MMAP_MAX_BYTES 0x500u
#define MB_INFO_ADDR 0x9500u      /* the 88-byte info block (QEMU's ADDR_MBI too) */
#define MB_LOADER_NAME_ADDR 0x9600u
#define MB_MODS_ADDR 0x9700u      /* module list */
#define MB_MOD_CMDLINE_ADDR 0x9800u
#define MB_CMDLINE_ADDR 0xa000u   /* kernel command line, up to MB_CMDLINE_MAX */
#define MB_CMDLINE_MAX 0x6000u
#define BIOS_SCRATCH 0x10000u     /* 64 KiB: kernel headers while loading */
#define BIOS_SCRATCH_SIZE 0x10000u

#define KERNEL_MIN_ADDR 0x100000u /* kernels and modules load at or above 1 MiB */

/* One report line on COM1: "bios: <text>\n". */
#define info(...) bios_info(__VA_ARGS__)
__attribute__((format(printf, 1, 2))) void bios_info(const char *fmt, ...);

/* Print "bios: FATAL: <text>" and stop the CPU (cli; hlt forever). */
__attribute__((noreturn, format(printf, 1, 2))) void fatal(const char *fmt, ...);

static inline uint32_t align_up32(uint32_t v, uint32_t a)
{
    return (v + a - 1) & ~(a - 1);
}

#endif

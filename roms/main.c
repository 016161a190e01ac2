/* spicevm BIOS: from the reset vector to a Multiboot kernel.
 *
 * entry.S switches to 32-bit protected mode and calls bios_main(), which
 * brings up COM1, finds the RAM size, sets up PCI, loads the kernel from
 * fw_cfg and jumps to it.  No BIOS interrupt services exist: the kernels
 * this firmware boots never return to real mode. */
#include "bios.h"
#include "boot.h"
#include "fwcfg.h"
#include "lapic.h"
#include "memmap.h"
#include "pciinit.h"
#include "lib/serial.h"

#include <stdarg.h>

void bios_info(const char *fmt, ...)
{
    va_list ap;
    printf("bios: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    printf("bios: FATAL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}

void bios_main(void);

void bios_main(void)
{
    serial_init(COM1_PORT, 115200);
    printf("\n");
    info("%s starting", BIOS_NAME);

    if (fwcfg_init())
        info("fw_cfg present (%s)", fwcfg_uses_dma() ? "DMA" : "port I/O");
    else
        info("no fw_cfg device");

    struct ram_layout ram;
    ram_detect(&ram);
    info("ram 0x%08x bytes below 4 GiB, 0x%llx above (from %s)", ram.low_end, ram.high_size,
         ram.source);

    pci_setup(&ram);
    lapic_virtual_wire();

    struct boot_handoff h;
    boot_load(&ram, &h);
    boot_jump(&h);
}

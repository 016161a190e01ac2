#include "lapic.h"
#include "bios.h"
#include "lib/io.h"

#include <stdint.h>

#define MSR_IA32_APIC_BASE 0x1b
#define APIC_BASE_ENABLE (1u << 11)
#define APIC_SVR 0xf0
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define SVR_ENABLE 0x100
#define LVT_DELIVERY_EXTINT 0x700
#define LVT_DELIVERY_NMI 0x400

void lapic_virtual_wire(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(MSR_IA32_APIC_BASE));
    if (!(lo & APIC_BASE_ENABLE)) {
        info("no local APIC: 8259 output goes straight to the CPU");
        return;
    }
    uintptr_t base = lo & 0xfffff000u;
    mmio_write32(base + APIC_SVR, mmio_read32(base + APIC_SVR) | SVR_ENABLE);
    mmio_write32(base + APIC_LVT_LINT0, LVT_DELIVERY_EXTINT);
    mmio_write32(base + APIC_LVT_LINT1, LVT_DELIVERY_NMI);
    info("local APIC at 0x%08x: virtual wire (LINT0 ExtINT, LINT1 NMI)", (unsigned)base);
}

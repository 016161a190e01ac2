/* The local APIC, when the machine has one (QEMU does, spicevm does not). */
#ifndef LAPIC_H
#define LAPIC_H

/* If IA32_APIC_BASE says a local APIC is enabled, put it in virtual-wire
 * mode (LINT0 = ExtINT, LINT1 = NMI) so 8259 interrupts reach the CPU, as
 * PC firmware does.  Without this QEMU's APIC keeps LINT0 masked and no
 * PIC interrupt is ever taken.  Does nothing when the MSR reads 0. */
void lapic_virtual_wire(void);

#endif

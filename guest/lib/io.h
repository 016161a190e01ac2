/* Port I/O and memory-mapped I/O helpers.
 *
 * Every access is a single instruction of the stated width, so a device
 * model sees exactly the accesses the source asks for (a 32-bit register
 * is never read as four bytes).
 */
#ifndef LIB_IO_H
#define LIB_IO_H

#include <stdint.h>

/* Write one byte / word / dword to an I/O port. */
static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

/* Read one byte / word / dword from an I/O port. */
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    return v;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    return v;
}
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    return v;
}

/* Read a device register at a physical address (identity-mapped). */
static inline uint8_t mmio_read8(uintptr_t addr)
{
    return *(volatile uint8_t *)addr;
}
static inline uint16_t mmio_read16(uintptr_t addr)
{
    return *(volatile uint16_t *)addr;
}
static inline uint32_t mmio_read32(uintptr_t addr)
{
    return *(volatile uint32_t *)addr;
}

/* Write a device register at a physical address (identity-mapped). */
static inline void mmio_write8(uintptr_t addr, uint8_t v)
{
    *(volatile uint8_t *)addr = v;
}
static inline void mmio_write16(uintptr_t addr, uint16_t v)
{
    *(volatile uint16_t *)addr = v;
}
static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;
}

/* Compiler barrier: memory accesses are not moved across it. */
static inline void barrier(void)
{
    __asm__ volatile("" : : : "memory");
}

/* Read a CMOS/RTC register (index port 0x70, data port 0x71). */
static inline uint8_t cmos_read(uint8_t reg)
{
    outb(0x70, reg & 0x7f);
    return inb(0x71);
}

#endif

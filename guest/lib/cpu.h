/* CPU control: interrupt flag, halting, control registers, leaving the VM.
 *
 * Only i486-level instructions are used (no cpuid, rdtsc, SSE), so the same
 * code runs on QEMU and on spicevm's Unicorn CPU without surprises.
 */
#ifndef LIB_CPU_H
#define LIB_CPU_H

#include <stdint.h>

#define EFLAGS_IF (1u << 9)
#define CR0_PE (1u << 0)
#define CR0_WP (1u << 16)
#define CR0_PG (1u << 31)

/* Exit status values passed to qemu_exit() by the toolkit itself. */
#define EXIT_SUCCESS_CODE 0x00 /* all tests passed: QEMU exits with 1 */
#define EXIT_FAILURE_CODE 0x01 /* a test failed: QEMU exits with 3 */
#define EXIT_PANIC_CODE 0x7f   /* panic / unhandled exception: QEMU exits with 255 */

/* Disable maskable interrupts. */
static inline void cli(void)
{
    __asm__ volatile("cli" : : : "memory");
}

/* Enable maskable interrupts (they are taken after the next instruction). */
static inline void sti(void)
{
    __asm__ volatile("sti" : : : "memory");
}

/* Enable interrupts and halt until one arrives; returns after its handler
 * has run, with interrupts left enabled.  `sti; hlt` is atomic: an interrupt
 * pending at the sti is still taken after the hlt, never lost. */
static inline void cpu_idle(void)
{
    __asm__ volatile("sti; hlt" : : : "memory");
}

/* Current EFLAGS. */
static inline uint32_t read_eflags(void)
{
    uint32_t f;
    __asm__ volatile("pushfl; popl %0" : "=r"(f) : : "memory");
    return f;
}

/* Disable interrupts and return the previous EFLAGS for irq_restore(). */
static inline uint32_t irq_save(void)
{
    uint32_t f = read_eflags();
    cli();
    return f;
}

/* Re-enable interrupts if they were enabled when irq_save() was called. */
static inline void irq_restore(uint32_t flags)
{
    if (flags & EFLAGS_IF)
        sti();
}

/* Control registers. */
static inline uint32_t read_cr0(void)
{
    uint32_t v;
    __asm__ volatile("mov %%cr0, %0" : "=r"(v));
    return v;
}
static inline void write_cr0(uint32_t v)
{
    __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}
static inline uint32_t read_cr2(void)
{
    uint32_t v;
    __asm__ volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}
static inline uint32_t read_cr3(void)
{
    uint32_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}
static inline void write_cr3(uint32_t v)
{
    __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

/* Drop the TLB entry for one virtual address. */
static inline void invlpg(uintptr_t va)
{
    __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

/* Stop this CPU for good: interrupts off, then hlt in a loop. */
__attribute__((noreturn)) void halt_forever(void);

/* Leave the VM through the isa-debug-exit port (0xf4): the VM exits with
 * status (code << 1) | 1, so code 0 gives exit status 1.  If no debug-exit
 * device is present the CPU halts forever instead. */
__attribute__((noreturn)) void qemu_exit(int code);

/* Print "PANIC: <message>" on the console and exit with EXIT_PANIC_CODE. */
__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

#endif

/* Interrupt descriptor table and the trap handler table.
 *
 * Every one of the 256 vectors enters through a stub that saves the
 * registers into a struct trap_frame and calls the handler installed for
 * that vector.  A handler may change the frame (eip, eax, ...) and return:
 * the CPU resumes with the modified frame.  Vectors without a handler go to
 * the default handler, which prints the vector, error code, EIP (and CR2
 * for #PF) and all registers, then exits with EXIT_PANIC_CODE.
 *
 * All gates are interrupt gates (IF is cleared on entry) at DPL 0.
 * Vectors 0x20..0x2f carry the remapped 8259 IRQs (see irq.h).
 */
#ifndef LIB_IDT_H
#define LIB_IDT_H

#include <stdint.h>

/* CPU exception vectors. */
enum {
    VEC_DE = 0,   /* divide error */
    VEC_DB = 1,   /* debug */
    VEC_NMI = 2,
    VEC_BP = 3,   /* int3 breakpoint */
    VEC_OF = 4,
    VEC_BR = 5,
    VEC_UD = 6,   /* invalid opcode */
    VEC_NM = 7,
    VEC_DF = 8,   /* double fault (error code) */
    VEC_TS = 10,  /* invalid TSS (error code) */
    VEC_NP = 11,  /* segment not present (error code) */
    VEC_SS = 12,  /* stack fault (error code) */
    VEC_GP = 13,  /* general protection (error code) */
    VEC_PF = 14,  /* page fault (error code, CR2) */
    VEC_MF = 16,
    VEC_AC = 17,  /* alignment check (error code) */
    VEC_MC = 18,
    VEC_XM = 19,
    VEC_IRQ_BASE = 0x20, /* 8259 IRQ 0..15 -> vectors 0x20..0x2f */
};

/* Page-fault error code bits. */
#define PF_ERR_PRESENT (1u << 0) /* 0: page not present, 1: protection */
#define PF_ERR_WRITE (1u << 1)
#define PF_ERR_USER (1u << 2)

/* The registers as saved by the entry stub, lowest address first.  Only
 * ring 0 is used, so the CPU pushes no ESP/SS. */
struct trap_frame {
    uint32_t gs, fs, es, ds;
    uint32_t edi, esi, ebp, esp_unused, ebx, edx, ecx, eax; /* pushal order */
    uint32_t vector;
    uint32_t error_code; /* 0 for vectors without one */
    uint32_t eip, cs, eflags;
};

typedef void (*trap_handler_t)(struct trap_frame *frame);

/* Fill and load the IDT (all vectors to the default handler).  Called once
 * by the toolkit's start-up code before main(). */
void idt_init(void);

/* Install `handler` for `vector` (NULL restores the default); returns the
 * handler that was installed before (NULL for the default). */
trap_handler_t trap_set_handler(unsigned vector, trap_handler_t handler);

/* The default handler: report the trap and exit with EXIT_PANIC_CODE. */
__attribute__((noreturn)) void trap_default(struct trap_frame *frame);

/* Print the frame's registers (as the default handler does). */
void trap_dump(const struct trap_frame *frame);

/* Short mnemonic of an exception vector ("#PF"), or "irq"/"int". */
const char *trap_name(unsigned vector);

/* The stack pointer at the moment of the trap (ring 0: just above the
 * CPU-pushed EFLAGS). */
static inline uint32_t trap_esp(const struct trap_frame *f)
{
    return (uint32_t)(uintptr_t)(&f->eflags + 1);
}

#endif

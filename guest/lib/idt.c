#include "idt.h"
#include "console.h"
#include "cpu.h"

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t zero;
    uint8_t type_attr;
    uint16_t offset_hi;
} __attribute__((packed));

struct idt_ptr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

#define KERNEL_CS 0x08
#define GATE_INTERRUPT_32 0x8e /* present, DPL 0, 32-bit interrupt gate */

static struct idt_gate idt[256] __attribute__((aligned(8)));
static trap_handler_t handlers[256];

/* Entry stub addresses, one per vector, built in isr.S. */
extern const uint32_t isr_stub_table[256];

void idt_init(void)
{
    for (unsigned v = 0; v < 256; v++) {
        uint32_t a = isr_stub_table[v];
        idt[v].offset_lo = a & 0xffff;
        idt[v].selector = KERNEL_CS;
        idt[v].zero = 0;
        idt[v].type_attr = GATE_INTERRUPT_32;
        idt[v].offset_hi = a >> 16;
        handlers[v] = 0;
    }
    struct idt_ptr p = {sizeof(idt) - 1, (uint32_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" : : "m"(p) : "memory");
}

trap_handler_t trap_set_handler(unsigned vector, trap_handler_t handler)
{
    trap_handler_t old = handlers[vector & 0xff];
    handlers[vector & 0xff] = handler;
    return old;
}

/* Called from isr.S with the frame on the stack. */
void trap_dispatch(struct trap_frame *frame)
{
    trap_handler_t h = handlers[frame->vector & 0xff];
    if (h)
        h(frame);
    else
        trap_default(frame);
}

static const char *const exception_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MP",
    "#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM",
    "#VE", "#CP", "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC",
    "#SX", "#31",
};

const char *trap_name(unsigned vector)
{
    if (vector < 32)
        return exception_names[vector];
    if (vector >= VEC_IRQ_BASE && vector < VEC_IRQ_BASE + 16)
        return "irq";
    return "int";
}

void trap_dump(const struct trap_frame *f)
{
    printf("  eax=%08x ebx=%08x ecx=%08x edx=%08x\n", f->eax, f->ebx, f->ecx, f->edx);
    printf("  esi=%08x edi=%08x ebp=%08x esp=%08x\n", f->esi, f->edi, f->ebp, trap_esp(f));
    printf("  cs=%04x ds=%04x es=%04x fs=%04x gs=%04x eflags=%08x cr0=%08x cr3=%08x\n",
           f->cs & 0xffff, f->ds & 0xffff, f->es & 0xffff, f->fs & 0xffff, f->gs & 0xffff,
           f->eflags, read_cr0(), read_cr3());
}

void trap_default(struct trap_frame *f)
{
    if (f->vector == VEC_PF)
        printf("\n*** unhandled exception %u (%s) error_code=0x%x eip=0x%08x cr2=0x%08x\n",
               f->vector, trap_name(f->vector), f->error_code, f->eip, read_cr2());
    else
        printf("\n*** unhandled %s %u (vector 0x%02x) error_code=0x%x eip=0x%08x\n",
               f->vector < 32 ? "exception" : "interrupt", f->vector, f->vector,
               f->error_code, f->eip);
    trap_dump(f);
    qemu_exit(EXIT_PANIC_CODE);
}

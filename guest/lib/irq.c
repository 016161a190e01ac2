#include "irq.h"
#include "console.h"
#include "idt.h"
#include "pic.h"

struct slot {
    irq_handler_t fn;
    void *ctx;
};

static struct slot table[16][IRQ_MAX_SHARED];
static volatile uint32_t counts[16];
static volatile uint32_t spurious, unhandled;

static void irq_entry(struct trap_frame *f)
{
    unsigned irq = f->vector - VEC_IRQ_BASE;
    if (pic_check_spurious(irq)) {
        spurious++;
        return;
    }
    counts[irq]++;
    int handled = 0;
    for (int i = 0; i < IRQ_MAX_SHARED; i++) {
        if (table[irq][i].fn) {
            table[irq][i].fn(irq, table[irq][i].ctx);
            handled = 1;
        }
    }
    if (!handled && unhandled++ < 4)
        printf("irq: IRQ %u with no handler\n", irq);
    pic_eoi(irq);
}

void irq_init(void)
{
    for (unsigned i = 0; i < 16; i++)
        trap_set_handler(VEC_IRQ_BASE + i, irq_entry);
}

int irq_register(unsigned irq, irq_handler_t handler, void *ctx)
{
    if (irq >= 16 || !handler)
        return -1;
    for (int i = 0; i < IRQ_MAX_SHARED; i++) {
        if (!table[irq][i].fn) {
            table[irq][i].ctx = ctx;
            table[irq][i].fn = handler;
            pic_unmask(irq);
            return 0;
        }
    }
    return -1;
}

int irq_unregister(unsigned irq, irq_handler_t handler, void *ctx)
{
    if (irq >= 16)
        return -1;
    int found = -1, left = 0;
    for (int i = 0; i < IRQ_MAX_SHARED; i++) {
        if (found < 0 && table[irq][i].fn == handler && table[irq][i].ctx == ctx) {
            table[irq][i].fn = 0;
            table[irq][i].ctx = 0;
            found = 0;
        } else if (table[irq][i].fn) {
            left++;
        }
    }
    if (found == 0 && !left)
        pic_mask(irq);
    return found;
}

uint32_t irq_count(unsigned irq)
{
    return irq < 16 ? counts[irq] : 0;
}

uint32_t irq_spurious_count(void)
{
    return spurious;
}

uint32_t irq_unhandled_count(void)
{
    return unhandled;
}

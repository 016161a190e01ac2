#include "pic.h"
#include "io.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define ELCR1 0x4d0
#define ELCR2 0x4d1

#define ICW1_INIT_ICW4 0x11 /* edge (per ELCR on PIIX), cascade, ICW4 follows */
#define ICW4_8086 0x01
#define OCW2_EOI 0x20
#define OCW3_READ_IRR 0x0a
#define OCW3_READ_ISR 0x0b

static uint16_t mask_shadow = 0xffff;

static void write_mask(void)
{
    outb(PIC1_DATA, mask_shadow & 0xff);
    outb(PIC2_DATA, mask_shadow >> 8);
}

void pic_init(void)
{
    outb(PIC1_CMD, ICW1_INIT_ICW4);
    outb(PIC2_CMD, ICW1_INIT_ICW4);
    outb(PIC1_DATA, 0x20); /* ICW2: vector base */
    outb(PIC2_DATA, 0x28);
    outb(PIC1_DATA, 1 << 2); /* ICW3: slave on IRQ 2 */
    outb(PIC2_DATA, 2);      /* ICW3: slave identity */
    outb(PIC1_DATA, ICW4_8086);
    outb(PIC2_DATA, ICW4_8086);
    mask_shadow = 0xffff & ~(1u << 2);
    write_mask();
}

void pic_mask(unsigned irq)
{
    mask_shadow |= (uint16_t)(1u << (irq & 15));
    write_mask();
}

void pic_unmask(unsigned irq)
{
    mask_shadow &= (uint16_t)~(1u << (irq & 15));
    if (irq >= 8)
        mask_shadow &= (uint16_t)~(1u << 2);
    write_mask();
}

uint16_t pic_get_mask(void)
{
    return mask_shadow;
}

void pic_eoi(unsigned irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, OCW2_EOI);
    outb(PIC1_CMD, OCW2_EOI);
}

static uint16_t read_reg(uint8_t ocw3)
{
    outb(PIC1_CMD, ocw3);
    outb(PIC2_CMD, ocw3);
    return (uint16_t)(inb(PIC1_CMD) | (inb(PIC2_CMD) << 8));
}

uint16_t pic_read_isr(void)
{
    return read_reg(OCW3_READ_ISR);
}

uint16_t pic_read_irr(void)
{
    return read_reg(OCW3_READ_IRR);
}

bool pic_check_spurious(unsigned irq)
{
    if (irq != 7 && irq != 15)
        return false;
    if (pic_read_isr() & (1u << irq))
        return false;
    if (irq == 15)
        outb(PIC1_CMD, OCW2_EOI); /* the master did see a real cascade request */
    return true;
}

uint16_t pic_read_elcr(void)
{
    return (uint16_t)(inb(ELCR1) | (inb(ELCR2) << 8));
}

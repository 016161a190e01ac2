/* Dual 8259A interrupt controller.  IRQ 0-7 (master) are remapped to
 * vectors 0x20-0x27, IRQ 8-15 (slave, cascaded on IRQ 2) to 0x28-0x2f.
 * Normally used through irq.h; these are the raw operations. */
#ifndef LIB_PIC_H
#define LIB_PIC_H

#include <stdbool.h>
#include <stdint.h>

/* Reinitialise both PICs (edge/level mode per ELCR is left as the firmware
 * set it), remap them and mask every IRQ except the cascade (IRQ 2). */
void pic_init(void);
/* Mask (disable) one IRQ line. */
void pic_mask(unsigned irq);
/* Unmask one IRQ line (unmasking 8-15 leaves the cascade open). */
void pic_unmask(unsigned irq);
/* Signal end of interrupt for `irq` (to the slave and the master for 8-15). */
void pic_eoi(unsigned irq);
/* In-service register: bit n set while IRQ n is being serviced. */
uint16_t pic_read_isr(void);
/* Interrupt request register: bit n set while IRQ n is requested. */
uint16_t pic_read_irr(void);
/* Current mask (bit n = IRQ n masked). */
uint16_t pic_get_mask(void);
/* True when an interrupt on IRQ 7 or 15 was spurious (its ISR bit is clear).
 * For a spurious IRQ 15 the master still needs an EOI for the cascade; this
 * function sends it.  Always false for other IRQs. */
bool pic_check_spurious(unsigned irq);
/* ELCR (ports 0x4d0/0x4d1): bit n set = IRQ n is level-triggered. */
uint16_t pic_read_elcr(void);

#endif

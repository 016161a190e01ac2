/* IRQ registration on top of the 8259 pair.
 *
 * Several handlers may share one line (PCI INTx lines are shared); each
 * registered handler is called in registration order, then the IRQ is
 * acknowledged (EOI).  Handlers run with interrupts disabled and must be
 * short.  Spurious IRQ 7/15 are counted and never reach handlers.
 */
#ifndef LIB_IRQ_H
#define LIB_IRQ_H

#include <stdint.h>

#define IRQ_MAX_SHARED 4

typedef void (*irq_handler_t)(unsigned irq, void *ctx);

/* Route vectors 0x20..0x2f to the IRQ layer.  Called by the start-up code. */
void irq_init(void);
/* Add handler(irq, ctx) for `irq` (0-15) and unmask the line.  Returns 0,
 * or -1 when irq is out of range or IRQ_MAX_SHARED handlers are there. */
int irq_register(unsigned irq, irq_handler_t handler, void *ctx);
/* Remove a handler added with the same (irq, handler, ctx); the line is
 * masked when no handler remains.  Returns 0, or -1 if it was not found. */
int irq_unregister(unsigned irq, irq_handler_t handler, void *ctx);
/* Interrupts taken on `irq` since boot (spurious ones not included). */
uint32_t irq_count(unsigned irq);
/* Spurious interrupts seen on IRQ 7 and 15 together. */
uint32_t irq_spurious_count(void);
/* Interrupts that arrived on a line with no handler (acknowledged, dropped). */
uint32_t irq_unhandled_count(void);

#endif

/* 16550A UART driver (polled).  COM1 at 0x3f8 is the console of every
 * guest and of the firmware. */
#ifndef LIB_SERIAL_H
#define LIB_SERIAL_H

#include <stdbool.h>
#include <stdint.h>

#define COM1_PORT 0x3f8

/* Program the UART at `port` for `baud` 8N1 with FIFOs on and its
 * interrupts off. */
void serial_init(uint16_t port, uint32_t baud);
/* Send one byte on COM1, waiting while the transmitter is full.  No newline
 * translation: "\n" is sent as a single 0x0a. */
void serial_putc(char c);
/* Send n bytes on COM1. */
void serial_write(const char *s, unsigned n);
/* True if COM1 has a received byte waiting. */
bool serial_can_read(void);
/* Next received byte from COM1, or -1 if none is waiting (never blocks). */
int serial_getc(void);

#endif

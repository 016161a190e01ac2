#include "serial.h"
#include "io.h"

/* Register offsets from the UART base. */
enum {
    UART_DATA = 0, /* RBR/THR, DLL when DLAB=1 */
    UART_IER = 1,  /* DLM when DLAB=1 */
    UART_FCR = 2,
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
};
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20
#define LCR_DLAB 0x80
#define LCR_8N1 0x03

static uint16_t console_port = COM1_PORT;

void serial_init(uint16_t port, uint32_t baud)
{
    uint32_t div = baud ? 115200 / baud : 1;
    if (div == 0)
        div = 1;
    console_port = port;
    outb(port + UART_IER, 0x00);
    outb(port + UART_LCR, LCR_DLAB);
    outb(port + UART_DATA, div & 0xff);
    outb(port + UART_IER, (div >> 8) & 0xff);
    outb(port + UART_LCR, LCR_8N1);
    outb(port + UART_FCR, 0xc7); /* enable + clear FIFOs, 14-byte trigger */
    outb(port + UART_MCR, 0x0b); /* DTR, RTS, OUT2 (gates the IRQ line) */
}

void serial_putc(char c)
{
    /* Bounded wait: a missing UART reads 0xff, which also ends the loop. */
    for (unsigned spins = 0; spins < 100000; spins++)
        if (inb(console_port + UART_LSR) & LSR_THR_EMPTY)
            break;
    outb(console_port + UART_DATA, (uint8_t)c);
}

void serial_write(const char *s, unsigned n)
{
    while (n--)
        serial_putc(*s++);
}

bool serial_can_read(void)
{
    uint8_t lsr = inb(console_port + UART_LSR);
    return lsr != 0xff && (lsr & LSR_DATA_READY);
}

int serial_getc(void)
{
    return serial_can_read() ? inb(console_port + UART_DATA) : -1;
}

#include "cpu.h"
#include "console.h"
#include "io.h"

#include <stdarg.h>

#define DEBUG_EXIT_PORT 0xf4

void halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt" : : : "memory");
}

void qemu_exit(int code)
{
    outb(DEBUG_EXIT_PORT, (uint8_t)code);
    /* Still running: the machine has no debug-exit device. */
    printf("exit(%d): no debug-exit device at port 0x%x, halting\n", code, DEBUG_EXIT_PORT);
    halt_forever();
}

void panic(const char *fmt, ...)
{
    va_list ap;
    cli();
    printf("\nPANIC: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    qemu_exit(EXIT_PANIC_CODE);
}

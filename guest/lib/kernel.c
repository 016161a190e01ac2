#include "kernel.h"
#include "alloc.h"
#include "console.h"
#include "cpu.h"
#include "idt.h"
#include "irq.h"
#include "multiboot.h"
#include "pic.h"
#include "serial.h"

void kernel_entry(uint32_t magic, uint32_t mbi_addr)
{
    serial_init(COM1_PORT, 115200);
    if (!mb_init(magic, mbi_addr))
        printf("kernel: bad Multiboot magic 0x%08x, running without boot info\n", magic);
    idt_init();
    pic_init();
    irq_init();
    heap_init_from_multiboot();
    /* main runs with interrupts on, as a kernel does once its IDT is in
     * place: every line is still masked at the PIC until a handler
     * registers.  With IF left at the loader's 0, a driver only took its
     * interrupts while it happened to sit in sti;hlt. */
    sti();
    qemu_exit(main());
}

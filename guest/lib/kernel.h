/* The toolkit's start-up contract.
 *
 * start.S receives the Multiboot hand-off, loads the toolkit's flat GDT
 * (code 0x08, data 0x10), sets up a 32 KiB stack and calls
 * kernel_entry(), which initialises, in order: COM1 (115200 8N1), the
 * Multiboot info, the IDT (all vectors to the default handler), the 8259
 * pair (remapped, all IRQs masked), the IRQ layer and the heap.  Then it
 * calls the guest's main() with interrupts disabled and exits through the
 * debug port with main's return value.
 */
#ifndef LIB_KERNEL_H
#define LIB_KERNEL_H

#include <stdint.h>

/* Provided by each guest: runs after the toolkit is initialised; its return
 * value goes to qemu_exit(). */
int main(void);

/* Called from start.S with the loader's EAX and EBX. */
__attribute__((noreturn)) void kernel_entry(uint32_t magic, uint32_t mbi_addr);

/* The kernel image as linked: [_kernel_start, _end). */
extern char _kernel_start[], _end[];

#endif

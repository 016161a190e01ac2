/* Multiboot v1 header and the kernel entry point.
 *
 * The header sits in its own section, which the linker script puts first,
 * so it lands in the first 8 KiB of the ELF file as QEMU and the spicevm
 * BIOS require.  No a.out-kludge fields: loaders use the ELF program
 * headers. */

#define MB_MAGIC 0x1BADB002
#define MB_FLAG_PAGE_ALIGN (1 << 0) /* modules on 4 KiB boundaries */
#define MB_FLAG_MEMINFO (1 << 1)    /* mem_* fields and the memory map */
#define MB_FLAGS (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO)

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define STACK_SIZE 0x8000

    .section .multiboot, "a"
    .p2align 2
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.entry, "ax"
    .globl _start
_start:
    /* EAX = 0x2BADB002, EBX = multiboot info.  The loader's GDT may be
     * anywhere (even gone), so load our own before touching a segment. */
    cli
    lgdt gdt_descriptor
    ljmp $KERNEL_CS, $1f
1:  movw $KERNEL_DS, %cx
    movw %cx, %ds
    movw %cx, %es
    movw %cx, %fs
    movw %cx, %gs
    movw %cx, %ss
    movl $stack_top, %esp
    xorl %ebp, %ebp
    pushl $0
    popfl                       /* IF=0, DF=0, AC=0 */
    pushl %ebx
    pushl %eax
    call kernel_entry
2:  cli
    hlt
    jmp 2b

    .section .rodata
    .p2align 3
    .globl kernel_gdt
kernel_gdt:
    .quad 0                     /* null */
    .quad 0x00cf9b000000ffff    /* 0x08: code, base 0, 4 GiB, 32-bit, accessed */
    .quad 0x00cf93000000ffff    /* 0x10: data, base 0, 4 GiB, accessed */
gdt_end:
gdt_descriptor:
    .word gdt_end - kernel_gdt - 1
    .long kernel_gdt

    .section .bss.stack, "aw", @nobits
    .p2align 4
    .globl stack_bottom
stack_bottom:
    .skip STACK_SIZE
    .globl stack_top
stack_top:

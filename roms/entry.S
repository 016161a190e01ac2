/* Reset vector and the switch to 32-bit protected mode.
 *
 * The CPU starts in real mode at 0xfffffff0 (CS base 0xffff0000, IP
 * 0xfff0).  Everything executed in real mode lies in the last 64 KiB of
 * the ROM and is addressed relative to CS, so it works whether CS has its
 * reset base 0xffff0000 or 0xf0000 (the alias below 1 MiB). */

#define CODE32 0x08
#define DATA32 0x10
#define STACK_TOP 0x9000
#define TEXT16_OFFSET 0xf000        /* .text16 sits at 0xfffff000 (link.ld) */

    .section .text16, "ax"
    .code16
text16_start:
reset16:
    cli
    cld
    lgdtl %cs:(gdt_descriptor - text16_start + TEXT16_OFFSET)
    movl %cr0, %eax
    orl $1, %eax                    /* PE */
    movl %eax, %cr0
    ljmpl $CODE32, $entry32

    .p2align 3
gdt:
    .quad 0                         /* null */
    /* The accessed bits are preset: the CPU would otherwise set them when a
     * segment register is loaded, a write into the ROM. */
    .quad 0x00cf9b000000ffff        /* 0x08: code, base 0, 4 GiB, 32-bit */
    .quad 0x00cf93000000ffff        /* 0x10: data, base 0, 4 GiB */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt                       /* linear address in the top-of-4-GiB ROM */

    .section .text.entry32, "ax"
    .code32
entry32:
    movw $DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $STACK_TOP, %esp
    /* .data is kept in ROM and copied to RAM; .bss is cleared. */
    movl $_data_load, %esi
    movl $_data_start, %edi
    movl $_data_end, %ecx
    subl %edi, %ecx
    rep movsb
    movl $_bss_start, %edi
    movl $_bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    call bios_main
1:  cli
    hlt
    jmp 1b

    .section .resetvec, "ax"
    .code16
    .globl reset_vector
reset_vector:
    jmp reset16                     /* near: keeps whatever CS base we have */
    .balign 16, 0xf4

/* Entry stubs for all 256 vectors.  Each pushes a dummy error code where
 * the CPU pushes none, then the vector number, and joins isr_common, which
 * saves the registers as a struct trap_frame (idt.h) and calls
 * trap_dispatch(frame). */

#define KERNEL_DS 0x10

    .text
    .p2align 4
isr_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movw $KERNEL_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    cld
    pushl %esp                  /* struct trap_frame * */
    call trap_dispatch
    addl $4, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp               /* vector and error code */
    iret


    /* Vectors 8, 10-14, 17, 21, 29 and 30 come with a CPU-pushed error code. */
    .macro stub v
    .p2align 3
isr_stub_\v:
    .if ((\v == 8) || ((\v >= 10) && (\v <= 14)) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30))
    .else
    pushl $0
    .endif
    pushl $\v
    jmp isr_common
    .endm

    .altmacro
    .set vec, 0
    .rept 256
    stub %vec
    .set vec, vec + 1
    .endr

    .section .rodata
    .p2align 2
    .globl isr_stub_table
isr_stub_table:
    .macro stubref v
    .long isr_stub_\v
    .endm
    .set vec, 0
    .rept 256
    stubref %vec
    .set vec, vec + 1
    .endr

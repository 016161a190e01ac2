"""CPU: reset state, real-mode IVT and protected-mode IDT delivery, error
codes, CR2, ring changes, triple faults and unrecoverable CPU errors.

Each test boots a tiny guest (tests/vm_asm.py) from the reset vector and
observes it through its result port: what a guest's handlers see on their
stack is what the tests assert on."""

from __future__ import annotations

from vm_asm import TestMachine

from vm.cpu import StopReason

EXIT = "mov $0, %al\n    out %al, $0xE1\n"


def run(body: str, mode: str = "pm32", **kw: object) -> tuple[list[int], TestMachine]:
    m = TestMachine(body, mode=mode, **kw)  # type: ignore[arg-type]
    stop = m.run()
    assert stop.reason is StopReason.EXIT, (stop, m.values)
    return m.values, m


# ---------------------------------------------------------------- reset


def test_reset_vector_runs_from_top_of_rom_with_real_mode_state() -> None:
    values, m = run("""
    mov %cs, %ax
    out %eax, $0xE0
    mov %cr0, %eax
    out %eax, $0xE0
    mov %dx, %ax          # EDX still holds the reset value: the CPU signature
    out %eax, $0xE0
    """ + EXIT, mode="real")
    assert m.boots == 1
    assert values[0] & 0xFFFF == 0  # the ROM's far jump took us to 0000:7C00
    assert values[1] & 0xFFFF == 0x0010  # CR0: ET only, real mode
    assert values[2] & 0xFFFF == 0x0663


def test_cpuid_signature_is_the_reset_edx() -> None:
    # A real CPU leaves its CPUID family/model/stepping in EDX at reset.
    values, _ = run("""
    mov %edx, %ebp
    mov $1, %eax
    cpuid
    out %eax, $0xE0
    mov %ebp, %eax
    out %eax, $0xE0
    """ + EXIT)
    assert values[0] == values[1]


def test_protected_mode_switch_and_code_above_1mb() -> None:
    values, _ = run("""
    mov %cs, %eax
    out %eax, $0xE0
    call 1f
1:  pop %eax
    out %eax, $0xE0
    mov %cr0, %eax
    out %eax, $0xE0
    """ + EXIT)
    assert values[0] & 0xFFFF == 0x08
    assert values[1] > 0x100000
    assert values[2] & 1


# ------------------------------------------------------------ real mode


def test_real_mode_int_goes_through_the_ivt() -> None:
    values, _ = run("""
    mov $after, %ax
    out %ax, $0xE0
    movw $handler, (0x40 * 4)
    movw $0, (0x40 * 4 + 2)
    sti
    mov $0x55, %bx
    int $0x40
after:
    mov %bx, %ax
    out %ax, $0xE0
    pushf
    pop %ax
    out %ax, $0xE0
    """ + EXIT + """
handler:
    mov $0xAA, %bx
    pushf
    pop %ax
    out %ax, $0xE0          # flags inside the handler
    mov %sp, %bp
    mov (%bp), %ax
    out %ax, $0xE0          # pushed IP
    mov 2(%bp), %ax
    out %ax, $0xE0          # pushed CS
    mov 4(%bp), %ax
    out %ax, $0xE0          # pushed FLAGS
    iret
    """, mode="real")
    after, in_flags, ip, cs, pushed_flags, bx, after_flags = (v & 0xFFFF for v in values)
    assert not in_flags & 0x200  # IF cleared on entry
    assert ip == after  # the instruction after `int $0x40`
    assert cs == 0
    assert pushed_flags & 0x200
    assert bx == 0xAA
    assert after_flags & 0x200  # iret restored IF


def test_real_mode_fault_pushes_the_faulting_ip() -> None:
    values, _ = run("""
    mov $fault, %ax
    out %ax, $0xE0
    movw $de_handler, (0)
    movw $0, (2)
    xor %cx, %cx
    mov $5, %ax
fault:
    div %cl
    mov $0x77, %ax
    out %ax, $0xE0
    """ + EXIT + """
de_handler:
    mov %sp, %bp
    mov (%bp), %ax
    out %ax, $0xE0
    addw $2, (%bp)          # skip the 2-byte div
    iret
    """, mode="real")
    assert values[1] & 0xFFFF == values[0] & 0xFFFF  # address of `div %cl`
    assert values[2] & 0xFFFF == 0x77


# ----------------------------------------------------------- protected mode


def test_interrupt_gate_clears_if_and_trap_gate_keeps_it() -> None:
    values, _ = run("""
    mov $0x40, %eax
    mov $handler, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov $0x41, %eax
    mov $handler, %ebx
    mov $0x8F, %ecx
    call set_gate
    sti
    int $0x40
    int $0x41
    """ + EXIT + """
handler:
    pushf
    pop %eax
    out %eax, $0xE0          # EFLAGS in the handler
    mov (%esp), %eax
    out %eax, $0xE0          # return EIP
    mov 4(%esp), %eax
    out %eax, $0xE0          # CS
    mov 8(%esp), %eax
    out %eax, $0xE0          # pushed EFLAGS
    iret
    """)
    int_flags, eip1, cs1, pushed1, trap_flags, eip2, cs2, _ = values
    assert not int_flags & 0x200
    assert trap_flags & 0x200
    assert pushed1 & 0x200
    assert cs1 == cs2 == 0x08
    assert eip2 == eip1 + 2  # both point after their 2-byte `int`


def test_gp_pushes_error_code_and_software_int_does_not() -> None:
    values, _ = run("""
    mov $13, %eax
    mov $gp_handler, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov %esp, %esi
    mov $0x1238, %ax
fault:
    mov %ax, %ds              # selector beyond the GDT limit: #GP(0x1238)
    mov $0x10, %ax
    mov %ax, %ds
    int $0x0d                 # software: no error code
    """ + EXIT + """
gp_handler:
    mov %esi, %eax
    sub %esp, %eax
    out %eax, $0xE0           # frame size: 16 with an error code, 12 without
    cmp $16, %eax
    jne 1f
    pop %eax
    out %eax, $0xE0           # the error code
    mov (%esp), %eax
    out %eax, $0xE0           # faulting EIP
    addl $2, (%esp)
1:  iret
    """)
    assert values[0] == 16
    assert values[1] == 0x1238
    assert values[2] > 0x100000
    assert values[3] == 12


def test_page_fault_error_codes_and_cr2() -> None:
    # Identity-map 4 MiB with a page table at 0x20000; page 0x300000 is
    # not present, page 0x301000 is read-only; CR0.WP makes ring 0 honour it.
    values, _ = run("""
    mov $14, %eax
    mov $pf_handler, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov $0x20000, %edi
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    or $3, %eax
    mov %eax, (%edi,%ecx,4)
    inc %ecx
    cmp $1024, %ecx
    jne 1b
    movl $0, 0x20000 + 0x300 * 4
    movl $0, 0x20000 + 0x302 * 4
    movl $0x301001, 0x20000 + 0x301 * 4
    movl $0x20003, (0x21000)
    mov $0x21000, %eax
    mov %eax, %cr3
    mov %cr0, %eax
    or $0x80010000, %eax
    mov %eax, %cr0
    mov (0x300010), %eax      # not present, read: error 0
    movl $1, (0x302020)       # not present, write: error 2
    movl $1, (0x301030)       # protection, write: error 3
    """ + EXIT + """
pf_handler:
    pop %eax
    out %eax, $0xE0
    mov %cr2, %eax
    out %eax, $0xE0
    # make the page present and writable, then retry the instruction
    mov %cr2, %eax
    shr $12, %eax
    mov %eax, %ebx
    shl $12, %ebx
    or $3, %ebx
    mov %ebx, 0x20000(,%eax,4)
    mov %cr2, %eax
    invlpg (%eax)
    iret
    """)
    assert values == [0, 0x300010, 2, 0x302020, 3, 0x301030]


def test_divide_error_and_invalid_opcode_point_at_the_instruction() -> None:
    values, _ = run("""
    mov $0, %eax
    mov $handler0, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov $6, %eax
    mov $handler6, %ebx
    call set_gate
    xor %ecx, %ecx
    mov $1, %eax
    xor %edx, %edx
div_here:
    div %ecx
ud_here:
    ud2
    """ + EXIT + """
handler0:
    mov (%esp), %eax
    out %eax, $0xE0
    addl $2, (%esp)
    iret
handler6:
    mov (%esp), %eax
    out %eax, $0xE0
    addl $2, (%esp)
    iret
    """)
    assert len(values) == 2
    assert values[1] == values[0] + 2


def test_software_int_6_returns_after_the_int_with_no_error_code() -> None:
    # `int $6` raises the same vector as an invalid opcode; Unicorn routes
    # both through its invalid-instruction hook, but this one is software.
    values, _ = run("""
    mov $6, %eax
    mov $handler6, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov %esp, %esi
    int $6
after:
    mov $after, %eax
    out %eax, $0xE0
    """ + EXIT + """
handler6:
    mov %esi, %eax
    sub %esp, %eax
    out %eax, $0xE0           # frame size: 12, no error code
    mov (%esp), %eax
    out %eax, $0xE0           # return EIP
    iret
    """)
    assert values[0] == 12
    assert values[1] == values[2]  # the handler returns to the instruction after `int $6`


def test_missing_gate_raises_np_with_idt_error_code() -> None:
    values, _ = run("""
    mov $11, %eax
    mov $np_handler, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov $6, %eax
    mov $0, %ebx
    mov $0x0E, %ecx           # gate 6 not present
    call set_gate
    ud2
    """ + EXIT + """
np_handler:
    pop %eax
    out %eax, $0xE0
    addl $2, (%esp)
    iret
    """)
    assert values == [6 * 8 + 2 + 1]  # IDT bit, EXT bit


def test_fault_delivering_a_fault_becomes_a_double_fault() -> None:
    values, _ = run("""
    mov $8, %eax
    mov $df_handler, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov $0x1238, %ax
    mov %ax, %ds              # #GP, whose gate is missing: #NP, contributory too
    """ + EXIT + """
df_handler:
    pop %eax
    out %eax, $0xE0           # #DF's error code
    """ + EXIT)
    assert values == [0]


def test_gate_of_the_wrong_type_raises_gp_with_idt_error_code() -> None:
    values, _ = run("""
    mov $13, %eax
    mov $gp_handler, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    mov $0x40, %eax
    mov $0x8C, %ecx           # a call gate has no place in the IDT
    call set_gate
    int $0x40
    """ + EXIT + """
gp_handler:
    pop %eax
    out %eax, $0xE0
    """ + EXIT)
    assert values == [0x40 * 8 + 2]  # IDT bit; no EXT bit for a software int


def test_trap_flag_single_steps_until_the_handler_clears_it() -> None:
    values, _ = run("""
    mov $1, %eax
    mov $db_handler, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
    xor %edi, %edi
    pushf
    orl $0x100, (%esp)
    popf
    nop                       # the first trap comes after this one
step2:
    nop
step3:
    nop
step4:
    mov $step2, %eax
    out %eax, $0xE0
    """ + EXIT + """
db_handler:
    mov (%esp), %eax
    out %eax, $0xE0           # return EIP: the next instruction
    inc %edi
    cmp $3, %edi
    jne 1f
    andl $~0x100, 8(%esp)     # stop stepping after three traps
1:  iret
    """)
    step2 = values[3]
    assert values[:3] == [step2, step2 + 1, step2 + 2]


def test_ring3_int_switches_to_the_tss_stack() -> None:
    values, _ = run("""
    mov $0x80, %eax
    mov $syscall, %ebx
    mov $0xEE, %ecx
    mov $0x08, %edx
    call set_gate
    mov $0x40, %eax
    mov $syscall, %ebx
    mov $0x8E, %ecx           # DPL 0: not callable from ring 3
    call set_gate
    mov $13, %eax
    mov $gp_handler, %ebx
    call set_gate
    mov $0x28, %ax
    ltr %ax
    push $0x23                # SS
    push $0x70000             # ESP
    pushf
    orl $0x3000, (%esp)       # IOPL 3 so ring 3 may use the result port
    push $0x1B                # CS
    push $user
    iret
user:
    mov %cs, %eax
    out %eax, $0xE0
    int $0x80
    int $0x40
syscall:
    mov %esp, %eax
    out %eax, $0xE0
    mov %ss, %eax
    out %eax, $0xE0
    mov 4(%esp), %eax
    out %eax, $0xE0           # user CS
    mov 12(%esp), %eax
    out %eax, $0xE0           # user ESP
    mov 16(%esp), %eax
    out %eax, $0xE0           # user SS
    mov $0x10, %ax
    mov %ax, %ds
    iret
gp_handler:
    pop %eax
    out %eax, $0xE0
    """ + EXIT)
    user_cs, esp, ss, ucs, uesp, uss, gp_err = values
    assert user_cs & 3 == 3
    assert esp == 0x80000 - 20 and ss == 0x10
    assert (ucs, uesp, uss) == (0x1B, 0x70000, 0x23)
    assert gp_err == 0x40 * 8 + 2  # software int through a DPL-0 gate


def test_execute_only_code_segment_as_handler() -> None:
    values, _ = run("""
    mov $0x40, %eax
    mov $handler, %ebx
    mov $0x8E, %ecx
    mov $0x38, %edx
    call set_gate
    int $0x40
    mov %cs, %eax
    out %eax, $0xE0
    """ + EXIT + """
handler:
    mov %cs, %eax
    out %eax, $0xE0
    iret
    """)
    assert values == [0x38, 0x08]


# ------------------------------------------------------ unrecoverable errors


TRIPLE = """
    lidt bad_idtr
    ud2
bad_idtr:
    .word 0
    .long 0
"""


def test_triple_fault_with_no_reboot_stops_with_registers() -> None:
    m = TestMachine(TRIPLE, no_reboot=True)
    stop = m.run()
    assert stop.reason is StopReason.TRIPLE_FAULT
    assert "triple fault" in stop.message
    assert "EIP=001" in stop.registers and "CR0=" in stop.registers


def test_triple_fault_without_no_reboot_resets_the_machine() -> None:
    m = TestMachine(TRIPLE, no_reboot=False)
    m.cpu.start()
    deadline = 200
    while m.boots < 3 and deadline:
        m.cpu.join(0.01)
        deadline -= 1
    m.cpu.request_stop(StopReason.SHUTDOWN)
    stop = m.cpu.join(5)
    assert m.boots >= 3  # reset re-entered the ROM each time
    assert stop is not None and stop.reason is StopReason.SHUTDOWN


def test_fetch_from_unmapped_memory_stops_with_registers() -> None:
    m = TestMachine("""
    mov $0x20000000, %eax
    jmp *%eax
    """)
    stop = m.run()
    assert stop.reason is StopReason.CPU_ERROR
    assert "unmapped" in stop.message
    assert "EIP=20000000" in stop.registers


def test_unassigned_data_access_reads_ones_and_keeps_running() -> None:
    values, _ = run("""
    movl $0x12345678, (0x30000000)
    mov (0x30000000), %eax
    out %eax, $0xE0
    """ + EXIT)
    assert values == [0xFFFFFFFF]

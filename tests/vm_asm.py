"""Tiny test guests for the vm/ tests, assembled at test time with GNU as.

:func:`assemble` turns AT&T source into flat bytes linked at a given address.
:class:`TestMachine` is a CPU with RAM, a boot ROM at the reset vector and
a result port, without the PC's devices:

* the ROM (at 0xFFFF0000 and its real-mode alias 0xF0000) starts at the
  reset vector and either jumps to real-mode code at 0000:7C00
  (``mode="real"``) or switches to 32-bit protected mode with a flat GDT
  and jumps to 0x100000 (``mode="pm32"``);
* ``out %eax, $0xE0`` records EAX in :attr:`TestMachine.values`;
  ``out %al, $0xE1`` stops the machine with AL as the exit status.

GDT of the pm32 ROM: 0x08 ring-0 code, 0x10 ring-0 data, 0x1B ring-3 code,
0x23 ring-3 data, 0x28 a 32-bit TSS at 0x6000 (ESP0=0x80000, SS0=0x10),
0x30 16-bit code (base 0), 0x38 execute-only ring-0 code.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
import threading

import numpy as np

from devices.bus import IOPortSpace
from vm.cpu import CPU, CPUStop, StopReason

RESULT_PORT = 0xE0
EXIT_PORT = 0xE1


def assemble(source: str, base: int, bits: int = 32) -> bytes:
    """Assemble AT&T ``source`` linked at ``base``; returns flat bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "a.S")
        obj = os.path.join(tmp, "a.o")
        out = os.path.join(tmp, "a.bin")
        with open(src, "w") as f:
            f.write(f".code{bits}\n.text\n{source}\n")
        for cmd in (["as", "--32", src, "-o", obj],
                    ["ld", "-m", "elf_i386", f"-Ttext={base:#x}", "-e", "0",
                     "--oformat=binary", obj, "-o", out]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{cmd[0]} failed:\n{proc.stderr}")
        with open(out, "rb") as f:
            return f.read()


@functools.cache
def _assemble_cached(source: str, base: int, bits: int) -> bytes:
    return assemble(source, base, bits)


_ROM_SOURCE = """
entry16:
    mov $0x1111, %ax
    out %ax, $0xE2           # boot marker
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7000, %sp
.ifdef REAL
    ljmp $0x0000, $0x7C00
.else
    lgdtl %cs:gdtdesc
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $0x100000
.endif
.p2align 3
gdt:
    .quad 0
    .quad 0x00CF9B000000FFFF    # 0x08 code ring 0
    .quad 0x00CF93000000FFFF    # 0x10 data ring 0
    .quad 0x00CFFB000000FFFF    # 0x18 code ring 3
    .quad 0x00CFF3000000FFFF    # 0x20 data ring 3
    .quad 0x0000890060000067    # 0x28 TSS at 0x6000, limit 0x67
    .quad 0x00009B000000FFFF    # 0x30 16-bit code, base 0
    .quad 0x00CF99000000FFFF    # 0x38 execute-only code ring 0
gdt_end:
gdtdesc:
    .word gdt_end - gdt - 1
    .long 0xF0000 + gdt
.org 0xFFF0
    ljmp $0xF000, $entry16
.org 0x10000
"""

# Appended to every pm32 body: an empty 256-entry IDT and
#   set_gate(eax=vector, ebx=handler, ecx=attribute byte, edx=selector)
# (attribute 0x8E = ring-0 interrupt gate, 0x8F = trap gate, 0xEE = DPL-3
# interrupt gate, 0x0E = not present).
PM32_LIBRARY = """
    # a body that falls off its end (or runs on after its exit port write,
    # to the end of the translation block) stops here
1:  hlt
    jmp 1b
set_gate:
    lea idt(,%eax,8), %edi
    mov %bx, (%edi)
    mov %dx, 2(%edi)
    movb $0, 4(%edi)
    mov %cl, 5(%edi)
    shr $16, %ebx
    mov %bx, 6(%edi)
    ret
.p2align 3
idt:
    .fill 256, 8, 0
idtr:
    .word 256 * 8 - 1
    .long idt
"""

PM32_PROLOGUE = """
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov $0x90000, %esp
    lidt idtr
"""


class _ResultPorts:
    def __init__(self, machine: TestMachine) -> None:
        self.machine = machine

    def io_read(self, offset: int, size: int) -> int:
        return 0

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            self.machine.values.append(value)
        elif offset == 1:
            self.machine.cpu.request_stop(StopReason.EXIT, value)
        elif offset == 2:
            self.machine.boots += 1


class TestMachine:
    """A CPU with ``ram_mb`` of RAM, the boot ROM and the result ports."""

    __test__ = False

    def __init__(self, body: str = "", mode: str = "pm32", ram_mb: int = 4,
                 no_reboot: bool = True, data: dict[int, bytes] | None = None) -> None:
        self.values: list[int] = []
        self.boots = 0
        self.ioports = IOPortSpace()
        self.ioports.register(RESULT_PORT, 3, _ResultPorts(self), "test-result")
        self.cpu = CPU(self.ioports, no_reboot=no_reboot)
        self.ram = np.zeros(ram_mb << 20, dtype=np.uint8)
        self.cpu.memory.map_ram("ram-low", 0, self.ram[:0xA0000])
        self.cpu.memory.map_ram("ram-high", 0x100000, self.ram[0x100000:])
        rom_src = (".set REAL, 1\n" if mode == "real" else "") + _ROM_SOURCE
        rom = _assemble_cached(rom_src, 0, 16)
        self.cpu.memory.map_rom("bios", 0xFFFF0000, rom)
        self.cpu.memory.map_rom("bios-isa", 0xF0000, rom)
        # TSS for ring transitions: ESP0 = 0x80000, SS0 = 0x10.
        self.ram[0x6004:0x600C] = np.frombuffer(
            (0x80000).to_bytes(4, "little") + (0x10).to_bytes(4, "little"), np.uint8)
        if body:
            if mode == "real":
                self.load(0x7C00, assemble(body, 0x7C00, bits=16))
            else:
                self.load(0x100000, assemble(PM32_PROLOGUE + body + PM32_LIBRARY, 0x100000))
        for addr, blob in (data or {}).items():
            self.load(addr, blob)
        self.cpu.reset_state()

    def load(self, addr: int, blob: bytes) -> None:
        self.ram[addr : addr + len(blob)] = np.frombuffer(blob, np.uint8)

    def run(self, timeout: float = 10.0) -> CPUStop:
        """Run on a thread; stop with SHUTDOWN if the guest has not exited
        within ``timeout`` seconds."""
        self.cpu.start()
        stop = self.cpu.join(timeout)
        if stop is None:
            self.cpu.request_stop(StopReason.SHUTDOWN, message="test timeout")
            stop = self.cpu.join(5)
        assert stop is not None
        return stop


class LineController:
    """An interrupt controller with one level-triggered line and a fixed
    vector, for CPU tests that need an INTR pin without the 8259 model's
    programming sequence."""

    def __init__(self, cpu: CPU, vector: int) -> None:
        self.cpu = cpu
        self.vector = vector
        self.level = False
        self.acks = 0
        self.lock = threading.Lock()

    def raise_line(self) -> None:
        with self.lock:
            self.level = True
        self.cpu.kick()

    def has_interrupt(self) -> bool:
        return self.level

    def acknowledge(self) -> int:
        with self.lock:
            self.level = False
            self.acks += 1
        return self.vector


def multiboot_kernel(body: str) -> bytes:
    """A minimal Multiboot v1 ELF kernel at 1 MiB whose entry runs ``body``
    (32-bit, flat segments from the loader, no stack set up)."""
    source = """
.globl _start
.p2align 2
mb_header:
    .long 0x1BADB002
    .long 0
    .long -0x1BADB002
_start:
""" + body
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.S")
        obj = os.path.join(tmp, "k.o")
        out = os.path.join(tmp, "k.elf")
        with open(src, "w") as f:
            f.write(".code32\n.text\n" + source + "\n")
        for cmd in (["as", "--32", src, "-o", obj],
                    ["ld", "-m", "elf_i386", "-Ttext-segment=0x100000", "-e", "_start",
                     "-z", "max-page-size=0x1000", "-z", "noseparate-code", obj, "-o", out]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{cmd[0]} failed:\n{proc.stderr}")
        with open(out, "rb") as f:
            return f.read()

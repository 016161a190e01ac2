"""The QXL device driven by real x86 code on the vCPU: the guest places the
BARs with configuration cycles, reads the ROM, registers a memory slot,
creates the primary surface, copies a drawable into device memory and
pushes it on the command ring, waits (hlt) for the IO_CMD interrupt of an
asynchronous request through PIIX3 and the 8259 pair, then provokes a
guest bug and keeps running.  (The program finishes inside its interrupt
handler: it tests the interrupt path, not the return from it.)"""

from __future__ import annotations

import numpy as np

from devices.bus import NullIrq
from devices.pci import PCIBus
from devices.pic import PICPair
from devices.qxl import QXLDevice, QXLMode
from devices.qxl import layout as L
from spice import qxl as Q
from tests.clocks import ManualClock
from tests.qxl_harness import HarnessWorker, drawable_bytes, record
from tests.vm_asm import TestMachine
from vm.cpu import StopReason

DRAWABLE_AT = 0x20000  # where the test puts the drawable in guest RAM

PROGRAM = """
    # 8259 pair: vectors 0x20/0x28, only the cascade and IRQ11 unmasked
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xA0
    mov $0x20, %al
    out %al, $0x21
    mov $0x28, %al
    out %al, $0xA1
    mov $0x04, %al
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xA1
    mov $0x01, %al
    out %al, $0x21
    out %al, $0xA1
    mov $0xFB, %al
    out %al, $0x21
    mov $0xF7, %al
    out %al, $0xA1
    mov $0x2B, %eax
    mov $irq11, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate

    # PCI: BAR0 (RAM), BAR2 (ROM), BAR3 (I/O), command, PIRQB (slot 2 INTA) -> IRQ11
    mov $0x80001010, %eax
    mov $0xE0000000, %ecx
    call cfg_write
    mov $0x80001018, %eax
    mov $0xE8000000, %ecx
    call cfg_write
    mov $0x8000101C, %eax
    mov $0xC000, %ecx
    call cfg_write
    mov $0x80001004, %eax
    mov $0x7, %ecx
    call cfg_write
    mov $0x80000860, %eax
    mov $0x80800B80, %ecx
    call cfg_write

    mov 0xE8000000, %eax        # ROM magic
    out %eax, $0xE0
    mov 0xE800002C, %ebx        # ram_header_offset
    add $0xE0000000, %ebx

    movl $0x3F, 8(%ebx)         # int_mask
    movl $0xE0000000, 5276(%ebx)   # mem_slot.mem_start
    movl $0, 5280(%ebx)
    movl $0xE1000000, 5284(%ebx)   # mem_slot.mem_end
    movl $0, 5288(%ebx)
    mov $0xC008, %dx            # MEMSLOT_ADD slot 1
    mov $1, %al
    out %al, %dx

    movl $640, 5292(%ebx)       # create_surface: 640x480, stride -2560, xRGB
    movl $480, 5296(%ebx)
    movl $-2560, 5300(%ebx)
    movl $32, 5304(%ebx)
    movl $0, 5308(%ebx)
    movl $0, 5312(%ebx)
    movl $0, 5316(%ebx)
    movl $0, 5320(%ebx)
    movl $0, 5324(%ebx)         # mem = slot 1, offset 0
    movl $0x01000000, 5328(%ebx)
    mov $0xC00C, %dx            # CREATE_PRIMARY
    xor %al, %al
    out %al, %dx

    mov $0x20000, %esi          # the drawable into device memory (page area)
    mov $0xE0800000, %edi
    mov $191, %ecx
    rep movsb
    movl $0x00800000, 4128(%ebx)   # cmd_ring.items[0].data = slot 1 | 0x800000
    movl $0x01000000, 4132(%ebx)
    movl $1, 4136(%ebx)         # type DRAW
    movl $1, 4112(%ebx)         # prod = 1
    mov $0xC000, %dx            # NOTIFY_CMD
    out %al, %dx

    sti
    mov $0xC016, %dx            # FLUSH_SURFACES_ASYNC: completes with IO_CMD
    out %al, %dx
1:  jmp 1b                      # the rest happens in the interrupt handler

irq11:
    mov 4(%ebx), %eax           # int_pending
    out %eax, $0xE0
    movl $0, 4(%ebx)            # acknowledge, then UPDATE_IRQ lowers the line
    mov $0xC003, %dx
    out %al, %dx
    mov $0x20, %al              # EOI slave, then master
    out %al, $0xA0
    out %al, $0x20
    mov $2, %eax
    out %eax, $0xE0

    mov $0xC00A, %dx            # DETACH_PRIMARY: not implemented -> guest bug
    out %al, %dx
    mov 4(%ebx), %eax           # int_pending: ERROR
    out %eax, $0xE0
    mov $0xC000, %dx            # ignored now
    out %al, %dx
    mov $0xC005, %dx            # RESET
    out %al, %dx
    mov 8(%ebx), %eax           # int_mask back to 0
    out %eax, $0xE0
    mov $0, %al
    out %al, $0xE1

cfg_write:                      # config address eax, data ecx
    mov $0xCF8, %dx
    out %eax, %dx
    mov %ecx, %eax
    mov $0xCFC, %dx
    out %eax, %dx
    ret
"""


def test_guest_code_drives_the_device():
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 0x00FF00,
                        "rop_descriptor": Q.SPICE_ROPD_OP_PUT})
    drawable = drawable_bytes({"release_info": 0xE0800000, "type": Q.QXL_DRAW_FILL,
                               "effect": Q.QXL_EFFECT_OPAQUE, "bbox": (0, 0, 48, 64)}, u)
    m = TestMachine(PROGRAM, data={DRAWABLE_AT: drawable})
    pic = PICPair(m.ioports, m.cpu.kick)
    m.cpu.interrupt_controller = pic
    bus = PCIBus(m.ioports, m.cpu.memory, pic.irq)
    dev = QXLDevice(m.cpu.memory, m.ioports, ManualClock(), ram_size_mb=16, vram_size_mb=1,
                    vgamem_mb=8)
    assert bus.plug(dev) == 0x10
    worker = HarnessWorker(dev)
    dev.attach_worker(worker)

    stop = m.run(timeout=20)
    assert stop.reason is StopReason.EXIT and stop.status == 0, stop
    magic, irq_pending, after_irq, bug_pending, mask_after_reset = m.values
    assert magic == Q.QXL_ROM_MAGIC
    assert irq_pending & Q.QXL_INTERRUPT_IO_CMD  # seen by the interrupt handler
    assert after_irq == 2
    assert bug_pending & Q.QXL_INTERRUPT_ERROR
    assert mask_after_reset == 0 and dev.mode == QXLMode.VGA and not dev.guest_bug
    names = worker.names()
    assert "create_primary_surface" in names and "flush_surfaces_async" in names
    assert worker.wakeups == 1  # NOTIFY_CMD; the one after the guest bug was ignored
    created = next(args[0] for name, args in worker.calls if name == "create_primary_surface")
    assert (created.width, created.height, created.stride) == (640, 480, -2560)
    assert np.shares_memory(created.data, dev.ram)


def test_guest_code_draw_reaches_the_server():
    """The same program, stopped before the reset: the drawable it pushed is
    what the server pulls."""
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 0x00FF00})
    drawable = drawable_bytes({"type": Q.QXL_DRAW_FILL, "bbox": (0, 0, 48, 64)}, u)
    body = PROGRAM.split("    sti\n")[0] + "    mov $0, %al\n    out %al, $0xE1\n" + \
        PROGRAM[PROGRAM.index("irq11:"):]
    m = TestMachine(body, data={DRAWABLE_AT: drawable})
    bus = PCIBus(m.ioports, m.cpu.memory, lambda n: NullIrq())
    dev = QXLDevice(m.cpu.memory, m.ioports, ManualClock(), ram_size_mb=16, vram_size_mb=1,
                    vgamem_mb=8)
    bus.plug(dev)
    dev.attach_worker(HarnessWorker(dev))
    assert m.run(timeout=20).reason is StopReason.EXIT
    cmd = dev.get_command()
    assert cmd is not None and dev.get_command() is None
    assert cmd.payload.u.brush.color == 0x00FF00 and cmd.payload.bbox == Q.Rect(0, 0, 48, 64)

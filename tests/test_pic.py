"""8259A pair: driven through its ports as a guest would, observed through
INTR, the INTA cycle and the registers a guest can read back."""

from __future__ import annotations

import threading

import pytest

from devices.bus import IOPortSpace
from devices.pic import PICPair


class Board:
    def __init__(self) -> None:
        self.io = IOPortSpace()
        self.kicks = 0
        self.pic = PICPair(self.io, self._kick)

    def _kick(self) -> None:
        self.kicks += 1

    def out(self, port: int, value: int, size: int = 1) -> None:
        self.io.write(port, size, value)

    def inb(self, port: int) -> int:
        return self.io.read(port, 1)

    def init(self, master_base: int = 0x08, slave_base: int = 0x70,
             icw4_master: int = 0x01, icw4_slave: int = 0x01) -> None:
        """The BIOS / Linux initialisation sequence."""
        self.out(0x20, 0x11)
        self.out(0x21, master_base)
        self.out(0x21, 0x04)
        self.out(0x21, icw4_master)
        self.out(0xA0, 0x11)
        self.out(0xA1, slave_base)
        self.out(0xA1, 0x02)
        self.out(0xA1, icw4_slave)

    def irr(self, cmd: int = 0x20) -> int:
        self.out(cmd, 0x0A)
        return self.inb(cmd)

    def isr(self, cmd: int = 0x20) -> int:
        self.out(cmd, 0x0B)
        return self.inb(cmd)

    def eoi(self, cmd: int = 0x20) -> None:
        self.out(cmd, 0x20)


@pytest.fixture
def b() -> Board:
    board = Board()
    board.init()
    return board


def test_edge_interrupt_ack_and_eoi(b: Board) -> None:
    assert not b.pic.has_interrupt()
    b.pic.irq(0).pulse()
    assert b.pic.has_interrupt()
    assert b.kicks == 1
    assert b.irr() == 0x01
    assert b.pic.acknowledge() == 0x08
    assert not b.pic.has_interrupt()
    assert b.irr() == 0x00
    assert b.isr() == 0x01
    b.eoi()
    assert b.isr() == 0x00
    # A line that stays high produces no new request (edge-triggered).
    b.pic.irq(4).set_level(True)
    assert b.pic.acknowledge() == 0x0C
    b.eoi()
    assert not b.pic.has_interrupt()
    b.pic.irq(4).set_level(False)
    b.pic.irq(4).set_level(True)
    assert b.pic.acknowledge() == 0x0C


def test_mask_register_gates_intr(b: Board) -> None:
    b.out(0x21, 0xFF)
    assert b.inb(0x21) == 0xFF
    b.pic.irq(1).pulse()
    assert not b.pic.has_interrupt()
    assert b.kicks == 0
    assert b.irr() == 0x02  # requested, but masked
    b.out(0x21, 0xFD)
    assert b.pic.has_interrupt()
    assert b.kicks == 1
    assert b.pic.acknowledge() == 0x09


def test_fixed_priority_and_nesting(b: Board) -> None:
    b.pic.irq(3).pulse()
    b.pic.irq(1).pulse()
    assert b.pic.acknowledge() == 0x09  # IRQ1 beats IRQ3
    # IRQ3 must wait while IRQ1 is in service...
    assert not b.pic.has_interrupt()
    # ...but IRQ0 preempts IRQ1.
    b.pic.irq(0).pulse()
    assert b.pic.has_interrupt()
    assert b.pic.acknowledge() == 0x08
    assert b.isr() == 0x03
    b.eoi()  # non-specific EOI ends the highest in service: IRQ0
    assert b.isr() == 0x02
    b.eoi()
    assert b.pic.acknowledge() == 0x0B
    b.eoi()
    assert b.isr() == 0


def test_specific_eoi(b: Board) -> None:
    b.pic.irq(5).pulse()
    b.pic.acknowledge()
    b.out(0x20, 0x63)  # specific EOI for IRQ3: nothing there, harmless
    assert b.isr() == 0x20
    b.out(0x20, 0x65)  # specific EOI IRQ5
    assert b.isr() == 0


def test_slave_cascade(b: Board) -> None:
    b.pic.irq(10).pulse()
    assert b.pic.has_interrupt()
    assert b.irr(0x20) == 0x04
    assert b.irr(0xA0) == 0x04
    assert b.pic.acknowledge() == 0x72
    assert b.isr(0xA0) == 0x04
    assert b.isr(0x20) == 0x04
    # Another slave request of lower priority waits for the slave EOI.
    b.pic.irq(12).pulse()
    assert not b.pic.has_interrupt()
    b.eoi(0xA0)
    b.eoi(0x20)
    assert b.pic.has_interrupt()
    assert b.pic.acknowledge() == 0x74


def test_slave_masked_through_master_irq2(b: Board) -> None:
    b.out(0x21, 0x04)  # mask the cascade input
    b.pic.irq(14).pulse()
    assert not b.pic.has_interrupt()
    b.out(0x21, 0x00)
    assert b.pic.acknowledge() == 0x76


def test_spurious_interrupts_leave_isr_alone(b: Board) -> None:
    b.out(0x4D0, 0x08)  # IRQ3 level-triggered
    b.out(0x4D1, 0x02)  # IRQ9 level-triggered
    b.pic.irq(3).set_level(True)
    assert b.pic.has_interrupt()
    b.pic.irq(3).set_level(False)  # withdrawn before the INTA cycle
    assert b.pic.acknowledge() == 0x0F
    assert b.isr() == 0
    # On the slave: the master latched the cascade edge, the slave request
    # is gone, so the vector is the slave's IRQ15 and the slave ISR is clear.
    b.pic.irq(9).set_level(True)
    b.pic.irq(9).set_level(False)
    assert b.pic.acknowledge() == 0x77
    assert b.isr(0xA0) == 0
    assert b.isr(0x20) == 0x04  # the master did acknowledge its IRQ2
    b.eoi()


def test_level_triggered_stays_requested(b: Board) -> None:
    b.out(0x4D1, 0x08)  # IRQ11 level
    b.pic.irq(11).set_level(True)
    assert b.pic.acknowledge() == 0x73
    b.eoi(0xA0)
    b.eoi(0x20)
    # Still asserted: interrupts again after EOI.
    assert b.pic.has_interrupt()
    assert b.pic.acknowledge() == 0x73
    b.pic.irq(11).set_level(False)
    b.eoi(0xA0)
    b.eoi(0x20)
    assert not b.pic.has_interrupt()


def test_elcr_hardwired_edge_bits_and_wide_access(b: Board) -> None:
    b.out(0x4D0, 0xFFFF, size=2)
    assert b.inb(0x4D0) == 0xF8  # IRQ 0, 1, 2 always edge
    assert b.inb(0x4D1) == 0xDE  # IRQ 8, 13 always edge
    assert b.io.read(0x4D0, 2) == 0xDEF8
    # A 16-bit write to the command/data pair is two byte cycles.
    b.out(0x20, 0xFB0A, size=2)  # OCW3 "read IRR" to 0x20, OCW1 0xFB to 0x21
    assert b.inb(0x21) == 0xFB


def test_auto_eoi(b: Board) -> None:
    b.init(icw4_master=0x03)
    b.pic.irq(6).pulse()
    assert b.pic.acknowledge() == 0x0E
    assert b.isr() == 0
    b.pic.irq(7).pulse()
    assert b.pic.has_interrupt()  # nothing in service blocks it


def test_rotation_commands(b: Board) -> None:
    b.out(0x20, 0xC0 | 4)  # set priority: IRQ4 lowest, so IRQ5 highest
    b.pic.irq(1).pulse()
    b.pic.irq(6).pulse()
    assert b.pic.acknowledge() == 0x0E  # IRQ6 outranks IRQ1 now
    b.out(0x20, 0xA0)  # rotate on non-specific EOI: IRQ6 becomes lowest
    assert b.pic.acknowledge() == 0x09
    b.out(0x20, 0xE0 | 1)  # specific EOI and rotate: IRQ1 lowest
    b.pic.irq(1).pulse()
    b.pic.irq(3).pulse()
    assert b.pic.acknowledge() == 0x0B  # IRQ3 now outranks IRQ1


def test_poll_mode(b: Board) -> None:
    b.out(0x20, 0x0C)  # poll with nothing pending
    assert b.inb(0x20) == 0x00
    b.pic.irq(5).pulse()
    b.out(0x20, 0x0C)
    assert b.inb(0x20) == 0x85
    assert b.isr() == 0x20
    assert not b.pic.has_interrupt()


def test_special_mask_mode(b: Board) -> None:
    b.pic.irq(1).pulse()
    assert b.pic.acknowledge() == 0x09
    b.pic.irq(3).pulse()
    assert not b.pic.has_interrupt()
    b.out(0x21, 0x02)  # mask IRQ1, which is in service
    b.out(0x20, 0x68)  # enter special mask mode
    assert b.pic.has_interrupt()
    assert b.pic.acknowledge() == 0x0B
    b.out(0x20, 0x48)  # leave special mask mode
    assert b.isr() == 0x0A


def test_special_fully_nested_mode(b: Board) -> None:
    b.init(icw4_master=0x11)
    b.pic.irq(12).pulse()
    assert b.pic.acknowledge() == 0x74
    # A higher-priority slave request interrupts the slave one in service.
    b.pic.irq(9).pulse()
    assert b.pic.has_interrupt()
    assert b.pic.acknowledge() == 0x71


def test_single_mode_skips_icw3(b: Board) -> None:
    b.out(0x20, 0x13)  # ICW1: single, ICW4 needed
    b.out(0x21, 0x20)  # ICW2
    b.out(0x21, 0x01)  # ICW4 (no ICW3 in single mode)
    b.out(0x21, 0x5A)  # now OCW1
    assert b.inb(0x21) == 0x5A


def test_icw1_drops_edge_requests_and_masks(b: Board) -> None:
    b.out(0x21, 0x80)
    b.pic.irq(7).pulse()
    b.init()
    assert b.inb(0x21) == 0x00
    assert b.irr() == 0
    assert not b.pic.has_interrupt()


def test_kick_from_another_thread(b: Board) -> None:
    t = threading.Thread(target=lambda: b.pic.irq(15).pulse())
    t.start()
    t.join()
    assert b.kicks == 1
    assert b.pic.acknowledge() == 0x77
    assert b.isr(0xA0) == 0x80


def test_reset_returns_power_on_state(b: Board) -> None:
    b.out(0x4D0, 0x20)
    b.out(0x21, 0x13)
    b.pic.irq(1).pulse()
    b.pic.reset()
    assert b.inb(0x21) == 0
    assert b.inb(0x4D0) == 0
    assert not b.pic.has_interrupt()
    b.pic.irq(1).pulse()
    assert b.pic.acknowledge() == 1  # vector base 0 until initialised


def test_bad_input_is_harmless(b: Board) -> None:
    b.out(0x20, 0x40)  # OCW2 command 2: no-op
    b.io.write(0x20, 4, 0xFFFFFFFF)  # ICW1 with every bit, then OCW1 etc.
    b.io.read(0xA0, 4)
    assert b.io.read(0x4D0, 4) & 0xFFFF == b.io.read(0x4D0, 2)
    with pytest.raises(ValueError):
        b.pic.irq(16)

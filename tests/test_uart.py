"""16550A UART through its eight ports, its IRQ line and its host side."""

from __future__ import annotations

import threading

import pytest

from devices.bus import IOPortSpace
from devices.uart import UART16550
from tests.clocks import ManualClock, RecordingIrq

COM1 = 0x3F8
RBR = THR = DLL = COM1
IER = DLM = COM1 + 1
IIR = FCR = COM1 + 2
LCR, MCR, LSR, MSR, SCR = COM1 + 3, COM1 + 4, COM1 + 5, COM1 + 6, COM1 + 7


class Board:
    def __init__(self) -> None:
        self.io = IOPortSpace()
        self.clock = ManualClock()
        self.irq = RecordingIrq()
        self.sent = bytearray()
        self.uart = UART16550(self.io, self.clock, self.irq, output=self.sent.extend)

    def out(self, port: int, value: int) -> None:
        self.io.write(port, 1, value)

    def inb(self, port: int) -> int:
        return self.io.read(port, 1)

    def drain(self) -> bytes:
        got = bytearray()
        while self.inb(LSR) & 0x01:
            got.append(self.inb(RBR))
        return bytes(got)


@pytest.fixture
def b() -> Board:
    return Board()


def test_power_on_registers(b: Board) -> None:
    assert b.inb(IER) == 0
    assert b.inb(IIR) == 0x01
    assert b.inb(LCR) == 0
    assert b.inb(MCR) == 0x08
    assert b.inb(LSR) == 0x60
    assert b.inb(MSR) == 0xB0
    b.out(LCR, 0x80)
    assert (b.inb(DLL), b.inb(DLM)) == (0x0C, 0x00)
    assert not b.irq.level


def test_transmit_goes_to_output(b: Board) -> None:
    for ch in b"hello\n":
        assert b.inb(LSR) & 0x20
        b.out(THR, ch)
    assert bytes(b.sent) == b"hello\n"
    assert b.inb(LSR) & 0x60 == 0x60


def test_thre_interrupt_cycle(b: Board) -> None:
    b.out(IER, 0x02)
    assert b.irq.level  # enabling THRI with THR empty raises it
    assert b.inb(IIR) == 0x02
    assert not b.irq.level  # reading IIR cleared the THRE source
    assert b.inb(IIR) == 0x01
    rises = b.irq.rises
    b.out(THR, ord("x"))
    assert b.irq.level and b.irq.rises == rises + 1
    # Toggling IER re-arms it (a Windows/Linux idiom).
    b.inb(IIR)
    b.out(IER, 0x00)
    b.out(IER, 0x02)
    assert b.irq.level


def test_receive_without_fifo(b: Board) -> None:
    b.out(IER, 0x01)
    b.uart.receive(b"ab")
    assert b.irq.level
    assert b.inb(IIR) == 0x04
    assert b.inb(LSR) & 0x01
    assert b.inb(RBR) == ord("a")
    # The next byte comes in from the host backlog, not as an overrun.
    assert b.irq.level
    assert b.inb(RBR) == ord("b")
    assert not b.inb(LSR) & 0x03
    assert not b.irq.level


def test_fifo_trigger_level_and_iir_fifo_bits(b: Board) -> None:
    b.out(FCR, 0xC7)  # enable, clear both, trigger 14
    b.out(IER, 0x01)
    assert b.inb(IIR) == 0xC1
    b.uart.receive(bytes(range(10)))
    assert not b.irq.level
    b.uart.receive(bytes(range(10, 14)))
    assert b.irq.level
    assert b.inb(IIR) == 0xC4
    assert b.drain() == bytes(range(14))
    assert not b.irq.level


@pytest.mark.parametrize("fcr,level", [(0x01, 1), (0x41, 4), (0x81, 8), (0xC1, 14)])
def test_trigger_levels(b: Board, fcr: int, level: int) -> None:
    b.out(FCR, fcr)
    b.out(IER, 0x01)
    b.uart.receive(bytes(level - 1))
    assert b.inb(IIR) & 0x0F != 0x04
    b.uart.receive(b"x")
    assert b.inb(IIR) & 0x0F == 0x04


def test_character_timeout_interrupt(b: Board) -> None:
    b.out(LCR, 0x80)
    b.out(DLL, 1)  # 115200 baud
    b.out(DLM, 0)
    b.out(LCR, 0x03)  # 8N1: 10 bits per character
    b.out(FCR, 0xC1)
    b.out(IER, 0x01)
    b.uart.receive(b"abc")
    assert not b.irq.level
    b.clock.advance(300_000)  # < 4 character times (347 us)
    assert not b.irq.level
    b.clock.advance(100_000)
    assert b.irq.level
    assert b.inb(IIR) == 0xCC
    assert b.inb(RBR) == ord("a")
    assert not b.irq.level  # reading clears the timeout...
    b.clock.advance(400_000)
    assert b.inb(IIR) == 0xCC  # ...and it comes back for what is left
    assert b.drain() == b"bc"
    b.clock.advance(1_000_000)
    assert b.inb(IIR) == 0xC1


def test_host_backlog_is_never_overrun(b: Board) -> None:
    b.out(FCR, 0x01)
    data = bytes(i & 0xFF for i in range(1000))
    b.uart.receive(data)
    got = bytearray()
    while True:
        lsr = b.inb(LSR)
        assert not lsr & 0x02
        if not lsr & 0x01:
            break
        got.append(b.inb(RBR))
    assert bytes(got) == data


def test_receive_from_another_thread(b: Board) -> None:
    b.out(FCR, 0x01)
    data = bytes(i * 7 & 0xFF for i in range(5000))

    def feed() -> None:
        for i in range(0, len(data), 37):
            b.uart.receive(data[i:i + 37])

    t = threading.Thread(target=feed)
    t.start()
    got = bytearray()
    while len(got) < len(data):
        if b.inb(LSR) & 0x01:
            got.append(b.inb(RBR))
    t.join()
    assert bytes(got) == data


def test_loopback_and_priority_of_line_status(b: Board) -> None:
    b.out(MCR, 0x10 | 0x0F)
    assert b.inb(MSR) == 0xF0  # outputs wired back to inputs
    b.out(MCR, 0x10 | 0x02)
    assert b.inb(MSR) == 0x10  # RTS -> CTS
    b.out(IER, 0x07)
    b.out(THR, 0x41)
    assert not b.sent  # nothing leaves the chip in loopback
    assert b.inb(IIR) == 0x04  # data ready outranks THRE
    b.out(THR, 0x42)  # overrun: no FIFO and RBR still full
    assert b.inb(IIR) == 0x06  # line status outranks everything
    assert b.inb(LSR) & 0x02
    assert not b.inb(LSR) & 0x02  # OE clears on read
    assert b.inb(RBR) == 0x42
    assert b.inb(IIR) == 0x02
    # Host input waits while the chip is in loopback.
    b.uart.receive(b"z")
    assert not b.inb(LSR) & 0x01
    b.out(MCR, 0x08)
    assert b.inb(RBR) == ord("z")


def test_loopback_fifo_overrun_keeps_contents(b: Board) -> None:
    b.out(MCR, 0x10)
    b.out(FCR, 0x01)
    for i in range(17):
        b.out(THR, i)
    assert b.inb(LSR) & 0x02
    assert b.drain() == bytes(range(16))


def test_fifo_clear_and_disable(b: Board) -> None:
    b.out(FCR, 0x01)
    b.uart.receive(b"12345")
    b.out(FCR, 0x03)  # clear receive FIFO
    assert not b.inb(LSR) & 0x01
    b.uart.receive(b"67")
    b.out(FCR, 0x00)  # turning FIFOs off flushes them too
    assert b.inb(IIR) & 0xC0 == 0
    assert not b.inb(LSR) & 0x01


def test_divisor_latch_and_scratch(b: Board) -> None:
    b.out(LCR, 0x83)
    b.out(DLL, 0x34)
    b.out(DLM, 0x12)
    assert (b.inb(DLL), b.inb(DLM)) == (0x34, 0x12)
    b.out(LCR, 0x03)
    assert b.inb(IER) == 0
    b.out(SCR, 0x5A)
    assert b.inb(SCR) == 0x5A
    assert not b.sent  # writing DLL is not a transmit


def test_reset(b: Board) -> None:
    b.out(FCR, 0x01)
    b.out(IER, 0x0F)
    b.out(LCR, 0x9F)
    b.out(SCR, 1)
    assert b.irq.level
    b.uart.reset()
    assert not b.irq.level
    assert (b.inb(IER), b.inb(IIR), b.inb(LCR), b.inb(SCR)) == (0, 0x01, 0, 0)
    assert b.inb(LSR) == 0x60


def test_bad_input_is_harmless(b: Board) -> None:
    b.io.write(COM1, 4, 0x00000041)  # four byte cycles: THR, IER, FCR, LCR
    assert bytes(b.sent) == b"A"
    assert b.io.read(COM1 + 6, 4) & 0xFF == 0xB0
    b.io.write(COM1 + 7, 2, 0xFFFF)  # second byte falls outside the chip

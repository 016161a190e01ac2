"""MC146818 RTC/CMOS through ports 0x70/0x71 and IRQ8, on a ManualClock
with a fixed wall-clock start so every field is exact."""

from __future__ import annotations

import calendar
import time

import pytest

from devices.bus import IOPortSpace
from devices.rtc import CMOS
from tests.clocks import ManualClock, RecordingIrq

# Thursday 2024-02-29 23:59:58.5 UTC
START = calendar.timegm((2024, 2, 29, 23, 59, 58)) + 0.5
MiB, GiB = 1 << 20, 1 << 30


class Board:
    def __init__(self, ram: int = 128 * MiB, wall: float = START) -> None:
        self.io = IOPortSpace()
        self.clock = ManualClock()
        self.irq = RecordingIrq()
        self.cmos = CMOS(self.io, self.clock, self.irq, ram, wall_clock=lambda: wall)

    def read(self, index: int) -> int:
        self.io.write(0x70, 1, index)
        return self.io.read(0x71, 1)

    def write(self, index: int, value: int) -> None:
        self.io.write(0x70, 1, index)
        self.io.write(0x71, 1, value)

    def fields(self) -> tuple[int, ...]:
        return tuple(self.read(i) for i in (0x32, 9, 8, 7, 6, 4, 2, 0))


@pytest.fixture
def b() -> Board:
    return Board()


def test_power_on_registers_and_time_in_bcd(b: Board) -> None:
    assert (b.read(0x0A), b.read(0x0B), b.read(0x0C), b.read(0x0D)) == (0x26, 0x02, 0, 0x80)
    # century, year, month, day, weekday (Thursday = 5), hour, min, sec
    assert b.fields() == (0x20, 0x24, 0x02, 0x29, 0x05, 0x23, 0x59, 0x58)
    b.clock.advance(2 * 10**9)  # across midnight into March, leap year
    assert b.fields() == (0x20, 0x24, 0x03, 0x01, 0x06, 0x00, 0x00, 0x00)


def test_follows_host_wall_clock() -> None:
    board = Board(wall=time.time())
    tm = time.gmtime()
    sec = board.read(0)
    minute = board.read(2)
    got = (minute >> 4) * 600 + (minute & 15) * 60 + (sec >> 4) * 10 + (sec & 15)
    want = tm.tm_min * 60 + tm.tm_sec
    assert (got - want) % 3600 in (0, 1, 3599)


def test_binary_and_12_hour_modes(b: Board) -> None:
    b.write(0x0B, 0x04)  # binary, 12-hour
    assert b.read(4) == 0x80 | 11  # 11 PM
    assert b.read(0) == 58
    assert b.read(9) == 24
    b.clock.advance(2 * 10**9)
    assert b.read(4) == 12  # midnight is 12 AM


def test_guest_sets_the_time_under_set(b: Board) -> None:
    b.write(0x0B, 0x82)
    for index, value in ((0, 0x30), (2, 0x15), (4, 0x08), (7, 0x04), (8, 0x07), (9, 0x99),
                         (0x32, 0x19)):
        b.write(index, value)
    b.clock.advance(5 * 10**9)
    assert b.read(0) == 0x30  # frozen while SET
    b.write(0x0B, 0x02)
    b.clock.advance(10**9)
    assert b.fields()[:3] == (0x19, 0x99, 0x07)
    assert (b.read(4), b.read(2), b.read(0)) == (0x08, 0x15, 0x31)
    b.write(0x37, 0x20)  # the IBM PS/2 century byte aliases 0x32
    assert b.read(0x32) == 0x20
    assert b.read(9) == 0x99


def test_uip_in_the_last_244_us(b: Board) -> None:
    assert not b.read(0x0A) & 0x80
    b.clock.advance(500_000_000 - 200_000)  # 200 us before the next second
    assert b.read(0x0A) & 0x80
    b.clock.advance(300_000)
    assert not b.read(0x0A) & 0x80


def test_periodic_interrupt_rate(b: Board) -> None:
    b.write(0x0A, 0x26)  # 1024 Hz
    b.write(0x0B, 0x42)  # PIE
    assert not b.irq.level
    b.clock.advance(1_000_000)
    assert b.irq.level
    assert b.read(0x0C) == 0xC0
    assert not b.irq.level
    # The line stays high until C is read: count the cycles over 1 s.
    end = b.clock.now_ns() + 10**9
    served = 0
    while b.clock.next_deadline() is not None and b.clock.next_deadline() <= end:
        b.clock.advance_to(b.clock.next_deadline())
        if b.irq.level:
            assert b.read(0x0C) & 0x40
            served += 1
    assert served in (1024, 1025)
    b.write(0x0A, 0x2F)  # 2 Hz
    b.read(0x0C)
    rises = b.irq.rises
    b.clock.advance(10**9)
    assert b.irq.rises == rises + 1  # unread C: one edge, then stuck high


def test_update_ended_interrupt(b: Board) -> None:
    b.write(0x0B, 0x12)  # UIE
    b.clock.advance(400_000_000)
    assert not b.irq.level
    b.clock.advance(100_000_000)  # the second turns over
    assert b.irq.level
    assert b.read(0x0C) == 0x90
    assert b.read(0) == 0x59


def test_alarm_interrupt(b: Board) -> None:
    b.write(0x01, 0x01)  # 00:00:01
    b.write(0x03, 0x00)
    b.write(0x05, 0x00)
    b.write(0x0B, 0x22)  # AIE
    b.clock.advance(2 * 10**9)  # 00:00:00.5
    assert not b.irq.level
    assert b.read(0x0C) & 0x20 == 0
    b.clock.advance(10**9)
    assert b.irq.level
    assert b.read(0x0C) == 0xB0  # IRQF | AF | UF
    # Don't-care hours and minutes: every minute at :05.
    b.write(0x05, 0xC0)
    b.write(0x03, 0xC0)
    b.write(0x01, 0x05)
    b.clock.advance(3 * 10**9)
    assert not b.irq.level
    b.clock.advance(10**9)
    assert b.irq.level


def test_enabling_with_flag_already_set_fires(b: Board) -> None:
    b.clock.advance(10**9)  # UF set with UIE off: no interrupt
    assert not b.irq.level
    b.write(0x0B, 0x12)
    assert b.irq.level
    assert b.read(0x0C) & 0x90 == 0x90


def test_divider_reset_stops_the_clock(b: Board) -> None:
    b.write(0x0A, 0x70)
    b.clock.advance(10 * 10**9)
    assert b.read(0) == 0x58
    b.write(0x0A, 0x26)
    b.clock.advance(400_000_000)
    assert b.read(0) == 0x58
    b.clock.advance(200_000_000)  # first update half a second later
    assert b.read(0) == 0x59


def test_memory_size_bytes_128m(b: Board) -> None:
    assert b.read(0x15) | b.read(0x16) << 8 == 640
    assert b.read(0x17) | b.read(0x18) << 8 == 0xFFFF  # capped at 64 MiB - 1 KiB
    assert b.read(0x30) | b.read(0x31) << 8 == 0xFFFF
    assert b.read(0x34) | b.read(0x35) << 8 == (128 - 16) * 16
    assert (b.read(0x5B), b.read(0x5C), b.read(0x5D)) == (0, 0, 0)
    assert b.read(0x14) == 0x06
    assert b.read(0x5F) == 0
    assert (b.read(0x2E), b.read(0x2F)) == (0, 0)  # QEMU sets no checksum


def test_memory_size_bytes_small() -> None:
    b = Board(ram=32 * MiB)
    assert b.read(0x17) | b.read(0x18) << 8 == 31 * 1024
    assert b.read(0x30) | b.read(0x31) << 8 == 31 * 1024
    assert b.read(0x34) | b.read(0x35) << 8 == 16 * 16
    b = Board(ram=512 * 1024)
    assert b.read(0x15) | b.read(0x16) << 8 == 512
    assert b.read(0x17) | b.read(0x34) == 0


def test_memory_size_bytes_large() -> None:
    b = Board(ram=6 * GiB)
    assert b.read(0x17) | b.read(0x18) << 8 == 0xFFFF
    assert b.read(0x34) | b.read(0x35) << 8 == (3 * GiB - 16 * MiB) >> 16
    assert b.read(0x5B) | b.read(0x5C) << 8 | b.read(0x5D) << 16 == (3 * GiB) >> 16
    b = Board(ram=0xD0000000)  # below 3.5 GiB: all of it low
    assert b.read(0x34) | b.read(0x35) << 8 == (0xD0000000 - 16 * MiB) >> 16
    assert b.read(0x5B) == b.read(0x5C) == 0


def test_nmi_mask_bit_and_index_port(b: Board) -> None:
    assert not b.cmos.nmi_masked
    b.io.write(0x70, 1, 0x80 | 0x0D)
    assert b.cmos.nmi_masked
    assert b.io.read(0x71, 1) == 0x80  # index 0x0D, NMI bit not part of it
    assert b.io.read(0x70, 1) == 0xFF
    b.io.write(0x70, 1, 0x0D)
    assert not b.cmos.nmi_masked


def test_read_only_and_ram_bytes(b: Board) -> None:
    b.write(0x0D, 0)
    b.write(0x0C, 0xFF)
    assert (b.read(0x0D), b.read(0x0C)) == (0x80, 0)
    b.write(0x40, 0xA5)
    assert b.read(0x40) == 0xA5
    assert b.cmos.get_memory(0x40) == 0xA5


def test_invalid_time_write_is_harmless(b: Board) -> None:
    b.write(8, 0x13)  # month 13
    b.write(0, 0xFF)
    b.io.write(0x70, 2, 0xFFFF)
    b.io.read(0x70, 4)
    b.write(8, 0x03)
    b.write(0, 0x10)
    assert b.read(8) == 0x03


def test_reset_keeps_time_and_ram_clears_enables(b: Board) -> None:
    b.write(0x40, 0x11)
    b.write(0x0F, 0x05)
    b.write(0x0B, 0x62)  # PIE | AIE | 24h
    b.clock.advance(10**9)
    assert b.irq.level
    b.cmos.reset()
    assert not b.irq.level
    assert b.read(0x0B) == 0x02
    assert b.read(0x0C) == 0
    assert b.read(0x40) == 0x11
    assert b.read(0x0F) == 0
    assert b.read(0) == 0x59
    b.clock.advance(2 * 10**9)
    assert not b.irq.level  # no periodic/alarm interrupts after reset


def test_reset_keeps_the_update_interrupt_enable(b: Board) -> None:
    # as QEMU's mc146818: a reset clears PIE, AIE and SQWE but not UIE
    b.write(0x0B, 0x12)  # UIE | 24h
    b.cmos.reset()
    assert b.read(0x0B) == 0x12
    b.clock.advance(2 * 10**9)
    assert b.irq.level
    assert b.read(0x0C) & 0x90 == 0x90  # IRQF | UF

"""The 8254 programmable interval timer (ports 0x40-0x43) and the port 0x61
system control bits that expose channel 2 (the speaker/calibration timer).

The counters are not stepped: each channel remembers when counting began
(``load_ns``) and every read derives the current count and OUT level from
the host clock, so a guest polling the counter sees it fall in real time.
Channel 0's OUT drives IRQ0 through a host timer armed for the next edge.

Deliberate choices (see the module tests):

* OUT levels follow the 8254 data sheet (mode 2: low for the last clock of
  each period; mode 4: one low clock at terminal count; mode 1: low from the
  trigger to terminal count).  IRQ0 gets one rising edge per OUT rising
  edge: a level in modes 0/1, a pulse in the periodic and strobe modes.
* A control word resets the channel: OUT goes to its initial level and the
  counter waits for a new count (QEMU keeps counting with the old count).
* The gate pauses counting in modes 0, 2, 3, 4; a rising gate restarts
  modes 1, 2, 3, 5.  Modes 1 and 5 also start when the count is written,
  as in QEMU, because channels 0 and 1 have their gates tied high.
* BCD is stored and reported in the status byte but counting is binary.
* IRQ0 edges are coalesced if the host falls behind, and never come
  closer than :data:`MIN_IRQ_INTERVAL_NS` apart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from devices.bus import Clock, IOPortSpace, IrqLine
from devices.byteports import BytePortTable

log = logging.getLogger(__name__)

PIT_FREQ = 1_193_182  # Hz, the 14.31818 MHz crystal divided by 12
NS_PER_S = 1_000_000_000
# The host cannot deliver interrupts faster than this in any useful way.
MIN_IRQ_INTERVAL_NS = 50_000
# DRAM refresh requests toggle port 0x61 bit 4 every 15.085 us (channel 1
# in mode 2 with count 18 on a PC).
REFRESH_TOGGLE_NS = 15_085

# Access (read/write) states, as encoded in control word bits 5-4.
RW_LATCH, RW_LSB, RW_MSB, RW_WORD = 0, 1, 2, 3
_WORD_HI = 4  # second byte of a word access pending

# Port 0x61 bits.
P61_GATE2 = 0x01
P61_SPEAKER = 0x02
P61_WRITABLE = 0x0F  # gate, speaker data, parity/IO check enables
P61_REFRESH = 0x10
P61_OUT2 = 0x20


def ticks_to_ns(ticks: int) -> int:
    """Nanoseconds until ``ticks`` input clocks have elapsed (rounded up so
    that the tick has really happened at that time)."""
    return -((-ticks * NS_PER_S) // PIT_FREQ)


@dataclass
class Channel:
    """One counter.  ``count`` is the initial count (1..0x10000);
    ``armed`` is False between a control word and the count that follows;
    ``frozen`` holds the elapsed ticks while the gate stops counting."""

    index: int
    mode: int = 3
    bcd: bool = False
    rw_mode: int = RW_WORD
    read_state: int = RW_WORD
    write_state: int = RW_WORD
    write_latch: int = 0
    count: int = 0x10000
    armed: bool = True
    gate: bool = True
    load_ns: int = 0
    frozen: int = 0
    latched_count: int | None = None
    latch_state: int = 0  # how the latched count is read out
    status: int | None = None  # latched read-back status
    next_event: int | None = None  # channel 0: tick of the next IRQ edge
    irq_level: bool = False

    def counting(self) -> bool:
        if not self.armed:
            return False
        return self.gate or self.mode in (1, 5)


@dataclass
class PITState:
    channels: list[Channel] = field(default_factory=lambda: [Channel(i) for i in range(3)])
    port61: int = 0  # the writable low bits of port 0x61


class PIT:
    def __init__(self, ioports: IOPortSpace, clock: Clock, irq0: IrqLine) -> None:
        self._clock = clock
        self._irq0 = irq0
        self._lock = threading.Lock()
        self._timer = clock.new_timer(self._on_timer)
        self.state = PITState()
        self.ports = BytePortTable({
            0: (lambda: self._read_counter(0), lambda v: self._write_counter(0, v)),
            1: (lambda: self._read_counter(1), lambda v: self._write_counter(1, v)),
            2: (lambda: self._read_counter(2), lambda v: self._write_counter(2, v)),
            3: (lambda: 0, self._write_control),  # the control port reads as 0 (QEMU)
        }, 4, "pit")
        self.port61 = BytePortTable({0: (self._read_61, self._write_61)}, 1, "port61")
        ioports.register(0x40, 4, self.ports, "pit")
        ioports.register(0x61, 1, self.port61, "port61")
        self.reset()

    def reset(self) -> None:
        """Power-on: every channel in mode 3 with count 0x10000 (18.2 Hz on
        channel 0, as the BIOS expects), channel 2's gate low."""
        with self._lock:
            now = self._clock.now_ns()
            self.state = PITState()
            for ch in self.state.channels:
                ch.gate = ch.index != 2
                ch.load_ns = now
            # The fresh state says the line is low; make it so.
            self._irq0.set_level(False)
            self._schedule(now)

    # -- time arithmetic (lock held)

    def _ticks(self, ch: Channel, now: int) -> int:
        if not ch.counting():
            return ch.frozen
        return (now - ch.load_ns) * PIT_FREQ // NS_PER_S

    def _count_at(self, ch: Channel, d: int) -> int:
        n = ch.count
        if ch.mode == 2:
            value = n - d % n
        elif ch.mode == 3:
            value = n - (2 * d) % n
        else:
            value = n - d
        return value & 0xFFFF

    def _out_at(self, ch: Channel, d: int) -> bool:
        n = ch.count
        if not ch.armed:
            return ch.mode != 0
        if ch.mode in (0, 1):
            return d >= n
        if ch.mode in (4, 5):
            return d != n
        if not ch.gate:
            return True  # modes 2 and 3 force OUT high while the gate is low
        if ch.mode == 2:
            return n < 2 or d % n != n - 1
        return d % n < (n + 1) // 2

    def _next_event(self, ch: Channel, d: int) -> int | None:
        """The tick of channel 0's next IRQ edge after tick ``d``."""
        if ch.mode in (2, 3):
            return (d // ch.count + 1) * ch.count
        return ch.count if d < ch.count else None

    # -- channel 0 -> IRQ0 (lock held)

    def _set_irq(self, level: bool) -> None:
        ch = self.state.channels[0]
        if ch.irq_level != level:
            ch.irq_level = level
            self._irq0.set_level(level)

    def _schedule(self, now: int) -> None:
        ch = self.state.channels[0]
        ch.next_event = None
        if ch.counting():
            ch.next_event = self._next_event(ch, self._ticks(ch, now))
        if ch.next_event is None:
            self._timer.cancel()
            return
        deadline = ch.load_ns + ticks_to_ns(ch.next_event)
        self._timer.start_ns(max(deadline, now + 1))

    def _on_timer(self) -> None:
        with self._lock:
            ch = self.state.channels[0]
            now = self._clock.now_ns()
            d = self._ticks(ch, now)
            if ch.next_event is not None and ch.counting() and d >= ch.next_event:
                if ch.mode in (0, 1):
                    self._set_irq(True)  # OUT rises at terminal count and stays
                else:
                    self._irq0.pulse()
            self._schedule(now)
            if ch.next_event is not None and ch.mode in (2, 3):
                # Keep the host from spinning on a tiny guest period.
                deadline = ch.load_ns + ticks_to_ns(ch.next_event)
                if deadline < now + MIN_IRQ_INTERVAL_NS:
                    self._timer.start_ns(now + MIN_IRQ_INTERVAL_NS)

    # -- ports 0x40-0x43

    def _load_count(self, ch: Channel, value: int) -> None:
        now = self._clock.now_ns()
        ch.count = value or 0x10000
        ch.armed = True
        ch.load_ns = now
        ch.frozen = 0
        if ch.index == 0:
            if ch.mode in (0, 1):
                self._set_irq(False)
            self._schedule(now)

    def _write_counter(self, index: int, value: int) -> None:
        with self._lock:
            ch = self.state.channels[index]
            if ch.write_state == RW_LSB:
                self._load_count(ch, value)
            elif ch.write_state == RW_MSB:
                self._load_count(ch, value << 8)
            elif ch.write_state == RW_WORD:
                ch.write_latch = value
                ch.write_state = _WORD_HI
            else:
                self._load_count(ch, ch.write_latch | value << 8)
                ch.write_state = RW_WORD

    def _read_counter(self, index: int) -> int:
        with self._lock:
            ch = self.state.channels[index]
            if ch.status is not None:
                value, ch.status = ch.status, None
                return value
            if ch.latched_count is not None:
                latched = ch.latched_count
                if ch.latch_state == RW_MSB:
                    ch.latched_count = None
                    return latched >> 8
                if ch.latch_state == RW_WORD:
                    ch.latch_state = RW_MSB
                else:
                    ch.latched_count = None
                return latched & 0xFF
            count = self._count_at(ch, self._ticks(ch, self._clock.now_ns()))
            if ch.read_state == RW_LSB:
                return count & 0xFF
            if ch.read_state == RW_MSB:
                return count >> 8
            if ch.read_state == RW_WORD:
                ch.read_state = _WORD_HI
                return count & 0xFF
            ch.read_state = RW_WORD
            return count >> 8

    def _latch(self, ch: Channel, now: int) -> None:
        if ch.latched_count is None:  # a second latch before reading is ignored
            ch.latched_count = self._count_at(ch, self._ticks(ch, now))
            ch.latch_state = ch.rw_mode

    def _write_control(self, value: int) -> None:
        with self._lock:
            now = self._clock.now_ns()
            select = value >> 6
            if select == 3:
                self._read_back(value, now)
                return
            ch = self.state.channels[select]
            access = (value >> 4) & 3
            if access == RW_LATCH:
                self._latch(ch, now)
                return
            mode = (value >> 1) & 7
            ch.mode = mode - 4 if mode >= 6 else mode  # 6, 7 alias 2, 3
            ch.bcd = bool(value & 1)
            ch.rw_mode = ch.read_state = ch.write_state = access
            ch.armed = False
            ch.frozen = 0
            ch.latched_count = None
            ch.status = None
            if ch.index == 0:
                self._set_irq(False)
                self._schedule(now)

    def _read_back(self, value: int, now: int) -> None:
        for ch in self.state.channels:
            if not value & (2 << ch.index):
                continue
            if not value & 0x20:
                self._latch(ch, now)
            if not value & 0x10 and ch.status is None:
                out = self._out_at(ch, self._ticks(ch, now))
                ch.status = ((out << 7) | ((not ch.armed) << 6) | (ch.rw_mode << 4)
                             | (ch.mode << 1) | ch.bcd)

    # -- port 0x61

    def _set_gate2(self, gate: bool) -> None:
        ch = self.state.channels[2]
        if gate == ch.gate:
            return
        now = self._clock.now_ns()
        if not gate:
            ch.frozen = self._ticks(ch, now)
            ch.gate = False
            return
        ch.gate = True
        if ch.mode in (1, 2, 3, 5):
            ch.load_ns = now  # rising gate (re)triggers these modes
        else:
            ch.load_ns = now - ticks_to_ns(ch.frozen)  # resume where it stopped

    def _read_61(self) -> int:
        with self._lock:
            now = self._clock.now_ns()
            ch = self.state.channels[2]
            out = self._out_at(ch, self._ticks(ch, now))
            refresh = P61_REFRESH if (now // REFRESH_TOGGLE_NS) & 1 else 0
            return self.state.port61 | refresh | (P61_OUT2 if out else 0)

    def _write_61(self, value: int) -> None:
        with self._lock:
            self.state.port61 = value & P61_WRITABLE
            self._set_gate2(bool(value & P61_GATE2))

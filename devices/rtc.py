"""The MC146818 real-time clock and its 128 bytes of CMOS RAM (ports
0x70/0x71), as on a PC: index at 0x70 (bit 7 is the chipset's NMI mask),
data at 0x71.

The clock runs on host time: registers 0-9 and the century byte are
computed from ``wall time at power-on + elapsed Clock time`` whenever the
guest reads them, in BCD or binary and 12- or 24-hour format as register B
asks.  A guest that writes the time moves that base; SET freezes the
registers while it writes them.

Interrupts on IRQ8 (register C flags, cleared by reading C): periodic (PF,
rate from register A), update-ended (UF, each second) and alarm (AF, when
the alarm registers match, 0xC0-0xFF meaning "any").  UIP reads as set in
the last 244 us before each update, as QEMU computes it.

The CMOS bytes the firmware reads for memory sizing are filled as QEMU's
``pc_cmos_init`` does.  QEMU writes no checksum at 0x2E/0x2F for a PC, and
neither do we.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devices.bus import Clock, IOPortSpace, IrqLine
from devices.byteports import BytePortTable

log = logging.getLogger(__name__)

NS = 1_000_000_000
RTC_CLOCK_RATE = 32768
UIP_HOLD_NS = 8 * NS // RTC_CLOCK_RATE  # 244 us

SECONDS, SECONDS_ALARM, MINUTES, MINUTES_ALARM, HOURS, HOURS_ALARM = 0, 1, 2, 3, 4, 5
DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR = 6, 7, 8, 9
REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
SHUTDOWN_STATUS = 0x0F
EQUIPMENT = 0x14
CENTURY = 0x32
IBM_PS2_CENTURY = 0x37
TIME_REGS = {SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY}
ALARM_DONT_CARE = 0xC0

A_UIP = 0x80
A_DIVIDER = 0x70
B_SET, B_PIE, B_AIE, B_UIE, B_SQWE, B_DM, B_24H = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02
C_IRQF, C_PF, C_AF, C_UF = 0x80, 0x40, 0x20, 0x10
C_MASK = 0x70

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def split_ram(ram_size: int) -> tuple[int, int]:
    """RAM below and above 4 GiB as QEMU's i440FX machine lays it out:
    everything low up to 3.5 GiB; from 3.5 GiB on, 3 GiB low and the rest
    above 4 GiB (the 1 GiB-aligned split of current machine types)."""
    if ram_size >= 0xE0000000:
        return 0xC0000000, ram_size - 0xC0000000
    return ram_size, 0


def periodic_ticks(rate: int) -> int:
    """Period of the periodic interrupt in 32.768 kHz ticks (0 = off);
    rates 1 and 2 alias 8 and 9 on this part."""
    if rate == 0:
        return 0
    if rate <= 2:
        rate += 7
    return 1 << (rate - 1)


@dataclass
class CMOSState:
    """CMOS RAM (registers 0-0x0D are the clock), the index latch, and the
    clock's time base: guest time = ``base_s`` + (now - ``base_ns``) +
    ``offset_ns``."""

    data: bytearray = field(default_factory=lambda: bytearray(128))
    index: int = 0
    nmi_masked: bool = False
    base_s: int = 0
    base_ns: int = 0
    offset_ns: int = 0
    periodic_start_ns: int = 0


class CMOS:
    def __init__(self, ioports: IOPortSpace, clock: Clock, irq8: IrqLine, ram_size: int,
                 *, below_4g: int | None = None, cpus: int = 1,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._irq = irq8
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._periodic_timer = clock.new_timer(self._on_periodic)
        self._update_timer = clock.new_timer(self._on_update)
        if below_4g is None:
            self.below_4g, self.above_4g = split_ram(ram_size)
        else:
            self.below_4g, self.above_4g = below_4g, max(0, ram_size - below_4g)
        self.cpus = cpus
        self.state = CMOSState()
        self.ports = BytePortTable({
            0: (lambda: 0xFF, self._write_index),  # the index port is write-only
            1: (self._read_data, self._write_data),
        }, 2, "cmos")
        ioports.register(0x70, 2, self.ports, "cmos")
        self._power_on()

    # -- public

    @property
    def nmi_masked(self) -> bool:
        """Bit 7 of the last write to port 0x70 (NMI disabled)."""
        return self.state.nmi_masked

    def get_memory(self, index: int) -> int:
        """A CMOS byte as stored (the board's view, no side effects)."""
        with self._lock:
            return self.state.data[index & 0x7F]

    def set_memory(self, index: int, value: int) -> None:
        with self._lock:
            self.state.data[index & 0x7F] = value & 0xFF

    def reset(self) -> None:
        """A system reset: the RTC keeps time and its battery-backed RAM
        (as on a PC and in QEMU), the periodic, alarm and square-wave enables
        and the interrupt flags are cleared (the update-ended enable stays, as
        in QEMU), a shutdown status other than 0xFE is cleared."""
        with self._lock:
            d = self.state.data
            if d[SHUTDOWN_STATUS] != 0xFE:
                d[SHUTDOWN_STATUS] = 0
            d[REG_B] &= ~(B_PIE | B_AIE | B_SQWE)
            d[REG_C] &= ~(C_UF | C_IRQF | C_PF | C_AF)
            self.state.index = 0
            self.state.nmi_masked = False
            self._irq.set_level(False)
            self._update_periodic(self._clock.now_ns())

    # -- power-on contents

    def _power_on(self) -> None:
        with self._lock:
            d = self.state.data
            d[REG_A] = 0x26  # 32.768 kHz time base, 1024 Hz periodic rate
            d[REG_B] = B_24H
            d[REG_C] = 0
            d[REG_D] = 0x80  # valid RAM and time
            self._fill_board_bytes()
            wall = self._wall_clock()
            now = self._clock.now_ns()
            self.state.base_s = int(wall)
            self.state.base_ns = now
            self.state.offset_ns = int((wall - int(wall)) * NS)
            self._update_fields(now)
            self._irq.set_level(False)
            self._schedule_update(now)

    def _fill_board_bytes(self) -> None:
        d = self.state.data
        low = self.below_4g

        def put16(off: int, v: int) -> None:
            d[off], d[off + 1] = v & 0xFF, (v >> 8) & 0xFF

        put16(0x15, min(low // KiB, 640))  # base memory in KiB
        ext = min((low - MiB) // KiB, 0xFFFF) if low > MiB else 0
        put16(0x17, ext)  # extended memory in KiB, up to 64 MiB
        put16(0x30, ext)
        above16 = min((low - 16 * MiB) // (64 * KiB), 0xFFFF) if low > 16 * MiB else 0
        put16(0x34, above16)  # 16 MiB .. 4 GiB in 64 KiB units
        high = self.above_4g // (64 * KiB)
        d[0x5B], d[0x5C], d[0x5D] = high & 0xFF, (high >> 8) & 0xFF, (high >> 16) & 0xFF
        d[EQUIPMENT] = 0x02 | 0x04  # FPU present, PS/2 mouse present
        d[0x5F] = self.cpus - 1 if self.cpus <= 0xFF else 0

    # -- time arithmetic (lock held)

    def _running(self) -> bool:
        d = self.state.data
        return not d[REG_B] & B_SET and (d[REG_A] & A_DIVIDER) <= 0x20

    def _guest_ns(self, now: int) -> int:
        s = self.state
        return s.base_s * NS + (now - s.base_ns) + s.offset_ns

    def _to_reg(self, v: int) -> int:
        if self.state.data[REG_B] & B_DM:
            return v
        return ((v // 10) << 4) | (v % 10)

    def _from_reg(self, v: int) -> int:
        if v & 0xC0 == 0xC0:
            return -1
        if self.state.data[REG_B] & B_DM:
            return v
        return (v >> 4) * 10 + (v & 0x0F)

    def _update_fields(self, now: int) -> None:
        """Copy guest time into the time registers (not while SET)."""
        d = self.state.data
        if d[REG_B] & B_SET:
            return
        tm = time.gmtime(self._guest_ns(now) // NS)
        d[SECONDS] = self._to_reg(tm.tm_sec)
        d[MINUTES] = self._to_reg(tm.tm_min)
        if d[REG_B] & B_24H:
            d[HOURS] = self._to_reg(tm.tm_hour)
        else:
            h12 = tm.tm_hour % 12 or 12
            d[HOURS] = self._to_reg(h12) | (0x80 if tm.tm_hour >= 12 else 0)
        d[DAY_OF_WEEK] = self._to_reg((tm.tm_wday + 1) % 7 + 1)  # Sunday = 1
        d[DAY_OF_MONTH] = self._to_reg(tm.tm_mday)
        d[MONTH] = self._to_reg(tm.tm_mon)
        d[YEAR] = self._to_reg(tm.tm_year % 100)
        d[CENTURY] = self._to_reg(tm.tm_year // 100)

    def _set_time(self, now: int) -> None:
        """Take the time registers the guest wrote as the new time base."""
        d = self.state.data
        hour = self._from_reg(d[HOURS] & 0x7F)
        if not d[REG_B] & B_24H:
            hour = hour % 12 + (12 if d[HOURS] & 0x80 else 0)
        fields = (self._from_reg(d[CENTURY]) * 100 + self._from_reg(d[YEAR]),
                  self._from_reg(d[MONTH]), self._from_reg(d[DAY_OF_MONTH]),
                  hour, self._from_reg(d[MINUTES]), self._from_reg(d[SECONDS]))
        try:
            if min(fields) < 0:
                raise ValueError("don't-care value in a time register")
            seconds = calendar.timegm(fields + (0, 0, 0))
        except (ValueError, OverflowError) as exc:
            log.debug("rtc: guest wrote an invalid time %s (%s); clock not moved", fields, exc)
            return
        self.state.base_s = seconds
        self.state.base_ns = now

    def _update_in_progress(self, now: int) -> bool:
        return self._running() and self._guest_ns(now) % NS >= NS - UIP_HOLD_NS

    # -- interrupts (lock held)

    def _raise_flags(self, flags: int) -> None:
        d = self.state.data
        new = flags & ~d[REG_C]
        d[REG_C] |= flags
        if new & d[REG_B] & C_MASK:
            d[REG_C] |= C_IRQF
            self._irq.set_level(True)

    def _schedule_update(self, now: int) -> None:
        if self.state.data[REG_A] & 0x60 == 0x60:
            self._update_timer.cancel()  # dividers held in reset: no updates
            return
        self._update_timer.start_ns(now + NS - self._guest_ns(now) % NS)

    def _on_update(self) -> None:
        with self._lock:
            now = self._clock.now_ns()
            d = self.state.data
            if self._running():
                self._update_fields(now)
                flags = C_UF
                if all(a & ALARM_DONT_CARE == ALARM_DONT_CARE or a == d[cur]
                       for a, cur in ((d[SECONDS_ALARM], SECONDS), (d[MINUTES_ALARM], MINUTES),
                                      (d[HOURS_ALARM], HOURS))):
                    flags |= C_AF
                self._raise_flags(flags)
            self._schedule_update(now)

    def _period_ns(self, k: int, ticks: int) -> int:
        # Rounded up, so that at this time period k has really elapsed.
        return self.state.periodic_start_ns - (-k * ticks * NS // RTC_CLOCK_RATE)

    def _update_periodic(self, now: int, restart: bool = True) -> None:
        d = self.state.data
        ticks = periodic_ticks(d[REG_A] & 0x0F) if d[REG_B] & B_PIE else 0
        if not ticks:
            self._periodic_timer.cancel()
            return
        if restart:
            self.state.periodic_start_ns = now
        # The next period boundary after now (late periods are coalesced).
        elapsed = now - self.state.periodic_start_ns
        k = elapsed * RTC_CLOCK_RATE // (ticks * NS) + 1
        self._periodic_timer.start_ns(self._period_ns(k, ticks))

    def _on_periodic(self) -> None:
        with self._lock:
            if self.state.data[REG_B] & B_PIE:
                self._raise_flags(C_PF)
            self._update_periodic(self._clock.now_ns(), restart=False)

    # -- ports

    def _write_index(self, value: int) -> None:
        with self._lock:
            self.state.index = value & 0x7F
            self.state.nmi_masked = bool(value & 0x80)

    def _read_data(self) -> int:
        with self._lock:
            s = self.state
            d = s.data
            now = self._clock.now_ns()
            if s.index == IBM_PS2_CENTURY:
                s.index = CENTURY
            if s.index in TIME_REGS:
                if self._running():
                    self._update_fields(now)
                return d[s.index]
            if s.index == REG_A:
                return d[REG_A] | (A_UIP if self._update_in_progress(now) else 0)
            if s.index == REG_C:
                value = d[REG_C]
                d[REG_C] = 0
                self._irq.set_level(False)
                return value
            return d[s.index]

    def _write_data(self, value: int) -> None:
        with self._lock:
            s = self.state
            d = s.data
            now = self._clock.now_ns()
            index = s.index
            if index == IBM_PS2_CENTURY:
                index = s.index = CENTURY
            if index in TIME_REGS:
                if self._running():
                    self._update_fields(now)  # the other fields must be current
                d[index] = value
                if self._running():
                    self._set_time(now)
                    self._schedule_update(now)
            elif index in (SECONDS_ALARM, MINUTES_ALARM, HOURS_ALARM):
                d[index] = value
            elif index == REG_A:
                self._write_reg_a(value, now)
            elif index == REG_B:
                self._write_reg_b(value, now)
            elif index in (REG_C, REG_D):
                log.debug("rtc: write %#x to read-only register %#x ignored", value, index)
            else:
                d[index] = value

    def _write_reg_a(self, value: int, now: int) -> None:
        d = self.state.data
        rate_changed = (d[REG_A] ^ value) & 0x0F
        if value & 0x60 == 0x60:
            if self._running():
                self._update_fields(now)  # the clock stops here
        elif d[REG_A] & 0x60 == 0x60 and value & A_DIVIDER <= 0x20:
            # Releasing the divider reset: the first update comes half a
            # second later.
            if not d[REG_B] & B_SET:
                self.state.offset_ns = NS // 2
                self._set_time(now)
        d[REG_A] = value & ~A_UIP  # UIP is read-only
        if rate_changed:
            self._update_periodic(now)
        self._schedule_update(now)

    def _write_reg_b(self, value: int, now: int) -> None:
        d = self.state.data
        pie_changed = (d[REG_B] ^ value) & B_PIE
        if value & B_SET:
            if self._running():
                self._update_fields(now)  # freeze the registers at this time
            value &= ~B_UIE
        elif d[REG_B] & B_SET and d[REG_A] & A_DIVIDER <= 0x20:
            # Leaving SET: the written time starts now, keeping the phase
            # within the second.
            self.state.offset_ns = self._guest_ns(now) % NS
            self._set_time(now)  # read with the old format bits, as QEMU
        # Enabling an interrupt whose flag is already set fires it now.
        if value & d[REG_C] & C_MASK:
            d[REG_C] |= C_IRQF
            self._irq.set_level(True)
        else:
            d[REG_C] &= ~C_IRQF
            self._irq.set_level(False)
        d[REG_B] = value
        if pie_changed:
            self._update_periodic(now)
        self._schedule_update(now)

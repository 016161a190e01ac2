"""The 8042 keyboard controller (ports 0x60 data, 0x64 status/command)
with a PS/2 keyboard on IRQ1 and a PS/2 mouse on IRQ12.

The controller has one output buffer.  When it is empty and something is
waiting -- a controller reply first, then keyboard bytes, then mouse bytes,
each source only while its interface is enabled in the command byte -- the
next byte is moved in, OBF (and AUXB for mouse bytes) is set and the
interrupt of that source is raised if the command byte enables it.  Reading
port 0x60 empties the buffer and lowers the line, and the next byte comes
in at once, so every byte is a fresh rising edge.  This is QEMU's pckbd.c
model without its 1 ms keyboard throttle timer.

It is also the SPICE keyboard and mouse: :meth:`push_scan_freg` takes the
client's set-1 scancode bytes, :meth:`motion` / :meth:`buttons` its
relative mouse events (SPICE button mask: bit0 left, bit1 middle, bit2
right; SPICE dy grows downward).  Those come from the main-loop thread,
port accesses from the vCPU thread; one lock covers both and nothing here
blocks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from devices.bus import IOPortSpace, IrqLine
from devices.byteports import BytePortTable
from devices.ps2 import PS2Keyboard, PS2Mouse

log = logging.getLogger(__name__)

# Status register.
STAT_OBF = 0x01
STAT_SELFTEST = 0x04
STAT_CMD = 0x08
STAT_UNLOCKED = 0x10
STAT_AUX_OBF = 0x20

# Command byte ("mode").
MODE_KBD_INT = 0x01
MODE_AUX_INT = 0x02
MODE_SYS = 0x04
MODE_DISABLE_KBD = 0x10
MODE_DISABLE_AUX = 0x20
MODE_XLATE = 0x40

# Output port.
OUT_RESET = 0x01  # 0 holds the CPU in reset
OUT_A20 = 0x02
OUT_KBD_OBF = 0x10
OUT_AUX_OBF = 0x20
OUT_ONES = 0xCC  # unused lines read high

# Where the byte in the output buffer came from.
SRC_NONE, SRC_CTRL_KBD, SRC_CTRL_AUX, SRC_KBD, SRC_AUX = range(5)

# Commands taking a parameter byte through port 0x60.
CMD_WRITE_MODE = 0x60
CMD_WRITE_OUTPORT = 0xD1
CMD_WRITE_OBUF = 0xD2
CMD_WRITE_AUX_OBUF = 0xD3
CMD_WRITE_AUX = 0xD4


@dataclass
class ControllerState:
    mode: int = MODE_KBD_INT | MODE_AUX_INT
    status: int = STAT_CMD | STAT_UNLOCKED
    outport: int = OUT_RESET | OUT_A20 | OUT_ONES
    write_cmd: int = 0  # command waiting for its byte on port 0x60
    ctrl_byte: int | None = None  # a controller reply waiting for the buffer
    ctrl_aux: bool = False  # ... to be delivered as if from the mouse (0xD3)
    obdata: int = 0
    obsrc: int = SRC_NONE


class I8042:
    def __init__(self, ioports: IOPortSpace, irq1: IrqLine, irq12: IrqLine,
                 on_reset: Callable[[], None],
                 on_a20: Callable[[bool], None] | None = None) -> None:
        self._irq1 = irq1
        self._irq12 = irq12
        self._on_reset = on_reset
        self.on_a20 = on_a20
        # Told the lock LEDs (SPICE bits) whenever the guest sets them, so
        # the board can forward them to the SPICE server.
        self.on_leds: Callable[[int], None] | None = None
        self._lock = threading.Lock()
        self._levels = [False, False]
        self.kbd = PS2Keyboard()
        self.mouse = PS2Mouse()
        self.state = ControllerState()
        self._commands: dict[int, Callable[[], None]] = {
            0x20: lambda: self._reply(self.state.mode),
            0xA7: lambda: self._set_mode_bits(MODE_DISABLE_AUX, True),
            0xA8: lambda: self._set_mode_bits(MODE_DISABLE_AUX, False),
            0xA9: lambda: self._reply(0x00),  # aux interface test: OK
            0xAA: self._self_test,
            0xAB: lambda: self._reply(0x00),  # keyboard interface test: OK
            0xAD: lambda: self._set_mode_bits(MODE_DISABLE_KBD, True),
            0xAE: lambda: self._set_mode_bits(MODE_DISABLE_KBD, False),
            0xC0: lambda: self._reply(0x80),  # input port: keyboard not inhibited
            0xD0: lambda: self._reply(self._outport()),
            0xDD: lambda: self._set_a20(False),
            0xDF: lambda: self._set_a20(True),
            0xFE: self._request_reset,
            0xFF: lambda: None,
        }
        for cmd in (CMD_WRITE_MODE, CMD_WRITE_OUTPORT, CMD_WRITE_OBUF, CMD_WRITE_AUX_OBUF,
                    CMD_WRITE_AUX):
            self._commands[cmd] = lambda c=cmd: setattr(self.state, "write_cmd", c)
        self._deferred: list[Callable[[], None]] = []
        self.ports = {
            0x60: BytePortTable({0: (self._read_data, self._write_data)}, 1, "i8042-data"),
            0x64: BytePortTable({0: (self._read_status, self._write_command)}, 1, "i8042-cmd"),
        }
        for base, table in self.ports.items():
            ioports.register(base, 1, table, table.name)
        self.reset()

    # -- public state

    @property
    def a20_enabled(self) -> bool:
        return bool(self.state.outport & OUT_A20)

    @property
    def leds(self) -> int:
        """Keyboard LEDs as the guest set them: bit0 scroll, bit1 num,
        bit2 caps (the same bits SPICE uses)."""
        with self._lock:
            return self.kbd.state.leds

    def reset(self) -> None:
        """Power-on: controller, keyboard and mouse defaults, queues empty,
        both interrupt lines low."""
        with self._lock:
            self.state = ControllerState()
            self.kbd.reset()
            self.kbd.translate = False
            self.mouse.reset()
            self._update_lines(force=True)

    # -- KbdInterface / MouseInterface (main loop thread)

    def push_scan_freg(self, byte: int) -> None:
        with self._lock:
            self.kbd.push_set1(byte)
            self._refill()

    def get_leds(self) -> int:
        return self.leds

    def motion(self, dx: int, dy: int, dz: int, buttons: int) -> None:
        with self._lock:
            self.mouse.event(dx, -dy, dz, self._ps2_buttons(buttons))
            self._refill()

    def buttons(self, buttons: int) -> None:
        with self._lock:
            self.mouse.event(0, 0, 0, self._ps2_buttons(buttons))
            self._refill()

    @staticmethod
    def _ps2_buttons(spice: int) -> int:
        # SPICE: left 1, middle 2, right 4.  PS/2: left 1, right 2, middle 4.
        return (spice & 1) | (spice & 2) << 1 | (spice & 4) >> 1

    # -- output buffer logic (lock held)

    def _pending_source(self) -> int:
        st = self.state
        if st.ctrl_byte is not None:
            return SRC_CTRL_AUX if st.ctrl_aux else SRC_CTRL_KBD
        if self.kbd.has_data() and not st.mode & MODE_DISABLE_KBD:
            return SRC_KBD
        if self.mouse.has_data() and not st.mode & MODE_DISABLE_AUX:
            return SRC_AUX
        return SRC_NONE

    def _refill(self) -> None:
        """Move the next waiting byte into an empty output buffer."""
        st = self.state
        if st.status & STAT_OBF:
            return
        src = self._pending_source()
        if src == SRC_NONE:
            return
        if src in (SRC_CTRL_KBD, SRC_CTRL_AUX):
            assert st.ctrl_byte is not None
            st.obdata, st.ctrl_byte = st.ctrl_byte, None
        elif src == SRC_KBD:
            st.obdata = self.kbd.read()
        else:
            st.obdata = self.mouse.read()
        st.obsrc = src
        st.status |= STAT_OBF
        if src in (SRC_AUX, SRC_CTRL_AUX):
            st.status |= STAT_AUX_OBF
        self._update_lines()

    def _update_lines(self, force: bool = False) -> None:
        st = self.state
        kbd = aux = False
        if st.status & STAT_OBF:
            if st.status & STAT_AUX_OBF:
                aux = bool(st.mode & MODE_AUX_INT)
            else:
                kbd = bool(st.mode & MODE_KBD_INT) and not st.mode & MODE_DISABLE_KBD
        for i, (line, level) in enumerate(((self._irq1, kbd), (self._irq12, aux))):
            if force or self._levels[i] != level:
                self._levels[i] = level
                line.set_level(level)

    def _reply(self, byte: int, aux: bool = False) -> None:
        self.state.ctrl_byte = byte & 0xFF
        self.state.ctrl_aux = aux
        self._refill()

    def _outport(self) -> int:
        st = self.state
        value = st.outport & ~(OUT_KBD_OBF | OUT_AUX_OBF)
        if st.status & STAT_OBF:
            value |= OUT_AUX_OBF if st.status & STAT_AUX_OBF else OUT_KBD_OBF
        return value

    # -- controller commands (lock held)

    def _set_mode_bits(self, bits: int, on: bool) -> None:
        st = self.state
        st.mode = st.mode | bits if on else st.mode & ~bits
        self._update_lines()
        self._refill()

    def _self_test(self) -> None:
        self.state.status |= STAT_SELFTEST
        self._reply(0x55)

    def _set_a20(self, on: bool) -> None:
        st = self.state
        old = st.outport
        st.outport = old | OUT_A20 if on else old & ~OUT_A20
        if (old ^ st.outport) & OUT_A20 and self.on_a20 is not None:
            callback = self.on_a20
            self._deferred.append(lambda: callback(on))

    def _request_reset(self) -> None:
        log.info("i8042: guest requested a system reset")
        self._deferred.append(self._on_reset)

    def _write_outport(self, value: int) -> None:
        self._set_a20(bool(value & OUT_A20))
        self.state.outport = value
        if not value & OUT_RESET:
            self._request_reset()

    # -- ports

    def _run_deferred(self) -> None:
        """Callbacks into the board run after the lock is released: a reset
        handler will call back into :meth:`reset`."""
        with self._lock:
            todo, self._deferred = self._deferred, []
        for callback in todo:
            callback()

    def _read_status(self) -> int:
        with self._lock:
            return self.state.status

    def _write_command(self, value: int) -> None:
        with self._lock:
            if value & 0xF0 == 0xF0:
                # Pulse output port bits 3-0 low for those clear in the
                # command; only bit 0 (CPU reset) does anything.
                value = 0xFE if not value & 1 else 0xFF
            handler = self._commands.get(value)
            if handler is None:
                log.debug("i8042: unsupported controller command %#x", value)
            else:
                handler()
        self._run_deferred()

    def _read_data(self) -> int:
        with self._lock:
            st = self.state
            value = st.obdata
            if st.status & STAT_OBF:
                st.status &= ~(STAT_OBF | STAT_AUX_OBF)
                self._update_lines()
                self._refill()
            return value

    def _write_data(self, value: int) -> None:
        with self._lock:
            st = self.state
            leds = self.kbd.state.leds
            cmd, st.write_cmd = st.write_cmd, 0
            if cmd == 0:
                self.kbd.write(value)
                # Talking to the keyboard re-enables its interface.
                st.mode &= ~MODE_DISABLE_KBD
            elif cmd == CMD_WRITE_MODE:
                st.mode = value
                self.kbd.translate = bool(value & MODE_XLATE)
                self._update_lines()
            elif cmd == CMD_WRITE_OUTPORT:
                self._write_outport(value)
            elif cmd == CMD_WRITE_OBUF:
                self._reply(value)
            elif cmd == CMD_WRITE_AUX_OBUF:
                self._reply(value, aux=True)
            elif cmd == CMD_WRITE_AUX:
                self.mouse.write(value)
                st.mode &= ~MODE_DISABLE_AUX
            self._refill()
            if self.kbd.state.leds != leds and self.on_leds is not None:
                callback, new_leds = self.on_leds, self.kbd.state.leds
                self._deferred.append(lambda: callback(new_leds))
        self._run_deferred()

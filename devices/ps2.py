"""PS/2 keyboard and mouse, the two devices behind the i8042 controller.

These are plain state machines with byte queues; the controller
(:mod:`devices.i8042`) owns the lock, moves bytes from the queues into its
output buffer and raises the interrupts.  Behaviour follows QEMU's
hw/input/ps2.c unless a comment says otherwise.

Keyboard input arrives as PC/AT set-1 bytes (what a SPICE client sends).
QEMU turns those into key numbers and re-encodes them in whatever set the
guest selected; for every key both sets can express, that is the same as
converting the set-1 byte to set 2 and, when the controller translates,
back through the 8042 translation table -- which is what we do, one key
event at a time so a multi-byte sequence is queued whole or not at all.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

QUEUE_SIZE = 16  # bytes a PS/2 device buffers (QEMU's PS2_QUEUE_SIZE)

ACK, RESEND, BAT_OK, KBD_ID = 0xFA, 0xFE, 0xAA, 0xAB

# The 8042's set 2 -> set 1 translation for codes 0x00-0x7F.  Codes 0x80
# and up translate to themselves except 0x83 (F7) and 0x84 (SysRq).
_XLATE_LOW = bytes.fromhex(
    "ff43413f3d3b3c58644442403e0f295965382a701d10025a66712c1f1e11035b"
    "672e2d201205045c68392f211413065d693130232215075e6a7232241608095f"
    "6b332517180b0a606c34352627190c616d7328741a0d626e3a361c1b752b6376"
    "55567778797a0e7b7c4f7d4b477e7f6f5253504c4d480145574e514a37494654")
TRANSLATE = bytearray(range(256))
TRANSLATE[:0x80] = _XLATE_LOW
TRANSLATE[0x83], TRANSLATE[0x84] = 0x41, 0x54


def _set1_to_set2() -> bytes:
    """Inverse of the translation for make codes.  Where two set-2 codes
    translate to the same set-1 code, the real key wins (F7 = 0x83,
    SysRq = 0x84, not the unused 0x02 and 0x7F)."""
    inv = bytearray(0x80)
    for code2 in range(0x85):
        s1 = TRANSLATE[code2]
        if s1 < 0x80 and code2 not in (0x00, 0x02, 0x7F):
            inv[s1] = code2
    return bytes(inv)


SET1_TO_SET2 = _set1_to_set2()


@dataclass
class KeyboardState:
    """``replies`` are command responses, delivered ahead of queued
    scancodes; a new command discards replies not yet read."""

    scancodes: deque[int] = field(default_factory=deque)
    replies: deque[int] = field(default_factory=deque)
    write_cmd: int = -1  # command waiting for its parameter byte
    scan_enabled: bool = True
    scancode_set: int = 2
    leds: int = 0  # bit0 scroll, bit1 num, bit2 caps
    prefix: int = 0  # an 0xE0 byte from the host waiting for its key
    last: int = 0  # last byte read (re-read when nothing is queued)


class PS2Keyboard:
    def __init__(self) -> None:
        self.state = KeyboardState()
        self.translate = False  # set by the controller (command byte XLATE)

    def reset(self) -> None:
        self.state = KeyboardState()

    # -- queue

    def has_data(self) -> bool:
        return bool(self.state.replies or self.state.scancodes)

    def read(self) -> int:
        s = self.state
        if s.replies:
            s.last = s.replies.popleft()
        elif s.scancodes:
            s.last = s.scancodes.popleft()
        return s.last

    def _reply(self, *data: int) -> None:
        self.state.replies.extend(data)

    # -- commands from the guest

    def write(self, value: int) -> None:
        s = self.state
        s.replies.clear()
        cmd, s.write_cmd = s.write_cmd, -1
        if cmd == 0xF0:  # scancode set parameter
            if value == 0:
                cur = s.scancode_set
                self._reply(ACK, TRANSLATE[cur] if self.translate else cur)
            elif value in (1, 2):
                s.scancode_set = value
                self._reply(ACK)
            else:
                # Set 3 is not implemented; refusing makes the guest stay
                # in the set it has.
                log.debug("ps2 kbd: scancode set %#x refused", value)
                self._reply(RESEND)
        elif cmd == 0xED:
            s.leds = value & 0x07
            self._reply(ACK)
        elif cmd in (0xF3, 0xFC):  # typematic rate/delay; set-3 key mode
            self._reply(ACK)
        else:
            self._command(value)

    def _command(self, value: int) -> None:
        s = self.state
        if value in (0xED, 0xF0, 0xF3, 0xFC):
            s.write_cmd = value
            self._reply(ACK)
        elif value == 0xEE:  # echo
            self._reply(0xEE)
        elif value == 0xF2:  # identify: an MF2 keyboard
            self._reply(ACK, KBD_ID, 0x41 if self.translate else 0x83)
        elif value == 0xF4:
            s.scan_enabled = True
            self._reply(ACK)
        elif value in (0xF5, 0xF6):  # reset to defaults, scanning off / on
            self._power_on_defaults()
            s.scan_enabled = value == 0xF6
            self._reply(ACK)
        elif value == 0xFF:
            self._power_on_defaults()
            self._reply(ACK, BAT_OK)
        elif value in (0x00, 0xFA):
            self._reply(ACK)
        else:
            log.debug("ps2 kbd: unknown command %#x", value)
            self._reply(RESEND)

    def _power_on_defaults(self) -> None:
        s = self.state
        s.scan_enabled = True
        s.scancode_set = 2
        s.scancodes.clear()
        s.replies.clear()
        s.leds = 0
        s.prefix = 0

    # -- keys from the host

    def push_set1(self, byte: int) -> None:
        """One set-1 byte from the host.  Returns silently when scanning is
        off or the queue is full (the key is lost, as on a real keyboard)."""
        s = self.state
        byte &= 0xFF
        if not s.scan_enabled:
            return
        if byte == 0xE0:
            s.prefix = 0xE0
            return
        codes = self._encode(byte, s.prefix)
        s.prefix = 0
        if not codes:
            log.debug("ps2 kbd: set-1 byte %#x has no key in set %d", byte, s.scancode_set)
            return
        if self.translate:
            codes = self._translate(codes)
        if len(s.scancodes) + len(s.replies) + len(codes) > QUEUE_SIZE:
            log.debug("ps2 kbd: queue full, key dropped")
            return
        s.scancodes.extend(codes)

    def _encode(self, byte: int, prefix: int) -> list[int]:
        """Set-1 byte (with a pending E0) as codes of the selected set."""
        head = [prefix] if prefix else []
        if self.state.scancode_set == 1 or byte == 0xE1:
            return head + [byte]  # E1 (Pause) is the same in both sets
        code2 = SET1_TO_SET2[byte & 0x7F]
        if not code2:
            return []
        return head + ([0xF0, code2] if byte & 0x80 else [code2])

    @staticmethod
    def _translate(codes: list[int]) -> list[int]:
        out = []
        release = False
        for c in codes:
            if c == 0xF0:
                release = True  # the 8042 folds F0 into the next byte's bit 7
                continue
            out.append(TRANSLATE[c] | (0x80 if release else 0))
            release = False
        return out


# -- mouse

MOUSE_STATUS_REMOTE = 0x40
MOUSE_STATUS_ENABLED = 0x20
MOUSE_STATUS_SCALE21 = 0x10


@dataclass
class MouseState:
    queue: deque[int] = field(default_factory=deque)
    write_cmd: int = -1
    status: int = 0  # remote / enabled / scaling bits
    resolution: int = 2
    sample_rate: int = 100
    wrap: bool = False
    mouse_type: int = 0  # 0 PS/2, 3 IntelliMouse, 4 IntelliMouse Explorer
    detect: int = 0  # progress through the sample-rate "knock"
    dx: int = 0
    dy: int = 0  # PS/2 sense: positive is up
    dz: int = 0
    buttons: int = 0  # PS/2 order: bit0 left, bit1 right, bit2 middle
    last: int = 0


class PS2Mouse:
    def __init__(self) -> None:
        self.state = MouseState()

    def reset(self) -> None:
        self.state = MouseState()

    def has_data(self) -> bool:
        return bool(self.state.queue)

    def read(self) -> int:
        s = self.state
        if s.queue:
            s.last = s.queue.popleft()
            if not s.queue and (s.dx or s.dy or s.dz):
                self.flush()  # motion that did not fit before goes out now
        return s.last

    def _queue(self, *data: int) -> None:
        s = self.state
        if len(s.queue) + len(data) <= QUEUE_SIZE:
            s.queue.extend(data)

    @property
    def streaming(self) -> bool:
        st = self.state.status
        return bool(st & MOUSE_STATUS_ENABLED) and not st & MOUSE_STATUS_REMOTE

    # -- commands from the guest (through controller command 0xD4)

    def write(self, value: int) -> None:
        s = self.state
        if s.write_cmd == 0xF3:  # sample rate parameter
            s.write_cmd = -1
            s.sample_rate = value
            self._detect_wheel(value)
            self._queue(ACK)
            return
        if s.write_cmd == 0xE8:  # resolution parameter
            s.write_cmd = -1
            s.resolution = value
            self._queue(ACK)
            return
        if s.wrap:
            if value == 0xEC:
                s.wrap = False
                self._queue(ACK)
                return
            if value != 0xFF:
                self._queue(value)  # wrap mode echoes everything
                return
        self._command(value)

    def _detect_wheel(self, rate: int) -> None:
        """200, 100, 80 makes an IntelliMouse (id 3); 200, 200, 80 an
        IntelliMouse Explorer (id 4)."""
        s = self.state
        if s.detect == 0:
            s.detect = 1 if rate == 200 else 0
        elif s.detect == 1:
            s.detect = {100: 2, 200: 3}.get(rate, 0)
        else:
            if rate == 80:
                s.mouse_type = 3 if s.detect == 2 else 4
            s.detect = 0

    def _command(self, value: int) -> None:
        s = self.state
        if value == 0xE6:
            s.status &= ~MOUSE_STATUS_SCALE21
            self._queue(ACK)
        elif value == 0xE7:
            s.status |= MOUSE_STATUS_SCALE21
            self._queue(ACK)
        elif value in (0xE8, 0xF3):
            s.write_cmd = value
            self._queue(ACK)
        elif value == 0xE9:  # status request
            # Byte 1 also carries the buttons (bit2 left, bit1 middle,
            # bit0 right) as the PS/2 spec has it; QEMU leaves them out.
            b = s.buttons
            btn = (b & 1) << 2 | (b & 4) >> 1 | (b & 2) >> 1
            self._queue(ACK, s.status | btn, s.resolution, s.sample_rate)
        elif value == 0xEA:
            s.status &= ~MOUSE_STATUS_REMOTE
            self._queue(ACK)
        elif value == 0xEB:  # read data (remote mode)
            self._queue(ACK)
            self._send_packet()
        elif value == 0xEE:
            s.wrap = True
            self._queue(ACK)
        elif value == 0xF0:
            s.status |= MOUSE_STATUS_REMOTE
            self._queue(ACK)
        elif value == 0xF2:
            self._queue(ACK, s.mouse_type)
        elif value == 0xF4:
            s.status |= MOUSE_STATUS_ENABLED
            self._queue(ACK)
        elif value == 0xF5:
            s.status &= ~MOUSE_STATUS_ENABLED
            self._queue(ACK)
        elif value == 0xF6:
            s.sample_rate, s.resolution, s.status = 100, 2, 0
            self._queue(ACK)
        elif value == 0xFF:
            buttons = s.buttons
            self.reset()
            s = self.state
            s.buttons = buttons  # the buttons are still physically held
            self._queue(ACK, BAT_OK, 0x00)
        else:
            # QEMU stays silent here; a real mouse asks for a resend, which
            # lets the guest's command time out at once.
            log.debug("ps2 mouse: unknown command %#x", value)
            self._queue(RESEND)

    # -- motion from the host

    def event(self, dx: int, dy_up: int, dz: int, buttons: int) -> None:
        """Relative motion (``dy_up`` positive = up) and the button state
        (PS/2 order).  Ignored, apart from the buttons, while reporting is
        disabled."""
        s = self.state
        s.buttons = buttons & 0x07
        if not s.status & MOUSE_STATUS_ENABLED:
            return
        s.dx += dx
        s.dy += dy_up
        s.dz += dz
        self.flush()

    def flush(self) -> None:
        """In stream mode, send one packet (a button change needs one even
        without motion) and more while motion remains and there is room."""
        s = self.state
        if not self.streaming:
            return
        while self._send_packet():
            if not (s.dx or s.dy or s.dz):
                break

    def _send_packet(self) -> bool:
        s = self.state
        size = 4 if s.mouse_type else 3
        if len(s.queue) + size > QUEUE_SIZE:
            return False  # dropped; the motion stays for the next packet
        # Deltas beyond +-127 are split over several packets (as QEMU), so
        # the X/Y overflow bits are never needed.
        dx = max(-127, min(127, s.dx))
        dy = max(-127, min(127, s.dy))
        b0 = 0x08 | (dx < 0) << 4 | (dy < 0) << 5 | s.buttons
        s.queue.extend((b0, dx & 0xFF, dy & 0xFF))
        s.dx -= dx
        s.dy -= dy
        if s.mouse_type == 3:
            dz = max(-127, min(127, s.dz))
            s.queue.append(dz & 0xFF)
            s.dz -= dz
        elif s.mouse_type == 4:
            dz = max(-7, min(7, s.dz))
            s.queue.append(dz & 0x0F)
            s.dz -= dz
        else:
            s.dz = 0  # no wheel on a plain PS/2 mouse
        return True

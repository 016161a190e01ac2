"""i8042 with PS/2 keyboard and mouse: driven the way a guest driver does
(ports 0x60/0x64, IRQ1/IRQ12) and fed the way the SPICE inputs channel
does (KbdInterface / MouseInterface)."""

from __future__ import annotations

import threading

import pytest

from devices.bus import IOPortSpace
from devices.i8042 import I8042
from tests.clocks import RecordingIrq


class Guest:
    def __init__(self) -> None:
        self.io = IOPortSpace()
        self.irq1 = RecordingIrq()
        self.irq12 = RecordingIrq()
        self.resets = 0
        self.a20: list[bool] = []
        self.leds: list[int] = []
        self.ctl = I8042(self.io, self.irq1, self.irq12, self._reset, on_a20=self.a20.append)
        self.ctl.on_leds = self.leds.append

    def _reset(self) -> None:
        self.resets += 1
        self.ctl.reset()  # what a board does; must not deadlock

    def status(self) -> int:
        return self.io.read(0x64, 1)

    def command(self, cmd: int, arg: int | None = None) -> None:
        self.io.write(0x64, 1, cmd)
        if arg is not None:
            self.io.write(0x60, 1, arg)

    def send_kbd(self, value: int) -> None:
        self.io.write(0x60, 1, value)

    def send_aux(self, value: int) -> None:
        self.command(0xD4, value)

    def read_all(self) -> list[tuple[int, bool]]:
        """Drain the output buffer: (byte, from the mouse?) pairs."""
        out = []
        while (st := self.status()) & 0x01:
            out.append((self.io.read(0x60, 1), bool(st & 0x20)))
        return out

    def bytes_(self) -> list[int]:
        return [b for b, _ in self.read_all()]


@pytest.fixture
def g() -> Guest:
    return Guest()


# -- controller


def test_power_on_and_self_tests(g: Guest) -> None:
    assert g.status() == 0x18
    assert not g.irq1.level and not g.irq12.level
    g.command(0xAA)
    assert g.status() == 0x1D  # OBF | self-test passed | CMD | unlocked
    assert g.irq1.level
    assert g.bytes_() == [0x55]
    assert not g.irq1.level
    g.command(0xAB)  # keyboard interface test
    assert g.bytes_() == [0x00]
    g.command(0xA9)  # aux interface test
    assert g.bytes_() == [0x00]


def test_command_byte(g: Guest) -> None:
    g.command(0x20)
    assert g.bytes_() == [0x03]
    g.command(0x60, 0x65)
    g.command(0x20)
    assert g.bytes_() == [0x65]


def test_every_byte_is_a_fresh_irq1_edge(g: Guest) -> None:
    g.send_kbd(0xFF)
    assert g.irq1.rises == 1
    assert g.bytes_() == [0xFA, 0xAA]
    assert g.irq1.rises == 2
    assert not g.irq1.level


def test_interrupt_enable_bits(g: Guest) -> None:
    g.command(0x60, 0x00)  # no interrupts
    g.send_kbd(0xEE)
    assert g.status() & 0x01 and not g.irq1.level
    g.command(0x60, 0x01)  # enabling with a byte waiting raises the line
    assert g.irq1.level
    assert g.bytes_() == [0xEE]


def test_disable_keyboard_interface_holds_bytes(g: Guest) -> None:
    g.command(0x60, 0x43)
    g.command(0xAD)
    g.ctl.push_scan_freg(0x1E)
    assert not g.status() & 0x01 and not g.irq1.level
    g.command(0xAE)
    assert g.irq1.level
    assert g.bytes_() == [0x1E]


def test_output_port_and_a20(g: Guest) -> None:
    assert g.ctl.a20_enabled
    g.command(0xD0)
    assert g.bytes_() == [0xCF]
    g.command(0xD1, 0xCD)  # A20 off, reset line high
    assert not g.ctl.a20_enabled and g.a20 == [False]
    g.command(0xDF)
    assert g.ctl.a20_enabled and g.a20 == [False, True]
    g.command(0xDD)
    assert not g.ctl.a20_enabled
    assert g.resets == 0


@pytest.mark.parametrize("how", ["fe", "pulse", "outport"])
def test_system_reset_requests(g: Guest, how: str) -> None:
    if how == "fe":
        g.command(0xFE)
    elif how == "pulse":
        g.command(0xFF)  # pulse nothing: no reset
        assert g.resets == 0
        g.command(0xF0)
    else:
        g.command(0xD1, 0xCE)
    assert g.resets == 1
    assert g.status() == 0x18  # the board's reset reached the controller


def test_write_output_buffer_commands(g: Guest) -> None:
    g.command(0xA8)
    g.command(0xD2, 0x42)
    assert g.irq1.level and not g.irq12.level
    assert g.read_all() == [(0x42, False)]
    g.command(0xD3, 0x43)
    assert g.irq12.level and not g.irq1.level
    assert g.read_all() == [(0x43, True)]


def test_reading_empty_buffer_repeats_last_byte(g: Guest) -> None:
    g.command(0xD2, 0x99)
    assert g.bytes_() == [0x99]
    assert g.io.read(0x60, 1) == 0x99


# -- keyboard


def test_set2_without_translation(g: Guest) -> None:
    for b in (0x1E, 0x9E, 0xE0, 0x48, 0xE0, 0xC8):  # A, A up, Up, Up released
        g.ctl.push_scan_freg(b)
    assert g.bytes_() == [0x1C, 0xF0, 0x1C, 0xE0, 0x75, 0xE0, 0xF0, 0x75]


def test_translated_set2_gives_back_set1(g: Guest) -> None:
    g.command(0x60, 0x47)  # XLATE on, as BIOSes and Linux set it
    seqs = [
        [0x1E, 0x9E],  # A
        [0xE0, 0x48, 0xE0, 0xC8],  # Up
        [0x41, 0xC1],  # F7 (the duplicated table entry)
        [0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA],  # Print Screen
        [0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5],  # Pause
    ]
    for seq in seqs:
        for b in seq:
            g.ctl.push_scan_freg(b)
        assert g.bytes_() == seq


def test_pause_in_set2(g: Guest) -> None:
    for b in (0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5):
        g.ctl.push_scan_freg(b)
    assert g.bytes_() == [0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77]


def test_scancode_set_selection(g: Guest) -> None:
    g.send_kbd(0xF0)
    g.send_kbd(0x00)
    assert g.bytes_() == [0xFA, 0xFA, 0x02]
    g.send_kbd(0xF0)
    g.send_kbd(0x01)
    assert g.bytes_() == [0xFA, 0xFA]
    g.ctl.push_scan_freg(0x1E)
    g.ctl.push_scan_freg(0x9E)
    assert g.bytes_() == [0x1E, 0x9E]  # raw set 1
    g.command(0x60, 0x47)
    g.send_kbd(0xF0)
    g.send_kbd(0x00)
    assert g.bytes_() == [0xFA, 0xFA, 0x43]  # the translated set number
    g.send_kbd(0xF0)
    g.send_kbd(0x03)  # set 3 is refused
    assert g.bytes_() == [0xFA, 0xFE]


def test_leds(g: Guest) -> None:
    g.send_kbd(0xED)
    g.send_kbd(0x06)
    assert g.bytes_() == [0xFA, 0xFA]
    assert g.ctl.get_leds() == 6  # num + caps in SPICE bits
    assert g.leds == [6]
    g.send_kbd(0xFF)
    assert g.ctl.get_leds() == 0
    assert g.leds == [6, 0]


def test_identify_echo_typematic_unknown(g: Guest) -> None:
    g.send_kbd(0xF2)
    assert g.bytes_() == [0xFA, 0xAB, 0x83]
    g.command(0x60, 0x47)
    g.send_kbd(0xF2)
    assert g.bytes_() == [0xFA, 0xAB, 0x41]
    g.send_kbd(0xEE)
    assert g.bytes_() == [0xEE]
    g.send_kbd(0xF3)
    g.send_kbd(0x20)
    assert g.bytes_() == [0xFA, 0xFA]
    g.send_kbd(0x12)
    assert g.bytes_() == [0xFE]


def test_scanning_disable_and_enable(g: Guest) -> None:
    g.send_kbd(0xF5)
    assert g.bytes_() == [0xFA]
    g.ctl.push_scan_freg(0x1E)
    assert g.bytes_() == []
    g.send_kbd(0xF4)
    g.ctl.push_scan_freg(0x1E)
    assert g.bytes_() == [0xFA, 0x1C]


def test_keyboard_queue_limit(g: Guest) -> None:
    for _ in range(40):
        g.ctl.push_scan_freg(0x1E)
        g.ctl.push_scan_freg(0x9E)  # 2 bytes in set 2 for each release
    got = g.bytes_()
    # One byte went straight to the output buffer, 16 more were queued;
    # key events are queued whole, never half.
    assert len(got) <= 17
    assert got[:4] == [0x1C, 0xF0, 0x1C, 0x1C]
    text = bytes(got[1:]).replace(b"\xf0\x1c", b"R")
    assert set(text) <= {0x1C, ord("R")}


def test_command_reply_goes_before_queued_keys(g: Guest) -> None:
    g.ctl.push_scan_freg(0x1E)  # in the output buffer
    g.ctl.push_scan_freg(0x30)  # queued
    g.send_kbd(0xEE)
    assert g.bytes_() == [0x1C, 0xEE, 0x32]


# -- mouse


def enable_mouse(g: Guest) -> None:
    g.command(0xA8)
    g.send_aux(0xF4)
    assert g.read_all() == [(0xFA, True)]


def test_mouse_reset_and_irq12(g: Guest) -> None:
    g.command(0xA8)
    g.send_aux(0xFF)
    assert g.irq12.level and not g.irq1.level
    assert g.status() & 0x21 == 0x21
    assert g.read_all() == [(0xFA, True), (0xAA, True), (0x00, True)]
    assert g.irq12.rises == 3
    g.send_aux(0xF2)
    assert g.bytes_() == [0xFA, 0x00]


def test_mouse_packets_and_directions(g: Guest) -> None:
    enable_mouse(g)
    g.ctl.motion(5, -3, 0, 0)  # right and up (SPICE y grows down)
    assert g.bytes_() == [0x08, 5, 3]
    g.ctl.motion(-10, 4, 0, 0)  # left and down: both sign bits
    assert g.bytes_() == [0x38, 0xF6, 0xFC]


def test_mouse_buttons_from_spice_mask(g: Guest) -> None:
    enable_mouse(g)
    g.ctl.buttons(1)  # left
    assert g.bytes_() == [0x09, 0, 0]
    g.ctl.buttons(2)  # middle -> PS/2 bit 2
    assert g.bytes_() == [0x0C, 0, 0]
    g.ctl.buttons(4)  # right -> PS/2 bit 1
    assert g.bytes_() == [0x0A, 0, 0]
    g.ctl.motion(1, 0, 0, 0)
    assert g.bytes_() == [0x08, 1, 0]


def test_large_motion_is_split(g: Guest) -> None:
    enable_mouse(g)
    g.ctl.motion(300, -200, 0, 0)
    assert g.bytes_() == [0x08, 127, 127, 0x08, 127, 73, 0x08, 46, 0]


def test_mouse_disabled_reports_nothing(g: Guest) -> None:
    g.command(0xA8)
    g.ctl.motion(10, 10, 0, 1)
    assert g.bytes_() == []
    g.send_aux(0xF4)
    assert g.bytes_() == [0xFA]


def test_mouse_queue_full_keeps_motion(g: Guest) -> None:
    enable_mouse(g)
    for _ in range(10):
        g.ctl.motion(10, 0, 0, 0)
    got = g.bytes_()
    # Packets are whole; what did not fit arrives once there is room.
    assert len(got) % 3 == 0
    assert sum(got[1::3]) == 100


def test_intellimouse_knock_and_wheel(g: Guest) -> None:
    enable_mouse(g)
    for rate in (200, 100, 80):
        g.send_aux(0xF3)
        g.send_aux(rate)
    g.send_aux(0xF2)
    assert g.bytes_() == [0xFA] * 6 + [0xFA, 0x03]
    g.ctl.motion(0, 0, -2, 0)  # wheel up
    assert g.bytes_() == [0x08, 0, 0, 0xFE]
    g.send_aux(0xFF)
    g.read_all()
    g.send_aux(0xF2)
    assert g.bytes_() == [0xFA, 0x00]  # reset forgets the wheel


def test_mouse_status_request_remote_mode_and_wrap(g: Guest) -> None:
    enable_mouse(g)
    g.ctl.buttons(1)
    g.read_all()
    g.send_aux(0xE9)
    assert g.bytes_() == [0xFA, 0x20 | 0x04, 2, 100]
    g.send_aux(0xF0)  # remote mode: no streaming
    g.ctl.motion(7, 0, 0, 1)
    assert g.bytes_() == [0xFA]
    g.send_aux(0xEB)
    assert g.bytes_() == [0xFA, 0x09, 7, 0]
    g.send_aux(0xEE)  # wrap mode echoes
    g.send_aux(0x55)
    g.send_aux(0xEC)
    assert g.bytes_() == [0xFA, 0x55, 0xFA]
    g.send_aux(0x42)
    assert g.bytes_() == [0xFE]  # unknown command


def test_keyboard_and_mouse_interleave_one_at_a_time(g: Guest) -> None:
    enable_mouse(g)
    g.ctl.push_scan_freg(0x1E)
    g.ctl.motion(1, 0, 0, 0)
    g.ctl.push_scan_freg(0x9E)
    seen = []
    while (st := g.status()) & 0x01:
        aux = bool(st & 0x20)
        assert g.irq12.level == aux and g.irq1.level == (not aux)
        seen.append((g.io.read(0x60, 1), aux))
    assert [b for b, a in seen if not a] == [0x1C, 0xF0, 0x1C]
    assert [b for b, a in seen if a] == [0x08, 1, 0]
    assert not g.irq1.level and not g.irq12.level


def test_disable_aux_interface(g: Guest) -> None:
    enable_mouse(g)
    g.command(0xA7)
    g.ctl.motion(1, 0, 0, 0)
    assert g.bytes_() == []
    g.command(0xA8)
    assert g.bytes_() == [0x08, 1, 0]


def test_input_from_another_thread(g: Guest) -> None:
    enable_mouse(g)
    g.command(0x60, 0x47)
    n = 500
    got: list[int] = []

    def typist() -> None:
        for _ in range(n):
            g.ctl.push_scan_freg(0x1E)

    t = threading.Thread(target=typist)
    t.start()
    while t.is_alive() or g.status() & 0x01:
        if g.status() & 0x01:
            got.append(g.io.read(0x60, 1))
    t.join()
    assert got and set(got) == {0x1E}  # whatever fit, never a torn byte


def test_reset(g: Guest) -> None:
    enable_mouse(g)
    g.command(0x60, 0x74)
    g.send_kbd(0xED)
    g.send_kbd(0x07)
    g.ctl.motion(3, 3, 0, 0)
    g.ctl.reset()
    assert g.status() == 0x18
    assert not g.irq1.level and not g.irq12.level
    g.command(0x20)
    assert g.bytes_() == [0x03]
    assert g.ctl.get_leds() == 0
    g.ctl.motion(3, 3, 0, 0)
    assert g.bytes_() == []  # mouse reporting is off again


def test_bad_input_is_harmless(g: Guest) -> None:
    g.command(0x12)  # unknown controller command
    g.io.write(0x60, 4, 0xFFFFFFFF)
    g.io.read(0x64, 4)
    g.send_aux(0x00)
    assert g.resets == 0

"""qxl-vga before the driver takes over: legacy text mode and Bochs VBE,
shown to the server as host-generated DRAW_COPY commands, and QEMU's rules
for leaving and re-entering VGA mode."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from devices.qxl import QXLMode
from devices.qxl import layout as L
from devices.qxl.font import glyph_table
from spice import qxl as Q
from tests.qxl_harness import BAR0_BASE, QXLMachine

BLUE, WHITE, BLACK = 0x0000AA, 0xFFFFFF, 0x000000


def screen(m: QXLMachine, canvas: np.ndarray | None = None) -> np.ndarray:
    """Apply every pending VGA-mode command to a canvas of the host primary."""
    p = m.worker.primary
    if canvas is None or canvas.shape != (p.height, p.width):
        canvas = np.zeros((p.height, p.width), np.uint32)
    for cmd in m.pull():
        d = cmd.payload
        assert cmd.group_id == L.MEMSLOT_GROUP_HOST and d.type == Q.QXL_DRAW_COPY
        img = d.u.src_bitmap
        pixels = img.data.view("<u4").reshape(img.y, img.x)
        b = d.bbox
        canvas[b.top:b.bottom, b.left:b.right] = pixels
    return canvas


def text(m: QXLMachine, row: int, col: int, s: str, attr: int = 0x1F) -> None:
    cells = np.zeros(len(s), "<u2")
    cells[:] = [ord(c) | attr << 8 for c in s]
    m.write(0xB8000 + 2 * (80 * row + col), cells.tobytes())


def vbe(m: QXLMachine, index: int, value: int | None = None) -> int:
    m.ioports.write(0x1CE, 2, index)
    if value is not None:
        m.ioports.write(0x1CF, 2, value)
    return m.ioports.read(0x1CF, 2)


def set_vbe_mode(m: QXLMachine, width: int, height: int, bpp: int, flags: int = 0x41) -> None:
    vbe(m, 4, 0)
    vbe(m, 1, width)
    vbe(m, 2, height)
    vbe(m, 3, bpp)
    vbe(m, 4, flags)


def test_host_primary_and_text_updates():
    m = QXLMachine()
    m.refresh()
    p = m.worker.primary
    assert (p.width, p.height, p.stride, p.format) == (720, 400, -2880, 32)
    assert m.pull() == []  # a black screen matches the black mirror
    text(m, 0, 0, "Hi")
    m.refresh()
    cmds = m.pull(release=False)
    assert cmds, "text produced no update"
    for cmd in cmds:
        d = cmd.payload
        assert (d.effect, d.surface_id, d.clip) == (Q.QXL_EFFECT_OPAQUE, 0, None)
        assert d.u.rop_descriptor == Q.SPICE_ROPD_OP_PUT and d.u.mask.bitmap is None
        img = d.u.src_bitmap
        assert img.format == Q.SPICE_BITMAP_FMT_32BIT
        assert img.flags == Q.QXL_BITMAP_DIRECT | Q.QXL_BITMAP_TOP_DOWN
        assert img.descriptor.id & 0xFFFFFFFF == Q.QXL_IMAGE_GROUP_DEVICE
        assert d.bbox.left % 32 == 0 and d.bbox.width <= 32
        m.dev.release_resource(cmd.release)
    ids = [c.payload.u.src_bitmap.descriptor.id >> 32 for c in cmds]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # a running unique


def test_text_pixels():
    m = QXLMachine()
    m.refresh()
    m.ioports.write(0x3D4, 1, 0x0A)
    m.ioports.write(0x3D5, 1, 0x20)  # cursor off
    text(m, 1, 2, "A", attr=0x1F)
    m.refresh()
    canvas = screen(m)
    cell = canvas[16:32, 18:27]
    font = glyph_table()[ord("A")]
    expected = np.where(font.astype(bool), WHITE, BLUE)
    assert np.array_equal(cell[:, :8], expected)
    assert (cell[:, 8] == BLUE).all()  # 'A' is not a line-graphics character
    box = 0xC4  # '─' repeats its eighth column in the ninth
    text(m, 3, 0, chr(box), attr=0x07)
    m.refresh()
    canvas = screen(m, canvas)
    row = canvas[48 + 8, 0:9]
    assert (row == 0xAAAAAA).all()


def test_cursor_blinks():
    m = QXLMachine()
    m.refresh()
    text(m, 0, 0, "    ", attr=0x07)
    m.ioports.write(0x3D4, 1, 0x0E)
    m.ioports.write(0x3D5, 1, 0)
    m.ioports.write(0x3D4, 1, 0x0F)
    m.ioports.write(0x3D5, 1, 3)  # cursor at column 3
    seen = set()
    canvas = None
    for _ in range(40):  # 1.2 s of refreshes: both phases
        m.refresh()
        canvas = screen(m, canvas)
        seen.add(int(canvas[14, 3 * 9 + 4]))
    assert seen == {0xAAAAAA, BLACK}
    assert (canvas[0:13, 27:36] == BLACK).all()


def test_no_new_updates_until_the_last_batch_is_taken():
    m = QXLMachine()
    m.refresh()
    text(m, 0, 0, "X")
    m.refresh()
    text(m, 10, 40, "Y")
    m.refresh()  # the first batch is still queued: not compared again
    first = m.pull()
    assert all(c.payload.bbox.top < 16 for c in first)
    m.refresh()
    assert any(c.payload.bbox.top >= 160 for c in m.pull())


def test_vbe_linear_mode():
    m = QXLMachine()
    m.refresh()
    set_vbe_mode(m, 640, 480, 32)
    assert vbe(m, 0) == 0xB0C5
    m.refresh()
    names = m.worker.names()
    assert names[-2:] == ["destroy_primary_surface", "create_primary_surface"]
    assert (m.worker.primary.width, m.worker.primary.height) == (640, 480)
    fb = np.zeros((480, 640), "<u4")
    fb[100:200, 300:340] = 0x123456
    m.write(BAR0_BASE, fb.tobytes())
    m.refresh()
    canvas = screen(m)
    assert np.array_equal(canvas, fb)


@pytest.mark.parametrize("bpp,raw,pixel", [
    (16, np.array([0xF800, 0x07E0], "<u2").tobytes(), (0xF80000, 0x00FC00)),
    (15, np.array([0x7C00, 0x001F], "<u2").tobytes(), (0xF80000, 0x0000F8)),
    (24, bytes([0x01, 0x02, 0x03, 0x30, 0x20, 0x10]), (0x030201, 0x102030)),
])
def test_vbe_depths(bpp, raw, pixel):
    m = QXLMachine()
    set_vbe_mode(m, 64, 8, bpp)
    m.write(BAR0_BASE, raw)
    m.refresh()
    canvas = screen(m)
    assert tuple(int(v) for v in canvas[0, :2]) == pixel


def test_vbe_8bit_uses_the_dac():
    m = QXLMachine()
    set_vbe_mode(m, 64, 8, 8)
    m.ioports.write(0x3C8, 1, 5)
    for v in (0x3F, 0x00, 0x20):
        m.ioports.write(0x3C9, 1, v)
    m.write(BAR0_BASE, bytes([5, 5]))
    m.refresh()
    assert int(screen(m)[0, 0]) == 0xFF0082
    set_vbe_mode(m, 64, 8, 8, flags=0x41 | 0x20 | 0x80)  # 8-bit DAC, keep memory
    m.refresh()
    assert int(screen(m)[0, 1]) == 0x3F0020


def test_vbe_mode_is_clamped_to_vga_memory():
    m = QXLMachine(vgamem_mb=8)
    assert vbe(m, 0x0A) == 128  # 64 KiB units
    vbe(m, 4, 0x02)  # GETCAPS
    assert (vbe(m, 1), vbe(m, 2), vbe(m, 3)) == (16000, 12000, 32)
    vbe(m, 0, 0x1234)  # not an ID: ignored
    assert vbe(m, 0) == 0xB0C5
    set_vbe_mode(m, 4000, 4000, 32)
    assert vbe(m, 1) == 4000 and vbe(m, 2) == 8 * 1024 * 1024 // (4000 * 4)
    vbe(m, 9, 3000)  # y offset beyond the memory: dropped
    assert vbe(m, 9) == 0
    m.refresh()
    assert m.worker.primary.width == 4000  # the picture fits the framebuffer


def test_vga_registers():
    m = QXLMachine()
    io = m.ioports
    io.write(0x3C8, 1, 7)
    for v in (1, 2, 3):
        io.write(0x3C9, 1, v)
    io.write(0x3C7, 1, 7)
    assert [io.read(0x3C9, 1) for _ in range(3)] == [1, 2, 3]
    assert io.read(0x3C7, 1) == 3
    io.read(0x3DA, 1)  # resets the attribute flip-flop: next write is an index
    io.write(0x3C0, 1, 0x31)  # overscan register, display enabled
    io.write(0x3C0, 1, 0xFF)  # ... its data
    assert io.read(0x3C1, 1) == 0xFF
    assert io.read(0x3C0, 1) == 0x31  # the index reads back when the flip-flop is 0
    io.write(0x3D4, 2, 0x5511)  # index and data in one word: CR11 = 0x55
    assert io.read(0x3D5, 1) == 0x55
    io.write(0x3D4, 2, 0x8011)  # CR0-7 protect
    io.write(0x3D4, 2, 0x1201)
    assert (io.write(0x3D4, 1, 1), io.read(0x3D5, 1))[1] == 0x4F
    assert io.read(0x3B4, 1) == 0xFF  # colour mode: mono ports not decoded
    io.write(0x3C2, 1, 0x66)
    assert io.read(0x3CC, 1) == 0x66 and io.read(0x3D4, 1) == 0xFF


def test_blanked_display():
    m = QXLMachine()
    text(m, 0, 0, "X")
    m.ioports.read(0x3DA, 1)
    m.ioports.write(0x3C0, 1, 0x00)  # palette address source off: blank
    m.refresh()
    assert (screen(m) == 0).all()


# -- leaving and re-entering VGA mode -------------------------------------------------

def test_native_mode_stops_vga_updates():
    m = QXLMachine()
    m.refresh()
    m.native()
    text(m, 0, 0, "X")
    m.refresh()
    assert m.dev.mode == QXLMode.NATIVE and m.pull() == []


@pytest.mark.parametrize("revision,back_to_vga", [(4, True), (5, False)])
def test_vga_register_write_in_native_mode(revision, back_to_vga):
    m = QXLMachine(revision=revision)
    m.native()
    m.out(Q.QXL_IO_DETACH_PRIMARY)  # a guest bug, cleared by the drop to VGA
    m.ioports.write(0x3C8, 1, 0)  # DAC index: a VGA register
    assert (m.dev.mode == QXLMode.VGA) == back_to_vga
    assert m.dev.guest_bug != back_to_vga
    m.ioports.write(0x1CE, 2, 1)  # VBE ports never switch modes
    if back_to_vga:
        assert "destroy_primary_surface" in m.worker.names()
        m.refresh()
        assert m.worker.primary.width == 720


def test_reset_returns_to_vga_with_a_new_host_primary():
    m = QXLMachine()
    m.native()
    m.out(Q.QXL_IO_RESET)
    assert m.dev.mode == QXLMode.VGA
    m.refresh()
    assert m.worker.primary.width == 720 and m.worker.names()[-1] == "create_primary_surface"


def test_frames_are_consistent_while_the_guest_switches_modes():
    # The refresh timer renders on the main loop while the vCPU thread
    # writes the VBE registers; a frame must show one mode or the other,
    # never the width of one read with the pitch of the other.
    m = QXLMachine()
    set_vbe_mode(m, 640, 480, 32)
    stop = threading.Event()

    def vcpu() -> None:
        while not stop.is_set():
            for width, height, bpp in ((1024, 768, 16), (640, 480, 32)):
                vbe(m, 1, width)
                vbe(m, 2, height)
                vbe(m, 3, bpp)

    shapes = set()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    t = threading.Thread(target=vcpu)
    t.start()
    try:
        for _ in range(1500):
            shapes.add(m.dev.vga.render().shape)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    # every register write re-validates the whole mode, so a frame may catch
    # a mix of the two resolutions, but always at a width the mode has
    assert shapes <= {(480, 640), (768, 1024), (480, 1024), (768, 640)}, shapes

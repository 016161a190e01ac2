"""What a local display reads from the server: SpiceServer.screendump,
cursor_state and request_frame (spice.screendump), against a scripted QXL
device."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from spice_harness import Harness, cursor_cmd, cursor_shape, fill_cmd, primary_create, wait_for

from spice import qxl
from spice.screendump import cursor_argb

W, H = 32, 16


@pytest.fixture
def h():
    harness = Harness(vm_running=True)
    yield harness
    harness.close()


def test_screendump_renders_what_the_worker_holds(h):
    assert h.server.screendump() is None  # no primary yet
    create, _mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.qxl.push(fill_cmd(h.qxl.token(), (2, 3, 6, 10), 0xFF123456),
               fill_cmd(h.qxl.token(), (4, 8, 16, 32), 0x00ABCDEF))
    h.qxl.wait_drained()
    dump = h.server.screendump()
    expected = np.zeros((H, W), np.uint32)
    expected[2:6, 3:10] = 0x123456  # the top byte of x8r8g8b8 is not a colour
    expected[4:16, 8:32] = 0xABCDEF
    assert dump.dtype == np.uint32 and dump.shape == (H, W)
    assert np.array_equal(dump, expected)
    dump[:] = 0  # a copy: the next one is unchanged
    assert np.array_equal(h.server.screendump(), expected)


def test_screendump_of_16_bit_and_bottom_up_primaries(h):
    create, mem = primary_create(4, 2, fmt=qxl.SPICE_SURFACE_FMT_16_565, keep=True)
    mem.view("<u2")[:] = [0xF800, 0x07E0, 0x001F, 0x0010, 0xFFFF, 0, 0x0841, 0x8410]
    h.worker.create_primary_surface(create)
    assert h.server.screendump().tolist() == [[0xFF0000, 0x00FF00, 0x0000FF, 0x000084],
                                              [0xFFFFFF, 0, 0x080808, 0x848284]]
    h.worker.destroy_primary_surface()
    # 555, stride -8: the top row is the last one in memory
    create, mem = primary_create(4, 2, stride=-8, fmt=qxl.SPICE_SURFACE_FMT_16_555, keep=True)
    mem.view("<u2")[:] = [0x7FFF, 0, 0, 0, 0x7C00, 0x03E0, 0x001F, 0x4210]
    h.worker.create_primary_surface(create)
    assert h.server.screendump().tolist() == [[0xFF0000, 0x00FF00, 0x0000FF, 0x848484],
                                              [0xFFFFFF, 0, 0, 0]]


def test_a_missing_device_is_a_clear_error(h):
    with pytest.raises(ValueError, match="no QXL device 1"):
        h.server.screendump(1)
    with pytest.raises(ValueError, match="no QXL device -1"):
        h.server.cursor_state(-1)


def test_cursor_state_follows_the_cursor_channel(h):
    create, _mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    first = h.server.cursor_state()
    assert first.shape is None and (first.x, first.y) == (0, 0)
    shape = cursor_shape(7, w=4, h=3)
    h.qxl.push_cursor(cursor_cmd(h.qxl.token(), qxl.QXL_CURSOR_SET, 5, 6, True, shape))
    h.qxl.wait_drained()
    st = h.server.cursor_state()
    assert np.array_equal(st.shape, shape.data.view("<u4").reshape(3, 4))
    assert (st.hot_x, st.hot_y, st.visible) == (1, 2, True)
    assert (st.x, st.y) == (0, 0)  # SET's position is not the channel's (as spice-server)
    assert st.serial != first.serial
    h.qxl.push_cursor(cursor_cmd(h.qxl.token(), qxl.QXL_CURSOR_MOVE, 10, 11))
    h.qxl.wait_drained()
    moved = h.server.cursor_state()
    assert (moved.x, moved.y, moved.serial) == (10, 11, st.serial)  # same shape, same serial
    h.qxl.push_cursor(cursor_cmd(h.qxl.token(), qxl.QXL_CURSOR_HIDE))
    h.qxl.wait_drained()
    assert not h.server.cursor_state().visible


def test_request_frame_answers_on_the_core_thread(h):
    create, _mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.qxl.push(fill_cmd(h.qxl.token(), (0, 0, 1, 1), 0x0000FF))
    h.qxl.wait_drained()
    got: list = []
    core_thread = h.call(threading.get_ident)
    h.call(lambda: h.server.request_frame(
        lambda pixels, cursor: got.append((threading.get_ident(), pixels, cursor))))
    wait_for(lambda: got)
    thread, pixels, cursor = got[0]
    assert thread == core_thread
    assert pixels[0, 0] == 0x0000FF and pixels.shape == (H, W)
    assert cursor.shape is None


def _mono(and_rows: list[int], xor_rows: list[int], w: int = 8) -> qxl.Cursor:
    data = np.array(and_rows + xor_rows, np.uint8)
    return qxl.Cursor(1, qxl.SPICE_CURSOR_TYPE_MONO, w, len(and_rows), 0, 0, data)


def test_mono_cursor_as_qemu_shows_it():
    # pixel:  0 black, 1 white, 2 transparent, 3 inverting, 4 transparent
    argb = cursor_argb(_mono([0b00111000, 0b11111111], [0b01010000, 0b00000000]))
    row = argb[0].tolist()
    assert row[:2] == [0xFF000000, 0xFFFFFFFF]
    assert row[3] == 0xFFFFFFFF  # inverting: white ...
    assert row[2] == 0xFF000000 and row[4] == 0xFF000000  # ... with a black outline
    assert row[5:] == [0xFF000000] * 3  # AND clear, XOR clear: black
    assert argb[1].tolist() == [0, 0, 0, 0xFF000000, 0, 0, 0, 0]  # the outline goes below too


def test_colour_cursors_with_and_masks():
    w, h = 8, 1
    pixels = np.array([0x112233, 0xFFFFFF, 0x445566, 0xFFFFFF] + [0] * 4, "<u4")
    mask = np.array([0b01100000], np.uint8)  # pixels 1 and 2 have the AND bit
    data = np.concatenate([pixels.view(np.uint8), mask])
    argb = cursor_argb(qxl.Cursor(2, qxl.SPICE_CURSOR_TYPE_COLOR32, w, h, 0, 0, data))
    assert argb[0, :4].tolist() == [0xFF112233, 0xC0303030, 0, 0xFFFFFFFF]
    # 4 bits per pixel through a 16-entry palette, high nibble first
    palette = np.zeros(16, "<u4")
    palette[1], palette[2] = 0xFF0000, 0x00FF00
    data = np.concatenate([np.array([0x12, 0x21, 0, 0], np.uint8), palette.view(np.uint8),
                           np.array([0b00010000], np.uint8)])
    argb = cursor_argb(qxl.Cursor(3, qxl.SPICE_CURSOR_TYPE_COLOR4, w, h, 0, 0, data))
    assert argb[0, :4].tolist() == [0xFFFF0000, 0xFF00FF00, 0xFF00FF00, 0]
    assert cursor_argb(qxl.Cursor(4, qxl.SPICE_CURSOR_TYPE_COLOR24, w, h, 0, 0,
                                  np.zeros(64, np.uint8))) is None  # no reader shows it

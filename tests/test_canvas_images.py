"""bitmap_to_argb32: every SPICE bitmap format to top-down xRGB / ARGB."""

from __future__ import annotations

import numpy as np
import pytest
from test_canvas_support import bitmap_bytes

from spice import qxl
from spice.canvas import bitmap_to_argb32

PAL = [0x00000000, 0x00FF0000, 0x0000FF00, 0x000000FF, 0x80112233] + [0x00010203 * i
                                                                       for i in range(5, 16)]


def test_32_bit_and_rgba_keep_all_four_bytes():
    v = np.array([[0x11223344, 0xAABBCCDD]], np.uint32)
    for fmt in (qxl.SPICE_BITMAP_FMT_32BIT, qxl.SPICE_BITMAP_FMT_RGBA):
        img = bitmap_bytes(fmt, 2, 1, v.view(np.uint8))
        assert np.array_equal(bitmap_to_argb32(img), v)


def test_24_bit_is_b_g_r_bytes():
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_24BIT, 2, 1, np.array([[1, 2, 3, 4, 5, 6]]))
    assert list(bitmap_to_argb32(img)[0]) == [0x030201, 0x060504]


def test_16_bit_widens_by_bit_replication():
    v = np.array([[0x7FFF, 0x4210, 0x0001]], np.uint16)
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_16BIT, 3, 1, v.view(np.uint8))
    assert list(bitmap_to_argb32(img)[0]) == [0xFFFFFF, 0x848484, 0x000008]


def test_8_bit_alpha_becomes_the_top_byte():
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_8BIT_A, 2, 1, np.array([[0x00, 0x9A]]))
    assert list(bitmap_to_argb32(img)[0]) == [0, 0x9A000000]


@pytest.mark.parametrize("fmt,row,indices", [
    (qxl.SPICE_BITMAP_FMT_8BIT, [4, 0, 2], [4, 0, 2]),
    (qxl.SPICE_BITMAP_FMT_4BIT_BE, [0x41, 0x30], [4, 1, 3]),
    (qxl.SPICE_BITMAP_FMT_4BIT_LE, [0x14, 0x03], [4, 1, 3]),
    (qxl.SPICE_BITMAP_FMT_1BIT_BE, [0b10100000], [1, 0, 1]),
    (qxl.SPICE_BITMAP_FMT_1BIT_LE, [0b00000101], [1, 0, 1]),
])
def test_palette_formats_in_both_bit_orders(fmt, row, indices):
    img = bitmap_bytes(fmt, 3, 1, np.array([row]), PAL)
    assert list(bitmap_to_argb32(img)[0]) == [PAL[i] for i in indices]


def test_bottom_up_bitmaps_come_out_top_down():
    v = np.array([[1], [2], [3]], np.uint32)
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_32BIT, 1, 3, v.view(np.uint8), top_down=False)
    assert list(bitmap_to_argb32(img)[:, 0]) == [1, 2, 3]


def test_bad_bitmaps_raise_value_error():
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_8BIT, 2, 1, np.array([[0, 1]]))
    with pytest.raises(ValueError):
        bitmap_to_argb32(img)  # no palette
    short = bitmap_bytes(qxl.SPICE_BITMAP_FMT_32BIT, 2, 1, np.zeros((1, 4), np.uint8))
    with pytest.raises(ValueError):
        bitmap_to_argb32(short)

"""Software canvas: scaling, alpha blending, DRAW_COMPOSITE and text, against
numpy formulas for pixman's fixed-point sampling and 8-bit arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from test_canvas_support import (
    ARGB,
    XRGB,
    bitmap32,
    clip,
    drawable,
    new_canvas,
    no_surfaces,
    pattern,
    raw,
    rect,
    set_pixels,
    solid,
)

from spice import qxl

RNG = np.random.default_rng(7)
RGBA = qxl.SPICE_BITMAP_FMT_RGBA


def premultiplied(h: int, w: int) -> np.ndarray:
    """Random valid premultiplied ARGB: no channel above its alpha."""
    a = RNG.integers(0, 256, (h, w)).astype(np.uint32)
    ch = [(RNG.integers(0, 256, (h, w)) * a // 255).astype(np.uint32) for _ in range(3)]
    return (a << 24) | (ch[0] << 16) | (ch[1] << 8) | ch[2]


def channels(v: np.ndarray) -> list[np.ndarray]:
    v = v.astype(np.int64)
    return [(v >> s) & 0xFF for s in (24, 16, 8, 0)]


def pack(ch: list[np.ndarray]) -> np.ndarray:
    a, r, g, b = (np.asarray(c, np.int64) for c in ch)
    return ((a << 24) | (r << 16) | (g << 8) | b).astype(np.uint32)


def mul(a, b):
    """x * y / 255 rounded the way pixman rounds."""
    t = np.asarray(a, np.int64) * np.asarray(b, np.int64) + 0x80
    return ((t >> 8) + t) >> 8


def sample_points(start: int, count: int, src_size: int, dst_size: int, src_off: int):
    """pixman's 16.16 source coordinate of each destination pixel centre for a
    scale of src_size / dst_size (truncated) plus an integer offset."""
    scale = src_size * 65536 // dst_size
    i = np.arange(start, start + count, dtype=np.int64)
    return scale * i + ((scale * 32768 + 0x8000) >> 16) + (src_off << 16)


def copy_scaled(src, area, bbox, mode):
    return drawable(qxl.QXL_DRAW_COPY, bbox,
                    qxl.Copy(src, area, qxl.SPICE_ROPD_OP_PUT, mode, qxl.NO_MASK))


def test_nearest_scaling_follows_pixman_fixed_point_sampling():
    src = RNG.integers(0, 1 << 32, (5, 7), dtype=np.uint64).astype(np.uint32)
    c = new_canvas(16, 11)
    area, bbox = rect(1, 1, 6, 4), rect(2, 1, 15, 10)
    c.draw(copy_scaled(bitmap32(src), area, bbox, qxl.SPICE_IMAGE_SCALE_MODE_NEAREST),
           no_surfaces)
    xs = (sample_points(0, 13, 5, 13, 1) - 1) >> 16
    ys = (sample_points(0, 9, 3, 9, 1) - 1) >> 16
    want = np.zeros((11, 16), np.uint32)
    want[1:10, 2:15] = src[ys][:, xs]
    assert np.array_equal(raw(c), want)


def test_bilinear_scaling_uses_7_bit_weights_and_zero_outside_the_image():
    src = premultiplied(3, 4)
    c = new_canvas(10, 7, ARGB)
    bbox = rect(0, 0, 10, 7)
    c.draw(copy_scaled(bitmap32(src, RGBA), rect(0, 0, 4, 3), bbox,
                       qxl.SPICE_IMAGE_SCALE_MODE_INTERPOLATE), no_surfaces)
    px = sample_points(0, 10, 4, 10, 0) - 32768
    py = sample_points(0, 7, 3, 7, 0) - 32768
    wx, xi = (px >> 9) & 0x7F, px >> 16
    wy, yi = (py >> 9) & 0x7F, py >> 16

    def at(y, x):
        inside = (x >= 0) & (x < 4) & (y >= 0) & (y < 3)
        return np.where(inside, src[np.clip(y, 0, 2), np.clip(x, 0, 3)], 0)

    Y, X = np.meshgrid(yi, xi, indexing="ij")
    WY, WX = np.meshgrid(wy, wx, indexing="ij")
    corners = [(at(Y, X), (128 - WX) * (128 - WY)), (at(Y, X + 1), WX * (128 - WY)),
               (at(Y + 1, X), (128 - WX) * WY), (at(Y + 1, X + 1), WX * WY)]
    want = [sum(ch[k] * w for ch, w in ((channels(v), w) for v, w in corners)) >> 14
            for k in range(4)]
    assert np.array_equal(raw(c), pack(want))


def test_scaled_copy_with_xor_goes_through_a_scaled_temporary():
    src = RNG.integers(0, 1 << 32, (2, 2), dtype=np.uint64).astype(np.uint32)
    init = RNG.integers(0, 1 << 32, (4, 4), dtype=np.uint64).astype(np.uint32)
    c = new_canvas(4, 4, init=init)
    u = qxl.Copy(bitmap32(src), rect(0, 0, 2, 2), qxl.SPICE_ROPD_OP_XOR,
                 qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, qxl.NO_MASK)
    c.draw(drawable(qxl.QXL_DRAW_COPY, rect(0, 0, 4, 4), u), no_surfaces)
    # 2x nearest: each source pixel covers a 2x2 block; an x8r8g8b8 source keeps
    # its own top byte through the scaler
    assert np.array_equal(raw(c), init ^ np.kron(src, np.ones((2, 2), np.uint32)))


@pytest.mark.parametrize("alpha", [255, 128, 1])
def test_alpha_blend_is_premultiplied_over_with_an_overall_alpha(alpha):
    src = premultiplied(4, 5)
    dst = RNG.integers(0, 1 << 32, (4, 5), dtype=np.uint64).astype(np.uint32)
    c = new_canvas(5, 4, ARGB, init=dst)
    u = qxl.AlphaBlend(0, alpha, bitmap32(src, RGBA), rect(0, 0, 5, 4))
    c.draw(drawable(qxl.QXL_DRAW_ALPHA_BLEND, rect(0, 0, 5, 4), u), no_surfaces)
    s = [mul(ch, alpha) for ch in channels(src)] if alpha != 255 else channels(src)
    d = channels(dst)
    want = [np.minimum(sc + mul(dc, 255 - s[0]), 255) for sc, dc in zip(s, d, strict=True)]
    assert np.array_equal(raw(c), pack(want))


def test_alpha_blend_on_xrgb_clears_top_bytes_of_the_whole_box():
    # The reference clears the top byte of every pixel of the bounding box
    # (clip or not) when the first one came out opaque.
    src = np.full((4, 4), 0xFF102030, np.uint32)
    c = new_canvas(4, 4, XRGB, init=np.full((4, 4), 0x77000000, np.uint32))
    u = qxl.AlphaBlend(0, 255, bitmap32(src, RGBA), rect(0, 0, 4, 4))
    c.draw(drawable(qxl.QXL_DRAW_ALPHA_BLEND, rect(0, 0, 4, 4), u, clip((0, 0, 2, 4))),
           no_surfaces)
    want = np.zeros((4, 4), np.uint32)
    want[:, :2] = 0x00102030
    assert np.array_equal(raw(c), want)


def test_alpha_blend_of_a_surface_that_has_alpha():
    src_canvas = new_canvas(2, 2, XRGB, init=np.full((2, 2), 0x80400000, np.uint32))
    c = new_canvas(2, 2, ARGB, init=np.full((2, 2), 0xFF0000FF, np.uint32))
    img = qxl.SurfaceImage(qxl.ImageDescriptor(1, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 0, 0), 4)
    u = qxl.AlphaBlend(qxl.SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA, 255, img, rect(0, 0, 2, 2))
    c.draw(drawable(qxl.QXL_DRAW_ALPHA_BLEND, rect(0, 0, 2, 2), u), {4: src_canvas}.get)
    # its top byte counts as alpha 0x80: 0x40 + 0 / 0 + 0 / 0xff * 0x7f / 255
    assert np.all(raw(c) == pack([0x80 + mul(0xFF, 0x7F), 0x40, 0, mul(0xFF, 0x7F)]))


OPS = {
    0: lambda s, d: [np.zeros_like(x) for x in s],  # CLEAR
    1: lambda s, d: s,  # SRC
    3: lambda s, d: [np.minimum(sc + mul(dc, 255 - s[0]), 255)
                     for sc, dc in zip(s, d, strict=True)],  # OVER
    5: lambda s, d: [mul(sc, d[0]) for sc in s],  # IN
    6: lambda s, d: [mul(dc, s[0]) for dc in d],  # IN_REVERSE
    7: lambda s, d: [mul(sc, 255 - d[0]) for sc in s],  # OUT
    9: lambda s, d: [np.minimum(mul(sc, d[0]) + mul(dc, 255 - s[0]), 255)
                     for sc, dc in zip(s, d, strict=True)],  # ATOP
    11: lambda s, d: [np.minimum(mul(sc, 255 - d[0]) + mul(dc, 255 - s[0]), 255)
                      for sc, dc in zip(s, d, strict=True)],  # XOR
    12: lambda s, d: [np.minimum(sc + dc, 255) for sc, dc in zip(s, d, strict=True)],  # ADD
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_composite_porter_duff_operators(op):
    src = premultiplied(3, 4)
    dst = premultiplied(3, 4)
    c = new_canvas(4, 3, ARGB, init=dst)
    u = qxl.Composite(op, bitmap32(src, RGBA), None, None, None, qxl.Point(0, 0),
                      qxl.Point(0, 0))
    c.draw(drawable(qxl.QXL_DRAW_COMPOSITE, rect(0, 0, 4, 3), u), no_surfaces)
    assert np.array_equal(raw(c), pack(OPS[op](channels(src), channels(dst)))), op


def test_composite_with_repeat_transform_and_mask():
    src = premultiplied(2, 2)
    mask = RNG.integers(0, 256, (1, 3)).astype(np.uint32) << 24
    dst = premultiplied(4, 6)
    c = new_canvas(6, 4, ARGB, init=dst)
    # translate by (1, 0), NORMAL repeat on both, nearest; mask 1x3 repeating
    flags = (qxl.COMPOSITE_OP_MASK & 3) | (1 << qxl.COMPOSITE_SRC_REPEAT_SHIFT) \
        | (1 << qxl.COMPOSITE_MASK_REPEAT_SHIFT) | (3 << qxl.COMPOSITE_SRC_FILTER_SHIFT)
    u = qxl.Composite(flags, bitmap32(src, RGBA), qxl.Transform(1 << 16, 0, 1 << 16, 0, 1 << 16, 0),
                      bitmap32(mask, RGBA), None, qxl.Point(0, 0), qxl.Point(0, 0))
    c.draw(drawable(qxl.QXL_DRAW_COMPOSITE, rect(0, 0, 6, 4), u), no_surfaces)
    ys, xs = np.mgrid[0:4, 0:6]
    s = src[ys % 2, (xs + 1) % 2]
    m = (mask[0, xs % 3] >> 24).astype(np.int64)
    sm = [mul(ch, m) for ch in channels(s)]
    want = [np.minimum(sc + mul(dc, 255 - sm[0]), 255)
            for sc, dc in zip(sm, channels(dst), strict=True)]
    assert np.array_equal(raw(c), pack(want))


# -- text ------------------------------------------------------------------------


def glyph_a1(x: int, y: int, rows: list[str]) -> qxl.RasterGlyph:
    """A 1-bit glyph at render position (x, y), origin (0, 0); ``rows`` are
    top-down strings of '#' and '.', stored bottom-up as the reference reads
    glyph rows."""
    w, h = len(rows[0]), len(rows)
    bits = np.array([[ch == "#" for ch in r] for r in rows], np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="big")[::-1]
    return qxl.RasterGlyph(qxl.Point(x, y), qxl.Point(0, 0), w, h, packed.reshape(-1).copy())


NO_AREA = qxl.Rect(0, 0, 0, 0)
BLACK = solid(0)


def text(glyphs, flags, fore, back=BLACK, back_area=NO_AREA, bbox=None, clip_rects=None):
    u = qxl.Text(qxl.GlyphString(flags, glyphs), back_area, fore, back,
                 qxl.SPICE_ROPD_OP_PUT, qxl.SPICE_ROPD_OP_PUT)
    return drawable(qxl.QXL_DRAW_TEXT, bbox or rect(0, 0, 20, 10), u, clip_rects)


def test_a1_text_with_a_solid_brush_and_background():
    rows = ["#..#", ".##.", "#..#"]
    c = new_canvas(10, 6)
    d = text([glyph_a1(3, 1, rows)], qxl.SPICE_STRING_FLAGS_RASTER_A1, solid(0x00FF0000),
             solid(0x000000FF), rect(2, 0, 8, 5), rect(0, 0, 10, 6))
    c.draw(d, no_surfaces)
    want = np.zeros((6, 10), np.uint32)
    want[0:5, 2:8] = 0x000000FF
    on = np.array([[ch == "#" for ch in r] for r in rows])
    # OVER an opaque colour writes it with alpha 0xff; as the mask's first
    # pixel came out opaque the whole glyph box's top bytes are cleared again
    want[1:4, 3:7][on] = 0x00FF0000
    assert np.array_equal(raw(c), want)


def test_a1_text_keeps_opaque_top_bytes_when_the_first_mask_pixel_is_clear():
    rows = [".#", "##"]
    c = new_canvas(4, 4)
    c.draw(text([glyph_a1(1, 1, rows)], qxl.SPICE_STRING_FLAGS_RASTER_A1, solid(0x00123456),
                bbox=rect(0, 0, 4, 4)), no_surfaces)
    want = np.zeros((4, 4), np.uint32)
    want[1, 2] = want[2, 1] = want[2, 2] = 0xFF123456
    assert np.array_equal(raw(c), want)


def test_a4_text_coverage_is_nibble_times_16():
    nib = np.array([[0xF, 0x8, 0x1], [0x0, 0x4, 0xC]], np.uint8)
    packed = np.zeros((2, 2), np.uint8)
    packed[:, 0] = (nib[:, 0] << 4) | nib[:, 1]
    packed[:, 1] = nib[:, 2] << 4
    g = qxl.RasterGlyph(qxl.Point(1, 0), qxl.Point(0, 0), 3, 2, packed[::-1].reshape(-1).copy())
    dst = np.full((2, 5), 0x00404040, np.uint32)
    c = new_canvas(5, 2, init=dst)
    c.draw(text([g], qxl.SPICE_STRING_FLAGS_RASTER_A4, solid(0x00FFFFFF), bbox=rect(0, 0, 5, 2)),
           no_surfaces)
    cov = nib.astype(np.int64) * 16
    s = [mul(0xFF, cov)] * 4
    d = channels(dst[:, 1:4])
    out = [np.minimum(sc + mul(dc, 255 - s[0]), 255) for sc, dc in zip(s, d, strict=True)]
    want = dst.copy()
    want[:, 1:4] = pack(out)
    assert np.array_equal(raw(c) & 0xFFFFFF, want & 0xFFFFFF)
    assert np.array_equal(raw(c)[:, 1:4] >> 24, pack(out) >> 24)  # first pixel not opaque


def test_text_with_a_pattern_brush_is_anchored_at_the_string_box():
    tile = np.array([[0x00AA0000, 0x0000BB00]], np.uint32)
    c = new_canvas(8, 3)
    rows = ["####"]
    c.draw(text([glyph_a1(2, 1, rows)], qxl.SPICE_STRING_FLAGS_RASTER_A1,
                pattern(bitmap32(tile), 1, 0), bbox=rect(0, 0, 8, 3)), no_surfaces)
    # the pattern origin is relative to the glyph box (2, 1), not the surface
    got = raw(c)[1, 2:6] & 0xFFFFFF
    assert list(got) == [tile[0, (i - 1) % 2] for i in range(4)]


def test_565_read_back_widens_channels_by_bit_replication():
    c = new_canvas(3, 2, qxl.SPICE_SURFACE_FMT_16_565)
    set_pixels(c, np.array([[0xF800, 0x07E0, 0x001F], [0xFFFF, 0, 0x0841]], np.uint16))
    got = c.read_pixels(rect(0, 0, 3, 2))
    assert list(got[0]) == [0xFF0000, 0x00FF00, 0x0000FF]
    assert list(got[1]) == [0xFFFFFF, 0, 0x080808]  # 1, 2, 1 widen to 8, 8, 8

"""Software canvas: fills, rop descriptors, masks, clips, copies, COPY_BITS,
ROP3 and colour keys, against expectations computed here with numpy."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from test_canvas_support import (
    ARGB,
    RGB555,
    bitmap32,
    bitmap_bytes,
    clip,
    drawable,
    mask_bits,
    new_canvas,
    no_surfaces,
    pattern,
    raw,
    rect,
    solid,
)

from spice import qxl
from spice.canvas import ImageCache, SurfaceCanvas

RNG = np.random.default_rng(20240601)
M32 = np.uint32(0xFFFFFFFF)


def rand32(*shape: int) -> np.ndarray:
    return RNG.integers(0, 1 << 32, shape, dtype=np.uint64).astype(np.uint32)


def fill(bbox, brush, rop=qxl.SPICE_ROPD_OP_PUT, mask=qxl.NO_MASK, clip_rects=None):
    return drawable(qxl.QXL_DRAW_FILL, bbox, qxl.Fill(brush, rop, mask), clip_rects)


def copy(src, area, bbox, rop=qxl.SPICE_ROPD_OP_PUT, mask=qxl.NO_MASK, clip_rects=None,
         scale_mode=qxl.SPICE_IMAGE_SCALE_MODE_NEAREST):
    return drawable(qxl.QXL_DRAW_COPY, bbox, qxl.Copy(src, area, rop, scale_mode, mask),
                    clip_rects)


def spec_rop(desc: int, src: np.ndarray, dest: np.ndarray, src_bit: int) -> np.ndarray:
    """The meaning of a QXL rop descriptor: invert the inputs the descriptor
    names, apply its operation, invert the result if asked.  ``src_bit`` is
    the INVERS bit that applies to the source operand of this draw."""
    s = ~src if desc & src_bit else src
    d = ~dest if desc & qxl.SPICE_ROPD_INVERS_DEST else dest
    if desc & qxl.SPICE_ROPD_OP_PUT:
        r = s
    elif desc & qxl.SPICE_ROPD_OP_OR:
        r = s | d
    elif desc & qxl.SPICE_ROPD_OP_AND:
        r = s & d
    elif desc & qxl.SPICE_ROPD_OP_XOR:
        r = s ^ d
    elif desc & qxl.SPICE_ROPD_OP_BLACKNESS:
        return np.zeros_like(dest)
    elif desc & qxl.SPICE_ROPD_OP_WHITENESS:
        return np.full_like(dest, M32)
    elif desc & qxl.SPICE_ROPD_OP_INVERS:
        return ~dest
    else:
        return src.copy()  # no operation named: the reference puts the source
    return ~r if desc & qxl.SPICE_ROPD_INVERS_RES else r


# -- fills ---------------------------------------------------------------------


@pytest.mark.parametrize("bottom_up", [False, True])
def test_solid_fill_writes_the_raw_value_inside_the_box(bottom_up):
    init = rand32(6, 9)
    c = new_canvas(9, 6, bottom_up=bottom_up, init=init)
    c.draw(fill(rect(2, 1, 7, 4), solid(0x80123456)), no_surfaces)
    expected = init.copy()
    expected[1:4, 2:7] = 0x80123456  # the whole 32 bits, top byte included
    assert np.array_equal(raw(c), expected)
    assert np.array_equal(c.read_pixels(rect(0, 0, 9, 6)), expected)


def test_bottom_up_surface_keeps_its_top_row_last_in_memory():
    c = new_canvas(4, 3, bottom_up=True)
    c.draw(fill(rect(0, 0, 4, 1), solid(0x00ABCDEF)), no_surfaces)
    words = c.data.view(np.uint32).reshape(3, 4)
    assert np.all(words[2] == 0x00ABCDEF) and not words[:2].any()


def test_every_rop_descriptor_for_fill():
    dest_row = np.array([0, M32, 0x0F0F0F0F, 0x33333333, 0x55555555, 0x12345678], np.uint32)
    color = np.uint32(0x00FF3C96)
    c = new_canvas(6, 1)
    for desc in range(1 << 11):
        c.fill_rect(rect(0, 0, 6, 1), 0)
        c.put_image(rect(0, 0, 6, 1), dest_row.reshape(1, 6))
        c.draw(fill(rect(0, 0, 6, 1), solid(int(color)), desc), no_surfaces)
        want = spec_rop(desc, np.full(6, color, np.uint32), dest_row,
                        qxl.SPICE_ROPD_INVERS_BRUSH)
        assert np.array_equal(raw(c)[0], want), hex(desc)


def test_pattern_fill_repeats_from_the_brush_origin():
    tile = rand32(2, 3)
    c = new_canvas(10, 7)
    c.draw(fill(rect(1, 1, 9, 6), pattern(bitmap32(tile), 4, 5)), no_surfaces)
    got = raw(c)
    for y in range(1, 6):
        for x in range(1, 9):
            assert got[y, x] == tile[(y - 5) % 2, (x - 4) % 3]
    assert not got[0].any() and not got[:, 0].any()


def test_pattern_fill_with_xor_and_bottom_up_tile():
    tile = rand32(3, 2)
    init = rand32(5, 5)
    c = new_canvas(5, 5, init=init)
    brush = pattern(bitmap32(tile, top_down=False), 0, 0)
    c.draw(fill(rect(0, 0, 5, 5), brush, qxl.SPICE_ROPD_OP_XOR), no_surfaces)
    ys, xs = np.mgrid[0:5, 0:5]
    assert np.array_equal(raw(c), init ^ tile[ys % 3, xs % 2])


def test_fill_is_clipped_to_the_union_of_the_clip_rects_and_the_surface():
    c = new_canvas(12, 10)
    cl = clip((0, 0, 4, 4), (2, 2, 6, 8), (9, 9, 20, 20), (5, 5, 5, 9))  # last one empty
    c.draw(fill(rect(-5, -5, 30, 30), solid(0xFF), clip_rects=cl), no_surfaces)
    want = np.zeros((10, 12), bool)
    want[0:4, 0:4] = want[2:8, 2:6] = want[9:10, 9:12] = True
    assert np.array_equal(raw(c) == 0xFF, want)


def test_an_empty_clip_list_draws_nothing():
    c = new_canvas(4, 4)
    c.draw(fill(rect(0, 0, 4, 4), solid(1), clip_rects=clip()), no_surfaces)
    assert not raw(c).any()


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("invers", [False, True])
@pytest.mark.parametrize("top_down", [False, True])
def test_fill_through_a_one_bit_mask(big_endian, invers, top_down):
    bits = RNG.integers(0, 2, (5, 11), dtype=np.uint8)
    m = qxl.QMask(qxl.SPICE_MASK_FLAGS_INVERS if invers else 0, qxl.Point(2, 1),
                  mask_bits(bits, big_endian, top_down))
    c = new_canvas(16, 8)
    c.draw(fill(rect(3, 2, 15, 8), solid(7), mask=m), no_surfaces)
    # mask pixel (mx, my) sits on bbox.left - pos.x + mx, bbox.top - pos.y + my
    want = np.zeros((8, 16), bool)
    for my in range(5):
        for mx in range(11):
            x, y = 3 - 2 + mx, 2 - 1 + my
            if 3 <= x < 15 and 2 <= y < 8 and bool(bits[my, mx]) != invers:
                want[y, x] = True
    assert np.array_equal(raw(c) == 7, want)


@pytest.mark.parametrize("kind,value", [
    (qxl.QXL_DRAW_BLACKNESS, lambda d: np.zeros_like(d)),
    (qxl.QXL_DRAW_WHITENESS, lambda d: np.full_like(d, M32)),
    (qxl.QXL_DRAW_INVERS, lambda d: ~d),
])
def test_blackness_whiteness_invers(kind, value):
    init = rand32(4, 6)
    c = new_canvas(6, 4, init=init)
    cls = {qxl.QXL_DRAW_BLACKNESS: qxl.Blackness, qxl.QXL_DRAW_WHITENESS: qxl.Whiteness,
           qxl.QXL_DRAW_INVERS: qxl.Invers}[kind]
    c.draw(drawable(kind, rect(1, 1, 5, 3), cls(qxl.NO_MASK)), no_surfaces)
    want = init.copy()
    want[1:3, 1:5] = value(init[1:3, 1:5])
    assert np.array_equal(raw(c), want)


def test_16_bit_surfaces_keep_16_bit_values():
    c = new_canvas(5, 3, RGB555)
    c.draw(fill(rect(0, 0, 5, 3), solid(0x12345678)), no_surfaces)
    assert np.all(raw(c) == 0x5678)
    assert np.all(c.read_pixels(rect(0, 0, 5, 3)) == 0x00AD9CC6)  # 5-bit channels widened


# -- copies --------------------------------------------------------------------


@pytest.mark.parametrize("desc", [qxl.SPICE_ROPD_OP_PUT, qxl.SPICE_ROPD_OP_XOR,
                                  qxl.SPICE_ROPD_OP_AND | qxl.SPICE_ROPD_INVERS_SRC,
                                  qxl.SPICE_ROPD_OP_OR | qxl.SPICE_ROPD_INVERS_DEST,
                                  qxl.SPICE_ROPD_OP_PUT | qxl.SPICE_ROPD_INVERS_RES,
                                  qxl.SPICE_ROPD_OP_XOR | qxl.SPICE_ROPD_INVERS_BRUSH])
def test_copy_with_rop(desc):
    src = rand32(6, 8)
    init = rand32(7, 9)
    c = new_canvas(9, 7, bottom_up=True, init=init)
    c.draw(copy(bitmap32(src, top_down=False), rect(2, 1, 7, 5), rect(3, 2, 8, 6), desc),
           no_surfaces)
    want = init.copy()
    want[2:6, 3:8] = spec_rop(desc, src[1:5, 2:7], init[2:6, 3:8], qxl.SPICE_ROPD_INVERS_SRC)
    assert np.array_equal(raw(c), want)


def test_copy_of_a_24_bit_bitmap_has_a_zero_top_byte():
    rgb = RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_24BIT, 4, 3, rgb.reshape(3, 12))
    c = new_canvas(4, 3, init=np.full((3, 4), M32, np.uint32))
    c.draw(copy(img, rect(0, 0, 4, 3), rect(0, 0, 4, 3)), no_surfaces)
    want = (rgb[..., 2].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
        | rgb[..., 0]
    assert np.array_equal(raw(c), want)


def test_copy_of_a_palette_bitmap_uses_entries_as_pixel_values():
    ents = [0x11223344, 0xAABBCCDD, 0x00000000, 0xFF00FF00]
    idx = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint8)
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_8BIT, 4, 2, idx, ents)
    c = new_canvas(4, 2)
    c.draw(copy(img, rect(0, 0, 4, 2), rect(0, 0, 4, 2)), no_surfaces)
    assert np.array_equal(raw(c), np.array(ents, np.uint32)[idx])


def test_copy_of_16_bit_bitmap_to_32_bit_surface_widens_channels():
    v = np.array([[0x7FFF, 0x0000, 0x7C00, 0x001F]], np.uint16)
    img = bitmap_bytes(qxl.SPICE_BITMAP_FMT_16BIT, 4, 1, v.view(np.uint8))
    c = new_canvas(4, 1)
    c.draw(copy(img, rect(0, 0, 4, 1), rect(0, 0, 4, 1)), no_surfaces)
    # 5-bit channels widen as (v << 3) | (v >> 2); pixman writes an opaque alpha
    assert list(raw(c)[0]) == [0xFFFFFFFF, 0xFF000000, 0xFFFF0000, 0xFF0000FF]


def test_copy_from_another_surface():
    src_canvas = new_canvas(6, 5, bottom_up=True, init=rand32(5, 6))
    c = new_canvas(6, 5)
    img = qxl.SurfaceImage(qxl.ImageDescriptor(7, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 0, 0), 3)
    c.draw(copy(img, rect(1, 2, 4, 5), rect(0, 0, 3, 3)), {3: src_canvas}.get)
    assert np.array_equal(raw(c)[0:3, 0:3], raw(src_canvas)[2:5, 1:4])
    assert not raw(c)[3:].any() and not raw(c)[:, 3:].any()


def test_copy_source_area_beyond_a_surface_draws_only_the_overlap():
    src_canvas = new_canvas(4, 4, init=rand32(4, 4))
    c = new_canvas(6, 6)
    img = qxl.SurfaceImage(qxl.ImageDescriptor(8, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 0, 0), 1)
    c.draw(copy(img, rect(2, 2, 6, 6), rect(0, 0, 4, 4)), {1: src_canvas}.get)
    want = np.zeros((6, 6), np.uint32)
    want[0:2, 0:2] = raw(src_canvas)[2:4, 2:4]
    assert np.array_equal(raw(c), want)


def test_image_cache_draws_the_cached_pixels_for_a_known_id():
    cache = ImageCache()
    first = bitmap32(np.full((2, 2), 0x111111, np.uint32), flags=qxl.QXL_IMAGE_CACHE,
                     image_id=0x55 << 32)
    second = bitmap32(np.full((2, 2), 0x222222, np.uint32), image_id=0x55 << 32)
    c = new_canvas(4, 2)
    c.draw(copy(first, rect(0, 0, 2, 2), rect(0, 0, 2, 2)), no_surfaces, cache)
    c.draw(copy(second, rect(0, 0, 2, 2), rect(2, 0, 4, 2)), no_surfaces, cache)
    assert np.all(raw(c) == 0x111111)
    c.draw(copy(second, rect(0, 0, 2, 2), rect(2, 0, 4, 2)), no_surfaces)  # no cache
    assert np.all(raw(c)[:, 2:] == 0x222222)


def test_high_bits_set_marks_32_bit_pixels_opaque():
    img = bitmap32(np.array([[0x00123456, 0x7F000001]], np.uint32),
                   flags=qxl.QXL_IMAGE_HIGH_BITS_SET)
    c = new_canvas(2, 1)
    c.draw(copy(img, rect(0, 0, 2, 1), rect(0, 0, 2, 1)), no_surfaces)
    assert list(raw(c)[0]) == [0xFF123456, 0xFF000001]


def test_opaque_draws_the_source_then_the_brush_over_it():
    src = rand32(3, 3)
    c = new_canvas(3, 3, init=rand32(3, 3))
    u = qxl.Opaque(bitmap32(src), rect(0, 0, 3, 3), solid(0x0F0F0F0F),
                   qxl.SPICE_ROPD_OP_AND, qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, qxl.NO_MASK)
    c.draw(drawable(qxl.QXL_DRAW_OPAQUE, rect(0, 0, 3, 3), u), no_surfaces)
    assert np.array_equal(raw(c), src & 0x0F0F0F0F)


def test_transparent_skips_the_key_colour_ignoring_the_top_byte():
    src = rand32(4, 5) & 0x00FFFFFF
    src[1, 1] = 0xAB123456
    src[2, 3] = 0x00123456
    init = rand32(4, 5)
    c = new_canvas(5, 4, init=init)
    u = qxl.Transparent(bitmap32(src), rect(0, 0, 5, 4), 0, 0x55123456)
    c.draw(drawable(qxl.QXL_DRAW_TRANSPARENT, rect(0, 0, 5, 4), u), no_surfaces)
    keep = (src & 0xFFFFFF) == 0x123456
    assert np.array_equal(raw(c), np.where(keep, init, src))


# -- COPY_BITS -------------------------------------------------------------------


@pytest.mark.parametrize("dx,dy", [(dx, dy) for dx in (-3, 0, 2) for dy in (-2, 0, 3)
                                   if dx or dy])
@pytest.mark.parametrize("bottom_up", [False, True])
def test_copy_bits_overlapping_in_every_direction(dx, dy, bottom_up):
    init = rand32(12, 14)
    c = new_canvas(14, 12, bottom_up=bottom_up, init=init)
    bbox = rect(4 + dx, 3 + dy, 11 + dx, 9 + dy)
    c.draw(drawable(qxl.QXL_COPY_BITS, bbox, qxl.CopyBits(qxl.Point(4, 3))), no_surfaces)
    want = init.copy()
    want[3 + dy:9 + dy, 4 + dx:11 + dx] = init[3:9, 4:11]  # as if copied from a snapshot
    assert np.array_equal(raw(c), want)


def test_copy_bits_through_clip_bands_and_from_outside_the_surface():
    init = rand32(10, 10)
    c = new_canvas(10, 10, init=init)
    cl = clip((0, 0, 10, 3), (5, 3, 10, 6), (0, 6, 4, 10))
    # source (-2, -1): the destination rows/columns whose source is off-surface stay
    c.draw(drawable(qxl.QXL_COPY_BITS, rect(0, 0, 10, 10), qxl.CopyBits(qxl.Point(-2, -1)), cl),
           no_surfaces)
    want = init.copy()
    region = np.zeros((10, 10), bool)
    region[0:3, :] = region[3:6, 5:] = region[6:, 0:4] = True
    region[:1, :] = False
    region[:, :2] = False
    ys, xs = np.nonzero(region)
    want[ys, xs] = init[ys - 1, xs - 2]
    assert np.array_equal(raw(c), want)


# -- ROP3 ------------------------------------------------------------------------


def ternary(code: int, p: np.ndarray, s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The ternary raster operation: bit (4p + 2s + d) of the code is the
    result for those operand bits."""
    out = np.zeros_like(d)
    for i in range(8):
        if code >> i & 1:
            out |= (p if i & 4 else ~p) & (s if i & 2 else ~s) & (d if i & 1 else ~d)
    return out


def test_all_256_rop3_codes_with_a_solid_brush():
    s = rand32(2, 16)
    d = rand32(2, 16)
    color = np.uint32(0xC3A55A3C)
    c = new_canvas(16, 2)
    for code in range(256):
        c.put_image(rect(0, 0, 16, 2), d)
        u = qxl.Rop3(bitmap32(s), rect(0, 0, 16, 2), solid(int(color)), code,
                     qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, qxl.NO_MASK)
        c.draw(drawable(qxl.QXL_DRAW_ROP3, rect(0, 0, 16, 2), u), no_surfaces)
        assert np.array_equal(raw(c), ternary(code, np.full_like(d, color), s, d)), hex(code)


def test_rop3_with_a_pattern_brush_and_clip():
    s, d, tile = rand32(5, 6), rand32(6, 7), rand32(2, 3)
    c = new_canvas(7, 6, init=d)
    u = qxl.Rop3(bitmap32(s), rect(0, 0, 6, 5), pattern(bitmap32(tile), 1, 0), 0xB8,
                 qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, qxl.NO_MASK)
    c.draw(drawable(qxl.QXL_DRAW_ROP3, rect(1, 1, 7, 6), u, clip((0, 0, 4, 6))), no_surfaces)
    ys, xs = np.mgrid[1:6, 1:7]
    p = tile[(ys - 0) % 2, (xs - 1) % 3]
    want = d.copy()
    full = ternary(0xB8, p, s, d[1:6, 1:7])
    want[1:6, 1:4] = full[:, 0:3]
    assert np.array_equal(raw(c), want)


# -- robustness ------------------------------------------------------------------


def test_malformed_drawables_are_logged_not_raised(caplog):
    c = new_canvas(8, 8, init=rand32(8, 8))
    before = raw(c).copy()
    pal_less = bitmap_bytes(qxl.SPICE_BITMAP_FMT_8BIT, 2, 2, np.zeros((2, 2), np.uint8))
    le4 = bitmap_bytes(qxl.SPICE_BITMAP_FMT_4BIT_LE, 2, 2, np.zeros((2, 1), np.uint8), [0] * 16)
    missing = qxl.SurfaceImage(qxl.ImageDescriptor(9, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 0, 0), 5)
    bad = [
        drawable(99, rect(0, 0, 8, 8), None),
        copy(pal_less, rect(0, 0, 2, 2), rect(0, 0, 2, 2)),
        copy(le4, rect(0, 0, 2, 2), rect(0, 0, 2, 2)),
        copy(missing, rect(0, 0, 2, 2), rect(0, 0, 2, 2)),
        copy(bitmap32(rand32(2, 2)), rect(0, 0, 2, 2), rect(0, 0, 4, 4), scale_mode=7),
        drawable(qxl.QXL_DRAW_ROP3, rect(0, 0, 8, 8),
                 qxl.Rop3(bitmap32(rand32(2, 2)), rect(0, 0, 8, 8), solid(0), 0x88,
                          qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, qxl.NO_MASK)),
    ]
    with caplog.at_level(logging.DEBUG, logger="spice.canvas"):
        for d in bad:
            c.draw(d, no_surfaces)
    assert np.array_equal(raw(c), before)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_surface_with_an_odd_stride_is_kept_but_not_drawn():
    data = np.arange(3 * 10, dtype=np.uint8)
    c = SurfaceCanvas(2, 3, 10, qxl.SPICE_SURFACE_FMT_32_xRGB, data)
    c.draw(fill(rect(0, 0, 2, 3), solid(0)), no_surfaces)
    assert np.array_equal(data, np.arange(30, dtype=np.uint8))
    assert c.read_raw(rect(0, 1, 1, 2))[0, 0] == int.from_bytes(bytes(range(10, 14)), "little")


def test_argb_surface_alpha_is_kept_by_fills():
    c = new_canvas(2, 2, ARGB)
    c.draw(fill(rect(0, 0, 2, 2), solid(0x40102030)), no_surfaces)
    assert np.all(c.read_pixels(rect(0, 0, 2, 2)) == 0x40102030)



def test_quic_image_draws_like_its_bitmap():
    from spice.codecs.quic import quic_encode

    px = rand32(9, 13) & 0x00FFFFFF
    bmp = bitmap32(px)
    stream = quic_encode(bmp.data, 13, 9, 13 * 4, qxl.SPICE_BITMAP_FMT_32BIT, True)
    quic = qxl.QuicImage(qxl.ImageDescriptor(77 << 32, qxl.SPICE_IMAGE_TYPE_QUIC, 0, 13, 9),
                         np.frombuffer(stream, np.uint8))
    a, b = new_canvas(20, 12), new_canvas(20, 12)
    a.draw(copy(quic, rect(0, 0, 13, 9), rect(3, 2, 16, 11)), no_surfaces)
    b.draw(copy(bmp, rect(0, 0, 13, 9), rect(3, 2, 16, 11)), no_surfaces)
    assert np.array_equal(raw(a), raw(b)) and raw(a)[2:11, 3:16].any()


def test_corrupt_quic_image_is_skipped():
    quic = qxl.QuicImage(qxl.ImageDescriptor(78 << 32, qxl.SPICE_IMAGE_TYPE_QUIC, 0, 4, 4),
                         np.arange(64, dtype=np.uint8))
    c = new_canvas(4, 4)
    c.draw(copy(quic, rect(0, 0, 4, 4), rect(0, 0, 4, 4)), no_surfaces)
    assert not raw(c).any()

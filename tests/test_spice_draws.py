"""Every QXL draw type on the wire: the client decodes each DRAW_* message,
renders it with the project's canvas, and ends with the server's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from spice_client import Session
from spice_harness import (
    Harness,
    bitmap32,
    draw_cmd,
    drawable,
    primary_create,
)

from spice import qxl
from spice.protocol import MsgDisplay

W, H = 96, 64
PUT = qxl.SPICE_ROPD_OP_PUT


def pattern(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << 24, (h, w), dtype=np.uint32)


def mask_bitmap(w: int, h: int, seed: int) -> qxl.BitmapImage:
    stride = (w + 7) // 8
    data = np.random.default_rng(seed).integers(0, 256, stride * h, dtype=np.uint8)
    desc = qxl.ImageDescriptor(0, qxl.SPICE_IMAGE_TYPE_BITMAP, 0, w, h)
    return qxl.BitmapImage(desc, qxl.SPICE_BITMAP_FMT_1BIT_BE, qxl.QXL_BITMAP_TOP_DOWN, w, h,
                           stride, None, data)


def palette_bitmap(w: int, h: int, seed: int, unique: int) -> qxl.BitmapImage:
    rng = np.random.default_rng(seed)
    ents = rng.integers(0, 1 << 24, 256, dtype=np.uint32)
    data = rng.integers(0, 256, w * h, dtype=np.uint8)
    desc = qxl.ImageDescriptor(0, qxl.SPICE_IMAGE_TYPE_BITMAP, 0, w, h)
    return qxl.BitmapImage(desc, qxl.SPICE_BITMAP_FMT_8BIT, qxl.QXL_BITMAP_TOP_DOWN, w, h, w,
                           qxl.Palette(unique, ents), data)


def solid(color: int) -> qxl.Brush:
    return qxl.Brush(qxl.SPICE_BRUSH_TYPE_SOLID, color)


def glyphs() -> qxl.GlyphString:
    rng = np.random.default_rng(9)
    gl = [qxl.RasterGlyph(qxl.Point(10 + 9 * i, 30), qxl.Point(0, -8), 8, 10,
                          rng.integers(0, 256, 10, dtype=np.uint8)) for i in range(4)]
    flags = qxl.SPICE_STRING_FLAGS_RASTER_A1 | qxl.SPICE_STRING_FLAGS_RASTER_TOP_DOWN
    return qxl.GlyphString(flags, gl)


def all_draws() -> list[qxl.Drawable]:
    src = bitmap32(pattern(20, 24, 1))
    m = qxl.QMask(0, qxl.Point(0, 0), mask_bitmap(24, 20, 2))
    pat = qxl.Brush(qxl.SPICE_BRUSH_TYPE_PATTERN, pattern=bitmap32(pattern(8, 8, 3)),
                    pos=qxl.Point(1, 2))
    area = qxl.Rect(0, 0, 20, 24)
    path = [qxl.PathSeg(qxl.QXL_PATH_BEGIN | qxl.QXL_PATH_END,
                        np.array([[5 << 4, 5 << 4], [60 << 4, 40 << 4], [80 << 4, 10 << 4]],
                                 np.int32))]
    return [
        drawable(0, qxl.QXL_DRAW_FILL, (2, 2, 22, 26), qxl.Fill(solid(0x336699), PUT, m)),
        drawable(0, qxl.QXL_DRAW_OPAQUE, (4, 30, 24, 54),
                 qxl.Opaque(src, area, solid(0x00FF00), PUT, 1, qxl.NO_MASK)),
        drawable(0, qxl.QXL_DRAW_COPY, (30, 2, 50, 26),
                 qxl.Copy(palette_bitmap(24, 20, 4, 0x55), area, PUT, 1, qxl.NO_MASK),
                 clip=[(30, 2, 40, 14), (42, 10, 50, 26)]),
        drawable(0, qxl.QXL_DRAW_BLEND, (30, 30, 50, 54),
                 qxl.Blend(src, area, qxl.SPICE_ROPD_OP_XOR, 1, qxl.NO_MASK)),
        drawable(0, qxl.QXL_DRAW_BLACKNESS, (0, 60, 10, 70), qxl.Blackness(qxl.NO_MASK)),
        drawable(0, qxl.QXL_DRAW_WHITENESS, (10, 60, 20, 70), qxl.Whiteness(qxl.NO_MASK)),
        drawable(0, qxl.QXL_DRAW_INVERS, (20, 56, 44, 80),
                 qxl.Invers(qxl.QMask(qxl.SPICE_MASK_FLAGS_INVERS, qxl.Point(0, 0),
                                      mask_bitmap(24, 24, 5)))),
        drawable(0, qxl.QXL_DRAW_ROP3, (44, 60, 64, 84), qxl.Rop3(src, area, pat, 0xCA, 1,
                                                                  qxl.NO_MASK)),
        drawable(0, qxl.QXL_DRAW_STROKE, (0, 0, H, W),
                 qxl.Stroke(path, qxl.LineAttr(0, None), solid(0xFFFF00), PUT, PUT)),
        drawable(0, qxl.QXL_DRAW_TEXT, (20, 8, 36, 50),
                 qxl.Text(glyphs(), qxl.Rect(20, 8, 36, 50), solid(0xFFFFFF), solid(0x000080),
                          PUT, PUT)),
        drawable(0, qxl.QXL_DRAW_TRANSPARENT, (2, 70, 22, 94),
                 qxl.Transparent(src, area, int(pattern(20, 24, 1)[0, 0]), 0)),
        drawable(0, qxl.QXL_DRAW_ALPHA_BLEND, (40, 70, 60, 94),
                 qxl.AlphaBlend(0, 128, src, area)),
        drawable(0, qxl.QXL_COPY_BITS, (50, 0, 64, 20), qxl.CopyBits(qxl.Point(4, 2))),
        drawable(0, qxl.QXL_DRAW_COMPOSITE, (0, 40, 16, 56),
                 qxl.Composite(3, src, None, None, None, qxl.Point(0, 0), qxl.Point(0, 0))),
    ]


@pytest.fixture
def live():
    h = Harness()
    create, mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.mem = mem
    yield h
    h.close()


def test_every_draw_type_decodes_and_renders_like_the_server(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.use_canvas = True
    d.pump(until=MsgDisplay.MARK)
    draws = all_draws()
    toks = []
    for dr in draws:
        tok = live.qxl.token()
        toks.append(tok)
        live.qxl.push(draw_cmd(dr, tok))
    got = []
    while len(got) < len(draws):
        t, body = d.ch.recv()
        decoded = d.apply(t, body)
        if isinstance(decoded, qxl.Drawable):
            got.append((t, decoded))
    from spice.display_marshal import DRAW_MESSAGE
    assert [t for t, _ in got] == [DRAW_MESSAGE[dr.type] for dr in draws]
    for (_, g), dr in zip(got, draws, strict=True):
        assert g.type == dr.type and g.surface_id == dr.surface_id and g.bbox == dr.bbox
        if dr.clip is None:
            assert g.clip is None
        else:
            assert (g.clip == dr.clip).all()
    assert got[2][1].u.src_bitmap.palette.unique == 0x55
    assert got[9][1].u.string.glyphs[2].render_pos == qxl.Point(28, 30)
    live.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    server = live.mem.view("<u4").reshape(H, W)
    client = d.surfaces[0].pixels32()
    assert (client == server).all(), np.argwhere(client != server)[:10]
    assert server.any()
    assert live.qxl.wait_released(toks)
    s.close()


def test_late_client_sees_rendered_draws(live):
    toks = []
    for dr in all_draws():
        tok = live.qxl.token()
        toks.append(tok)
        live.qxl.push(draw_cmd(dr, tok))
    live.qxl.wait_drained()
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    server = live.mem.view("<u4").reshape(H, W)
    # the x byte of xRGB pixels does not travel in compressed images
    assert ((d.surfaces[0].pixels32() ^ server) & 0xFFFFFF == 0).all()
    assert live.qxl.wait_released(toks)
    s.close()


def test_self_bitmap_drawable_gets_its_own_area(live):
    """A drawable flagged self_bitmap reads its destination area, snapshotted
    before it is added (spice-server's handle_self_bitmap)."""
    q = live.qxl
    q.push(draw_cmd(drawable(0, qxl.QXL_DRAW_COPY, (0, 0, 20, 24),
                             qxl.Copy(bitmap32(pattern(20, 24, 7)), qxl.Rect(0, 0, 20, 24), PUT,
                                      1, qxl.NO_MASK)), q.token()))
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.use_canvas = True
    d.pump(until=MsgDisplay.MARK)
    u = qxl.Opaque(None, qxl.Rect(0, 0, 20, 24), solid(0xFF), qxl.SPICE_ROPD_OP_XOR, 1,
                   qxl.NO_MASK)
    q.push(draw_cmd(drawable(0, qxl.QXL_DRAW_OPAQUE, (30, 30, 50, 54), u, self_bitmap=1,
                             self_area=(0, 0, 20, 24)), q.token()))
    got = d.pump(until=MsgDisplay.DRAW_OPAQUE)
    assert isinstance(got.u.src_bitmap, qxl.BitmapImage)
    assert got.u.src_bitmap.descriptor.id & 0xFF == qxl.QXL_IMAGE_GROUP_RED
    live.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    server = live.mem.view("<u4").reshape(H, W)
    assert (d.surfaces[0].pixels32() == server).all()
    s.close()

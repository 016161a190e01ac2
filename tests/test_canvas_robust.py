"""Software canvas under odd but validated drawables: every draw type with
extreme rectangles, sizes, rops, masks, brushes and paths never raises and
never logs an error (a skipped drawable is logged at debug level)."""

from __future__ import annotations

import logging

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_canvas_support import XRGB, bitmap_bytes, drawable, new_canvas, rect

from spice import qxl
from spice.canvas import ImageCache

COORD = st.integers(-70000, 70000) | st.integers(-8, 40)
SMALL = st.integers(0, 12)


@st.composite
def rects(draw):
    return rect(draw(COORD), draw(COORD), draw(COORD), draw(COORD))


@st.composite
def bitmaps(draw, formats=tuple(range(0, 12))):
    fmt = draw(st.sampled_from(formats))
    w, h = draw(SMALL), draw(SMALL)
    bpp = qxl.BITMAP_FMT_BPP[fmt] if fmt < len(qxl.BITMAP_FMT_BPP) else 8
    stride = (w * bpp + 7) // 8 + draw(st.integers(0, 3))
    rows = np.frombuffer(draw(st.binary(min_size=stride * h, max_size=stride * h)), np.uint8)
    pal = draw(st.none() | st.lists(st.integers(0, 0xFFFFFFFF), min_size=0, max_size=20))
    img = bitmap_bytes(fmt, w, h, rows.reshape(h, stride), pal, draw(st.booleans()))
    img.descriptor.flags = draw(st.sampled_from([0, 1, 2, 3]))
    img.descriptor.id = draw(st.integers(1, 3)) << 32
    return img


def images():
    surf = st.builds(lambda sid: qxl.SurfaceImage(
        qxl.ImageDescriptor(9 << 32, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 0, 0), sid),
        st.integers(0, 3))
    return bitmaps() | surf | st.none()


@st.composite
def brushes(draw):
    kind = draw(st.integers(0, 3))
    pat = draw(images()) if kind == 2 else None
    return qxl.Brush(kind, draw(st.integers(0, 0xFFFFFFFF)), pat,
                     qxl.Point(draw(COORD), draw(COORD)))


@st.composite
def masks(draw):
    img = draw(st.none() | bitmaps((1, 2, 5)) | images())
    return qxl.QMask(draw(st.integers(0, 3)), qxl.Point(draw(COORD), draw(COORD)), img)


ROPD = st.integers(0, 0xFFFF)
SCALE = st.integers(0, 3)


@st.composite
def paths(draw):
    segs = []
    for _ in range(draw(st.integers(0, 4))):
        n = draw(st.integers(0, 7))
        pts = np.array(draw(st.lists(st.tuples(st.integers(-2**27, 2**27), st.integers(-600, 900)),
                                     min_size=n, max_size=n)), np.int32).reshape(-1, 2)
        segs.append(qxl.PathSeg(draw(st.integers(0, 31)), pts))
    return segs


@st.composite
def glyph_strings(draw):
    glyphs = []
    for _ in range(draw(st.integers(0, 4))):
        w, h = draw(SMALL), draw(SMALL)
        data = np.frombuffer(draw(st.binary(min_size=h * w, max_size=h * w)), np.uint8)
        glyphs.append(qxl.RasterGlyph(qxl.Point(draw(COORD), draw(COORD)),
                                      qxl.Point(draw(COORD), draw(COORD)), w, h, data))
    return qxl.GlyphString(draw(st.integers(0, 15)), glyphs)


def transforms():
    return st.none() | st.builds(qxl.Transform, *([st.integers(-2**31, 2**31 - 1)] * 6))


PAYLOADS = {
    qxl.QXL_DRAW_FILL: st.builds(qxl.Fill, brushes(), ROPD, masks()),
    qxl.QXL_DRAW_OPAQUE: st.builds(qxl.Opaque, images(), rects(), brushes(), ROPD, SCALE, masks()),
    qxl.QXL_DRAW_COPY: st.builds(qxl.Copy, images(), rects(), ROPD, SCALE, masks()),
    qxl.QXL_DRAW_BLEND: st.builds(qxl.Blend, images(), rects(), ROPD, SCALE, masks()),
    qxl.QXL_COPY_BITS: st.builds(qxl.CopyBits, st.builds(qxl.Point, COORD, COORD)),
    qxl.QXL_DRAW_BLACKNESS: st.builds(qxl.Blackness, masks()),
    qxl.QXL_DRAW_WHITENESS: st.builds(qxl.Whiteness, masks()),
    qxl.QXL_DRAW_INVERS: st.builds(qxl.Invers, masks()),
    qxl.QXL_DRAW_ROP3: st.builds(qxl.Rop3, images(), rects(), brushes(), st.integers(0, 255),
                                 SCALE, masks()),
    qxl.QXL_DRAW_STROKE: st.builds(
        qxl.Stroke, paths(),
        st.builds(qxl.LineAttr, st.integers(0, 15),
                  st.none() | st.lists(st.integers(-100, 300), max_size=6).map(
                      lambda v: np.array(v, np.int32))),
        brushes(), ROPD, ROPD),
    qxl.QXL_DRAW_TEXT: st.builds(qxl.Text, glyph_strings(), rects(), brushes(), brushes(),
                                 ROPD, ROPD),
    qxl.QXL_DRAW_TRANSPARENT: st.builds(qxl.Transparent, images(), rects(),
                                        st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    qxl.QXL_DRAW_ALPHA_BLEND: st.builds(qxl.AlphaBlend, st.integers(0, 3), st.integers(0, 255),
                                        images(), rects()),
    qxl.QXL_DRAW_COMPOSITE: st.builds(qxl.Composite, st.integers(0, 2**25 - 1), images(),
                                      transforms(), images(), transforms(),
                                      st.builds(qxl.Point, COORD, COORD),
                                      st.builds(qxl.Point, COORD, COORD)),
}


@st.composite
def drawables(draw):
    t = draw(st.sampled_from(sorted(PAYLOADS)))
    clip = draw(st.none() | st.lists(st.tuples(COORD, COORD, COORD, COORD), max_size=6).map(
        lambda v: np.array(v, np.int32).reshape(-1, 4)))
    return drawable(t, draw(rects()), draw(PAYLOADS[t]), clip)


SURFACES = [new_canvas(24, 16), new_canvas(9, 7, qxl.SPICE_SURFACE_FMT_16_555, True),
            new_canvas(5, 5, qxl.SPICE_SURFACE_FMT_32_ARGB), new_canvas(6, 4, XRGB, True)]
CACHE = ImageCache()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawables(), st.integers(0, 3))
def test_no_drawable_raises_or_logs_an_error(d, target):
    errors = _Errors()
    logger = logging.getLogger("spice.canvas")
    logger.addHandler(errors)
    try:
        SURFACES[target].draw(d, lambda i: SURFACES[i] if 0 <= i < len(SURFACES) else None,
                              CACHE)
    finally:
        logger.removeHandler(errors)
    assert not errors.messages, errors.messages

"""Occlusion culling in the current tree: covered drawables are dropped from
the tree and from client pipes, and the canvas still ends with exactly what
rendering every drawable in order gives (COPY_BITS sources and surfaces
read by other drawables are protected)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spice_client import Session
from spice_harness import (
    Harness,
    bitmap32,
    copy_cmd,
    draw_cmd,
    drawable,
    fill_cmd,
    primary_create,
    surface_cmd,
)

from spice import qxl
from spice.canvas import ImageCache, SurfaceCanvas
from spice.options import SpiceOptions
from spice.protocol import MsgDisplay

W, H = 40, 30
PUT, XOR = qxl.SPICE_ROPD_OP_PUT, qxl.SPICE_ROPD_OP_XOR


def serve() -> Harness:
    h = Harness(SpiceOptions(port=0, disable_ticketing=True, streaming_video="off"))
    create, mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.mem = mem
    return h


def stats(h: Harness) -> dict:
    return h.call(h.server.stats)


def screen(h: Harness) -> np.ndarray:
    h.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    return h.mem.view("<u4").reshape(H, W).copy()


def copy_bits(tok, dest, src_pos, clip=None):
    return draw_cmd(drawable(0, qxl.QXL_COPY_BITS, dest, qxl.CopyBits(qxl.Point(*src_pos)), clip),
                    tok)


def test_covered_drawables_are_culled_and_counted():
    h = serve()
    try:
        q = h.qxl
        toks = [q.token() for _ in range(5)]
        q.push(fill_cmd(toks[0], (0, 0, 10, 10), 0x111111),
               fill_cmd(toks[1], (5, 5, 15, 15), 0x222222, rop=XOR),  # not opaque: not a culler
               fill_cmd(toks[2], (0, 0, 10, 5), 0x333333),           # covers half of the first
               fill_cmd(toks[3], (0, 5, 10, 10), 0x444444),          # ... and the other half
               fill_cmd(toks[4], (0, 0, 20, 20), 0x555555))          # covers everything above
        q.wait_drained()
        assert q.wait_released(toks[:4])  # culled: back to the guest without rendering
        st_ = stats(h)
        assert st_["display0_culled_drawables"] == 4
        assert st_["display0_culled_pixels"] == 100 + 100 + 50 + 50
        assert st_["display0_renders"] == 0
        px = screen(h)
        assert (px[:20, :20] == 0x555555).all() and (px[20:, :] == 0).all()
        assert stats(h)["display0_renders"] == 1
    finally:
        h.close()


def test_draws_that_do_not_cover_cull_nothing():
    h = serve()
    try:
        q = h.qxl
        masked = qxl.Fill(qxl.Brush(qxl.SPICE_BRUSH_TYPE_SOLID, 0xABCDEF), PUT,
                          qxl.QMask(0, qxl.Point(0, 0), bitmap32(np.ones((20, 20), np.uint32))))
        q.push(fill_cmd(q.token(), (0, 0, 10, 10), 0x111111),
               # the guest calls these opaque, but they read the destination
               fill_cmd(q.token(), (0, 0, 20, 20), 0x0F0F0F, rop=XOR),
               draw_cmd(drawable(0, qxl.QXL_DRAW_FILL, (0, 0, 20, 20), masked), q.token()),
               fill_cmd(q.token(), (2, 2, 8, 8), 0x777777, clip=[(0, 0, 4, 4)]),
               draw_cmd(drawable(0, qxl.QXL_DRAW_FILL, (0, 0, 20, 20), qxl.Fill(
                   qxl.Brush(qxl.SPICE_BRUSH_TYPE_SOLID, 1), PUT, qxl.NO_MASK),
                   effect=qxl.QXL_EFFECT_BLEND), q.token()))
        q.wait_drained()
        assert stats(h)["display0_culled_drawables"] == 0
    finally:
        h.close()


def test_copy_bits_source_is_protected():
    """Paint A white, copy A to B, paint A blue: B must end white."""
    h = serve()
    try:
        q = h.qxl
        toks = [q.token() for _ in range(4)]
        q.push(fill_cmd(toks[0], (0, 0, 10, 10), 0xFFFFFF),
               copy_bits(toks[1], (0, 20, 10, 30), (0, 0)),
               fill_cmd(toks[2], (0, 0, 10, 10), 0x0000FF))
        q.wait_drained()
        assert stats(h)["display0_culled_drawables"] == 0
        px = screen(h)
        assert (px[0:10, 20:30] == 0xFFFFFF).all() and (px[0:10, 0:10] == 0x0000FF).all()
        # once the copy's destination is covered too, nothing needs the source
        q.push(fill_cmd(toks[3], (0, 0, 10, 30), 0x00FF00))
        q.wait_drained()
        assert (screen(h)[0:10, 0:30] == 0x00FF00).all()
    finally:
        h.close()


def test_a_surface_read_by_a_pending_draw_keeps_its_drawables():
    h = serve()
    try:
        q = h.qxl
        create, _ = surface_cmd(q.token(), 3, 10, 10)
        src = qxl.SurfaceImage(qxl.ImageDescriptor(0, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 10, 10), 3)
        q.push(create,
               fill_cmd(q.token(), (0, 0, 10, 10), 0xAA0000, surface_id=3),
               copy_cmd(q.token(), (5, 5, 15, 15), src),
               fill_cmd(q.token(), (0, 0, 10, 10), 0x00BB00, surface_id=3))
        q.wait_drained()
        assert stats(h)["display0_culled_drawables"] == 0
        assert (screen(h)[5:15, 5:15] == 0xAA0000).all()
    finally:
        h.close()


def test_culled_drawables_leave_the_pipe_of_a_client_that_is_behind():
    h = serve()
    try:
        s = Session("127.0.0.1", h.port)
        d = s.open_display()
        d.pump(until=MsgDisplay.MARK)
        d.ch.auto_ack = False  # the server stops after twice the ACK window
        q = h.qxl
        for i in range(60):
            q.push(fill_cmd(q.token(), (i % H, 0, i % H + 1, 1), i, rop=XOR))
        for i in range(30):
            q.push(fill_cmd(q.token(), (0, 0, H, W), 0x010101 * i))
        q.wait_drained()
        st_ = stats(h)
        assert st_["display0_culled_drawables"] >= 29 + 30  # every XOR row and all but one fill
        assert st_["display0_culled_pipe_items"] >= 29
        d.ch.auto_ack = True
        d.ch.send(2)  # MSGC_ACK
        d.pump(timeout=1.0)
        fills = [m for t, m in d.messages if t == MsgDisplay.DRAW_FILL]
        assert len(fills) < 60
        assert (d.surfaces[0].pixels32() == 0x010101 * 29).all()
        s.close()
    finally:
        h.close()


# -- culling never changes the picture --------------------------------------------------


def rect_st():
    return st.tuples(st.integers(0, H - 1), st.integers(0, W - 1), st.integers(1, H),
                     st.integers(1, W)).map(lambda v: (v[0], v[1], max(v[0] + 1, v[2]),
                                                       max(v[1] + 1, v[3])))


@st.composite
def draw_st(draw):
    kind = draw(st.sampled_from(["fill", "fill", "xor", "copy", "copy_bits", "blackness"]))
    t, lf, b, r = draw(rect_st())
    clip = draw(st.one_of(st.none(), st.lists(rect_st(), min_size=1, max_size=3)))
    color = draw(st.integers(0, 0xFFFFFF))
    if kind in ("fill", "xor"):
        u = qxl.Fill(qxl.Brush(qxl.SPICE_BRUSH_TYPE_SOLID, color), PUT if kind == "fill" else XOR,
                     qxl.NO_MASK)
        return drawable(0, qxl.QXL_DRAW_FILL, (t, lf, b, r), u, clip)
    if kind == "blackness":
        return drawable(0, qxl.QXL_DRAW_BLACKNESS, (t, lf, b, r), qxl.Blackness(qxl.NO_MASK), clip)
    if kind == "copy":
        pix = np.random.default_rng(color).integers(0, 1 << 24, (b - t, r - lf), dtype=np.uint32)
        u = qxl.Copy(bitmap32(pix), qxl.Rect(0, 0, b - t, r - lf), PUT,
                     qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, qxl.NO_MASK)
        return drawable(0, qxl.QXL_DRAW_COPY, (t, lf, b, r), u, clip)
    sy = draw(st.integers(0, H - (b - t)))
    sx = draw(st.integers(0, W - (r - lf)))
    return drawable(0, qxl.QXL_COPY_BITS, (t, lf, b, r), qxl.CopyBits(qxl.Point(sx, sy)), clip)


_harness: list[Harness] = []


def shared() -> Harness:
    if not _harness:
        _harness.append(serve())
    return _harness[0]


def teardown_module() -> None:
    for h in _harness:
        h.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(draw_st(), min_size=1, max_size=25))
def test_the_canvas_matches_rendering_everything(draws):
    h = shared()
    q = h.qxl
    reset = drawable(0, qxl.QXL_DRAW_FILL, (0, 0, H, W), qxl.Fill(
        qxl.Brush(qxl.SPICE_BRUSH_TYPE_SOLID, 0), PUT, qxl.NO_MASK))
    q.push(*(draw_cmd(d, q.token()) for d in [reset, *draws]))
    q.wait_drained()
    got = screen(h)
    ref_mem = np.zeros(H * W * 4, np.uint8)
    canvas = SurfaceCanvas(W, H, W * 4, qxl.SPICE_SURFACE_FMT_32_xRGB, ref_mem)
    cache = ImageCache()
    for d in draws:
        canvas.draw(d, lambda sid: canvas if sid == 0 else None, cache)
    assert (got == ref_mem.view("<u4").reshape(H, W)).all()


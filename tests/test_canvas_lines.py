"""Software canvas: DRAW_STROKE (X11 zero-width lines, dashes, Bezier
flattening) against hand-derived pixels and rasteriser invariants."""

from __future__ import annotations

import numpy as np
import pytest
from test_canvas_support import bitmap32 as bitmap
from test_canvas_support import clip, drawable, new_canvas, no_surfaces, pattern, raw, rect, solid

from spice import qxl

BEGIN_END = qxl.QXL_PATH_BEGIN | qxl.QXL_PATH_END


def stroke(segments, brush=None, rop=qxl.SPICE_ROPD_OP_PUT, style=None, start_gap=False,
           bbox=None, clip_rects=None):
    """``segments`` are (flags, [(x, y), ...]) with whole-pixel points."""
    path = [qxl.PathSeg(f, np.array(p, np.int32).reshape(-1, 2) * 16) for f, p in segments]
    if style is None:
        attr = qxl.LineAttr(0, None)
    else:
        flags = qxl.SPICE_LINE_FLAGS_STYLED
        if start_gap:
            flags |= qxl.SPICE_LINE_FLAGS_START_WITH_GAP
        attr = qxl.LineAttr(flags, np.array(style, np.int32) * 16)
    u = qxl.Stroke(path, attr, brush or solid(1), rop, rop)
    return drawable(qxl.QXL_DRAW_STROKE, bbox or rect(-100, -100, 100, 100), u, clip_rects)


def lit(canvas) -> set[tuple[int, int]]:
    ys, xs = np.nonzero(raw(canvas))
    return set(zip(xs.tolist(), ys.tolist(), strict=True))


@pytest.mark.parametrize("a,b,pixels", [
    ((1, 2), (6, 2), {(1, 2), (2, 2), (3, 2), (4, 2), (5, 2)}),
    ((3, 1), (3, 5), {(3, 1), (3, 2), (3, 3), (3, 4)}),
    ((0, 0), (4, 4), {(0, 0), (1, 1), (2, 2), (3, 3)}),
    # slope 1/2: Bresenham error e = 2dy - dx = 0 at the first mid-point, and
    # this octant (x and y increasing) is not biased, so y steps there
    ((0, 0), (4, 2), {(0, 0), (1, 1), (2, 1), (3, 2)}),
])
def test_zero_width_lines_leave_out_their_last_pixel(a, b, pixels):
    c = new_canvas(8, 8)
    c.draw(stroke([(BEGIN_END, [a, b])]), no_surfaces)
    assert lit(c) == pixels


def test_a_line_lights_the_same_pixels_in_both_directions():
    rng = np.random.default_rng(3)
    for _ in range(40):
        a = tuple(int(v) for v in rng.integers(0, 20, 2))
        b = tuple(int(v) for v in rng.integers(0, 20, 2))
        if a == b:
            continue
        fwd, back = new_canvas(20, 20), new_canvas(20, 20)
        fwd.draw(stroke([(BEGIN_END, [a, b])]), no_surfaces)
        back.draw(stroke([(BEGIN_END, [b, a])]), no_surfaces)
        assert lit(fwd) | {b} == lit(back) | {a}


def test_clipping_to_the_surface_does_not_move_pixels():
    rng = np.random.default_rng(4)
    for _ in range(60):
        pts = [tuple(int(v) for v in rng.integers(-25, 45, 2)) for _ in range(3)]
        big = new_canvas(80, 80)
        big.draw(stroke([(BEGIN_END, [(x + 30, y + 30) for x, y in pts])]), no_surfaces)
        small = new_canvas(20, 20)
        small.draw(stroke([(BEGIN_END, pts)]), no_surfaces)
        assert np.array_equal(raw(small), raw(big)[30:50, 30:50])


def test_clip_rects_restrict_the_stroke():
    seg = [(BEGIN_END, [(0, 0), (15, 15), (0, 15)])]
    full, clipped = new_canvas(16, 16), new_canvas(16, 16)
    full.draw(stroke(seg), no_surfaces)
    clipped.draw(stroke(seg, clip_rects=clip((0, 0, 8, 16), (10, 12, 16, 16))), no_surfaces)
    keep = np.zeros((16, 16), bool)
    keep[:, 0:8] = True
    keep[12:16, 10:16] = True
    assert np.array_equal(raw(clipped), np.where(keep, raw(full), 0))


def test_xor_strokes_toggle_pixels_drawn_by_two_segments():
    c = new_canvas(8, 2)
    c.draw(stroke([(BEGIN_END, [(0, 0), (5, 0), (0, 0)])], solid(0xFF), qxl.SPICE_ROPD_OP_XOR),
           no_surfaces)
    # out: x = 0..4, back: x = 5..1 -- pixels 1..4 are toggled twice
    assert lit(c) == {(0, 0), (5, 0)}


def test_close_returns_to_the_first_point_and_begin_starts_a_new_polyline():
    c = new_canvas(8, 8)
    close = qxl.QXL_PATH_BEGIN | qxl.QXL_PATH_END | qxl.QXL_PATH_CLOSE
    c.draw(stroke([(close, [(1, 1), (5, 1), (5, 4)]), (BEGIN_END, [(0, 7), (3, 7)])]),
           no_surfaces)
    # closing (5, 4) -> (1, 1): y = 4 - 0.75 (x - 5) rounded; the tie at x = 3
    # stays on the axis, as X11 biases that octant
    want = {(x, 1) for x in range(1, 5)} | {(5, y) for y in range(1, 4)} \
        | {(5, 4), (4, 3), (3, 3), (2, 2)} | {(0, 7), (1, 7), (2, 7)}
    assert lit(c) == want


def test_a_bezier_with_control_points_on_the_chord_is_its_line():
    c1, c2 = new_canvas(20, 4), new_canvas(20, 4)
    bez = qxl.QXL_PATH_BEGIN | qxl.QXL_PATH_END | qxl.QXL_PATH_BEZIER
    c1.draw(stroke([(bez, [(0, 2), (6, 2), (12, 2), (18, 2)])]), no_surfaces)
    c2.draw(stroke([(BEGIN_END, [(0, 2), (18, 2)])]), no_surfaces)
    assert np.array_equal(raw(c1), raw(c2))


def test_a_curved_bezier_passes_through_its_end_points_and_bends():
    c = new_canvas(20, 20)
    bez = qxl.QXL_PATH_BEGIN | qxl.QXL_PATH_END | qxl.QXL_PATH_BEZIER
    c.draw(stroke([(bez, [(1, 18), (1, 1), (18, 1), (18, 18)])]), no_surfaces)
    px = lit(c)
    assert (1, 18) in px and (18, 18) not in px  # the end point is the line's last
    assert min(y for _, y in px) <= 6  # the arch rises towards the control points
    assert all(1 <= x <= 18 for x, _ in px)


def test_pattern_stroke_takes_pattern_pixels_from_the_brush_origin():
    tile = np.array([[0x10, 0x20, 0x30]], np.uint32)
    c = new_canvas(8, 2)
    c.draw(stroke([(BEGIN_END, [(0, 1), (7, 1)])], pattern(bitmap(tile), 2, 0)), no_surfaces)
    assert list(raw(c)[1, :7]) == [tile[0, (x - 2) % 3] for x in range(7)]


def render(style, pts, start_gap=False, size=(14, 12)):
    c = new_canvas(*size)
    c.draw(stroke([(BEGIN_END, pts)], style=style, start_gap=start_gap), no_surfaces)
    return ["".join("#" if v else "." for v in row) for row in raw(c)]


def test_dashes_are_measured_along_the_line():
    # on 2, off 1, starting at the first point; the last point is not drawn
    assert render([2, 1], [(0, 1), (12, 1)])[1] == "##.##.##.##..."
    assert render([3, 2, 1, 2], [(0, 1), (12, 1)])[1] == "###..#..###..."


def test_start_with_gap_rotates_the_dash_list():
    assert render([2, 1], [(0, 1), (12, 1)], start_gap=True)[1] == "..#..#..#..#.."


def test_dashes_continue_around_a_corner():
    rows = render([3, 1], [(0, 1), (12, 1), (12, 9)])
    assert rows[1] == "###.###.###.#."
    assert [r[12] for r in rows[2:10]] == list("##.###..")

"""Styled (dashed) STROKE lines: the X11 "wide dash" code at line width 1,
which is what spice-common uses for zero-width dashed lines (OnOffDash,
CapNotLast, JoinMiter).

Each "on" dash of a segment is a quadrilateral filled with the X11 polygon
span rules; consecutive "on" ends of two segments get a miter join.  With a
raster operation that is not idempotent (XOR, INVERT, ...) and at least
three points, all spans are merged so that each pixel is painted once; with
other operations (or two points) the polygons are painted one by one, as
the reference does.  The arithmetic is the reference's, in doubles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spice.canvas.lines import clip_spans
from spice.canvas.surface import DrawError

V_TOP, V_RIGHT, V_BOTTOM, V_LEFT = 0, 1, 2, 3
SQSECANT = 108.856472512142  # miter limit constant: 1/sin^2(11/2)
# Dashes are rasterised whole, off-surface parts included, as the reference
# does; longer polylines than this are refused rather than left to run for
# minutes.
MAX_DASHED_LENGTH = 1 << 20


def _iceil(x: float) -> int:
    t = int(x)
    return t if (x == t or x < 0.0) else t + 1


def _careful(rop: int) -> bool:
    """Raster operations whose result changes when a pixel is painted twice."""
    return (rop & 0xC) == 0x8 or (rop & 0x3) == 0x2


@dataclass(slots=True)
class _Edge:
    height: int = 0
    x: int = 0
    stepx: int = 0
    signdx: int = 0
    e: int = 0
    dy: int = 0
    dx: int = 0


@dataclass(slots=True)
class _Face:
    xa: float = 0.0
    ya: float = 0.0
    dx: int = 0
    dy: int = 0
    x: int = 0
    y: int = 0
    k: float = 0.0


def _build_edge(y0: float, k: float, dx: int, dy: int, xi: int, yi: int, left: int,
                edge: _Edge) -> int:
    """miPolyBuildEdge."""
    if dy < 0:
        dy, dx, k = -dy, -dx, -k
    y = _iceil(y0)
    xady = _iceil(k) + y * dx
    if xady <= 0:
        x = -((-xady) // dy) - 1
    else:
        x = (xady - 1) // dy
    e = xady - x * dy
    if dx >= 0:
        edge.signdx = 1
        edge.stepx = dx // dy
        edge.dx = dx % dy
    else:
        edge.signdx = -1
        edge.stepx = -((-dx) // dy)
        edge.dx = (-dx) % dy
        e = dy - e + 1
    edge.dy = dy
    edge.x = x + left + xi
    edge.e = e - dy
    return y + yi


def _step_around(v: int, incr: int, size: int) -> int:
    if v + incr < 0:
        return size - 1
    if v + incr == size:
        return 0
    return v + incr


def _build_poly(vx: list[float], vy: list[float], sdx: list[int], sdy: list[int],
                sk: list[float], count: int, xi: int, yi: int):
    """miPolyBuildPoly: (top y, left edges, right edges, height)."""
    miny = maxy = vy[0]
    top = bottom = 0
    for i in range(1, count):
        if vy[i] < miny:
            top = i
            miny = vy[i]
        if vy[i] >= maxy:
            bottom = i
            maxy = vy[i]
    clockwise = 1
    slopeoff = 0
    j = _step_around(top, -1, count)
    if sdy[j] * sdx[top] > sdy[top] * sdx[j]:
        clockwise = -1
        slopeoff = -1
    bottomy = _iceil(maxy) + yi
    right: list[_Edge] = []
    lasty = topy = 0
    s = _step_around(top, slopeoff, count)
    i = top
    while i != bottom:
        if sdy[s] != 0:
            e = _Edge()
            y = _build_edge(vy[i], sk[s], sdx[s], sdy[s], xi, yi, 0, e)
            if right:
                right[-1].height = y - lasty
            else:
                topy = y
            right.append(e)
            lasty = y
        i = _step_around(i, clockwise, count)
        s = _step_around(s, clockwise, count)
    if right:
        right[-1].height = bottomy - lasty
    slopeoff = -1 if slopeoff == 0 else 0
    left: list[_Edge] = []
    s = _step_around(top, slopeoff, count)
    i = top
    while i != bottom:
        if sdy[s] != 0:
            e = _Edge()
            y = _build_edge(vy[i], sk[s], sdx[s], sdy[s], xi, yi, 1, e)
            if left:
                left[-1].height = y - lasty
            left.append(e)
            lasty = y
        i = _step_around(i, -clockwise, count)
        s = _step_around(s, -clockwise, count)
    if left:
        left[-1].height = bottomy - lasty
    return topy, left, right, bottomy - topy


def _fill_poly(out: list[tuple[int, int, int]], y: int, left: list[_Edge],
               right: list[_Edge]) -> None:
    """miFillPolyHelper: append the polygon's spans (x, y, width)."""
    li = ri = 0
    lh = rh = 0
    lx = le = lstep = lsign = ldy = ldx = 0
    rx = re = rstep = rsign = rdy = rdx = 0
    while (li < len(left) or lh) and (ri < len(right) or rh):
        if not lh and li < len(left):
            ed = left[li]
            lh, lx, lstep, lsign, le, ldy, ldx = ed.height, ed.x, ed.stepx, ed.signdx, ed.e, \
                ed.dy, ed.dx
            li += 1
        if not rh and ri < len(right):
            ed = right[ri]
            rh, rx, rstep, rsign, re, rdy, rdx = ed.height, ed.x, ed.stepx, ed.signdx, ed.e, \
                ed.dy, ed.dx
            ri += 1
        height = min(lh, rh)
        lh -= height
        rh -= height
        for _ in range(height):
            if rx >= lx:
                out.append((lx, y, rx - lx + 1))
            y += 1
            lx += lstep
            le += ldx
            if le > 0:
                lx += lsign
                le -= ldy
            rx += rstep
            re += rdx
            if re > 0:
                rx += rsign
                re -= rdy


def _step_dash(dist: int, index: int, dashes: list[int]) -> tuple[int, int]:
    """miStepDash from the start of the list: (dash index, offset)."""
    offset = 0
    if dist < dashes[index] - offset:
        return index, offset + dist
    dist -= dashes[index] - offset
    index = (index + 1) % len(dashes)
    total = sum(dashes)
    if 0 < total <= dist:
        dist %= total
    while dist >= dashes[index]:
        dist -= dashes[index]
        index = (index + 1) % len(dashes)
    return index, dist


def _dash_segment(out, dashes, state, x1, y1, x2, y2, lface: _Face, rface: _Face) -> None:
    """miWideDashSegment at line width 1, on/off dashes, no caps."""
    dash_offset, dash_index = state
    dx = x2 - x1
    dy = y2 - y1
    dash_remain = dashes[dash_index] - dash_offset
    half = 0.5
    if dx == 0:
        length = float(dy)
        rdx, rdy = 0.0, half
        if dy < 0:
            length = float(-dy)
            rdy = -half
    elif dy == 0:
        length = float(dx)
        rdx, rdy = half, 0.0
        if dx < 0:
            length = float(-dx)
            rdx = -half
    else:
        length = math.hypot(float(dx), float(dy))
        r = half / length
        rdx = r * dx
        rdy = r * dy
    k = half * length
    remain = length
    sdx = [dx, -dy, -dx, dy]
    sdy = [dy, dx, -dy, -dx]
    sk = [k, 0.0, k, 0.0]
    vx = [rdy, rdy, -rdy, -rdy]
    vy = [-rdx, -rdx, rdx, rdx]
    while remain > dash_remain:
        ddx = (dash_remain * dx) / length
        ddy = (dash_remain * dy) / length
        vx[V_RIGHT] += ddx
        vy[V_RIGHT] += ddy
        vx[V_BOTTOM] += ddx
        vy[V_BOTTOM] += ddy
        sk[V_RIGHT] = vx[V_RIGHT] * dx + vy[V_RIGHT] * dy
        if not dash_index & 1:
            y, left, right, _ = _build_poly(vx, vy, sdx, sdy, sk, 4, x1, y1)
            _fill_poly(out, y, left, right)
        remain -= dash_remain
        dash_index = (dash_index + 1) % len(dashes)
        dash_remain = dashes[dash_index]
        vx[V_TOP], vy[V_TOP] = vx[V_RIGHT], vy[V_RIGHT]
        vx[V_LEFT], vy[V_LEFT] = vx[V_BOTTOM], vy[V_BOTTOM]
        sk[V_LEFT] = -sk[V_RIGHT]
    if not dash_index & 1:
        vx[V_TOP] -= dx
        vy[V_TOP] -= dy
        vx[V_LEFT] -= dx
        vy[V_LEFT] -= dy
        vx[V_RIGHT], vy[V_RIGHT] = rdy, -rdx
        vx[V_BOTTOM], vy[V_BOTTOM] = -rdy, rdx
        sk[V_RIGHT] = 0.0
        sk[V_LEFT] += dx * dx + dy * dy
        y, left, right, _ = _build_poly(vx, vy, sdx, sdy, sk, 4, x2, y2)
        _fill_poly(out, y, left, right)
    dash_remain = int(float(dash_remain) - remain)
    if dash_remain == 0:
        dash_index = (dash_index + 1) % len(dashes)
        dash_remain = dashes[dash_index]
    lface.x, lface.y, lface.dx, lface.dy = x1, y1, dx, dy
    lface.xa, lface.ya, lface.k = rdy, -rdx, k
    rface.x, rface.y, rface.dx, rface.dy = x2, y2, -dx, -dy
    rface.xa, rface.ya, rface.k = -rdy, rdx, k
    state[0] = dashes[dash_index] - dash_remain
    state[1] = dash_index


def _line_join(out, span_data: bool, pl: _Face, pr: _Face) -> None:
    """miLineJoin with a miter join at line width 1."""
    if not span_data:
        if pl.dx > 0 or (pl.dx == 0 and pl.dy > 0):
            return
        if pr.dx > 0 or (pr.dx == 0 and pr.dy > 0):
            return
    denom = -pl.dx * float(pr.dy) + pr.dx * float(pl.dy)
    if denom == 0:
        return
    swap = False
    if denom > 0:
        pl.xa, pl.ya, pl.dx, pl.dy = -pl.xa, -pl.ya, -pl.dx, -pl.dy
    else:
        swap = True
        pr.xa, pr.ya, pr.dx, pr.dy = -pr.xa, -pr.ya, -pr.dx, -pr.dy
    vx = [pr.xa, 0.0, pl.xa, 0.0]
    vy = [pr.ya, 0.0, pl.ya, 0.0]
    sdx = [-pr.dy, pl.dy, 0, 0]
    sdy = [pr.dx, -pl.dx, 0, 0]
    sk = [0.0, 0.0, 0.0, 0.0]
    my = (pl.dy * (pr.xa * pr.dy - pr.ya * pr.dx) - pr.dy * (pl.xa * pl.dy - pl.ya * pl.dx)) / denom
    if pl.dy != 0:
        mx = pl.xa + (my - pl.ya) * float(pl.dx) / float(pl.dy)
    else:
        mx = pr.xa + (my - pr.ya) * float(pr.dx) / float(pr.dy)
    if (mx * mx + my * my) * 4 > SQSECANT:
        # bevel
        adx = ddx = pr.xa - pl.xa
        ady = ddy = pr.ya - pl.ya
        adx, ady = abs(adx), abs(ady)
        scale = adx if adx > ady else ady
        sdx[2] = int((ddx * 65536) / scale)
        sdy[2] = int((ddy * 65536) / scale)
        sk[2] = ((pl.xa + pr.xa) * sdy[2] - (pl.ya + pr.ya) * sdx[2]) / 2.0
        count = 3
    else:
        sign = -1 if swap else 1
        sdx[2], sdy[2], sk[2] = sign * pl.dx, sign * pl.dy, sign * pl.k
        vx[3], vy[3] = mx, my
        sdx[3], sdy[3], sk[3] = sign * pr.dx, sign * pr.dy, sign * pr.k
        count = 4
    y, left, right, _ = _build_poly(vx, vy, sdx, sdy, sk, count, pl.x, pl.y)
    _fill_poly(out, y, left, right)


def dash_spans(pts: np.ndarray, dashes: list[int], dash_offset: int,
               span_data: bool) -> list[tuple[int, int, int]]:
    """miWideDash for a polyline: the spans of its "on" dashes and joins."""
    out: list[tuple[int, int, int]] = []
    npt = pts.shape[0]
    if npt == 0:
        return out
    x2, y2 = int(pts[0, 0]), int(pts[0, 1])
    self_join = x2 == int(pts[-1, 0]) and y2 == int(pts[-1, 1])
    index, offset = _step_dash(dash_offset, 0, dashes)
    state = [offset, index]
    first = True
    something = False
    end_fg = prev_fg = first_fg = False
    first_face = _Face()
    prev_right = _Face()
    rface = _Face()
    for p in range(1, npt):
        x1, y1 = x2, y2
        x2, y2 = int(pts[p, 0]), int(pts[p, 1])
        if x1 != x2 or y1 != y2:
            something = True
            lface, rface = _Face(), _Face()
            prev_index = state[1]
            _dash_segment(out, dashes, state, x1, y1, x2, y2, lface, rface)
            start_fg = not prev_index & 1
            end_fg = bool((state[1] & 1) ^ (state[0] != 0))
            if start_fg:
                if first or not prev_fg:
                    if first and self_join:
                        first_face = lface
                        first_fg = start_fg
                else:
                    _line_join(out, span_data, lface, prev_right)
            prev_right = rface
            prev_fg = end_fg
            first = False
        if p == npt - 1 and something and end_fg and self_join and first_fg:
            _line_join(out, span_data, first_face, rface)
    return out


def dash_boxes(pts: np.ndarray, dashes: list[int], dash_offset: int, rop: int, width: int,
               height: int, region: np.ndarray) -> np.ndarray:
    """The boxes (one row each) a dashed polyline paints, clipped to the
    region; painted once each when the reference merges spans."""
    if not dashes or sum(dashes) == 0:
        raise DrawError("dash pattern of zero length (the reference loops forever)")
    d = np.abs(np.diff(pts.astype(np.int64), axis=0)).sum() if pts.shape[0] > 1 else 0
    if d > MAX_DASHED_LENGTH:
        raise DrawError(f"dashed polyline {d} pixels long")
    span_data = pts.shape[0] >= 3 and _careful(rop)
    spans = dash_spans(pts, dashes, dash_offset, span_data)
    if not spans:
        return np.zeros((0, 4), np.int32)
    arr = np.array(spans, np.int64).reshape(-1, 3)
    if span_data:
        arr = _unique_spans(arr)
    out = np.zeros((arr.shape[0] * max(region.shape[0], 1) + 1, 4), np.int32)
    k = clip_spans(arr, arr.shape[0], region, out)
    return out[:k]


def _unique_spans(arr: np.ndarray) -> np.ndarray:
    """miFillUniqueSpanGroup: per row, the union of the spans."""
    order = np.lexsort((arr[:, 0], arr[:, 1]))
    merged: list[list[int]] = []
    for x, y, w in arr[order].tolist():
        if w <= 0:
            continue
        if merged and merged[-1][1] == y and x <= merged[-1][0] + merged[-1][2]:
            end = max(merged[-1][0] + merged[-1][2], x + w)
            merged[-1][2] = end - merged[-1][0]
        else:
            merged.append([x, y, w])
    return np.array(merged, np.int64).reshape(-1, 3)

"""DRAW_STROKE: paths flattened to polylines and drawn as X11 zero-width
lines (canvas_draw_stroke with the mi line code of spice-common's lines.c).

Points are 28.4 fixed point rounded to whole pixels (x.5 rounds down);
Bezier segments are split at their midpoints until they deviate from their
chord by less than half a pixel.  Solid lines use the Bresenham rasteriser
with X11's default bias and no last pixel (CapNotLast); styled lines use
the dashed rasteriser of :mod:`.dashes` (X11 wide dashes of width 1).
Every segment's pixels go through the rop separately, so an XOR stroke that
crosses itself toggles the crossing twice, as in the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from spice import qxl
from spice.canvas import raster
from spice.canvas.surface import DrawError

if TYPE_CHECKING:
    from spice.canvas.surface import DrawContext, SurfaceCanvas

OUT_LEFT = 0x08
OUT_RIGHT = 0x04
OUT_ABOVE = 0x02
OUT_BELOW = 0x01
XDECREASING = 4
YDECREASING = 2
YMAJOR = 1
# octants biased towards an axial step when the error term is zero
DEFAULT_BIAS = (1 << (YDECREASING | YMAJOR)) | (1 << (XDECREASING | YDECREASING | YMAJOR)) \
    | (1 << (XDECREASING | YDECREASING)) | (1 << XDECREASING)

# equation term bits of the clipper
T_2NDX = 1 << 0
T_DXNOTY = 1 << 1
T_SUBDXORY = 1 << 2
T_BIASSUBONE = 1 << 3
T_DIV2DX = 1 << 4
T_ADDONE = 1 << 5
EQN1 = T_DXNOTY | T_DIV2DX
EQN1B = EQN1
EQN2 = T_DXNOTY | T_BIASSUBONE | T_DIV2DX
EQN2B = EQN2
EQN3 = T_SUBDXORY | T_BIASSUBONE | T_DIV2DX | T_ADDONE
EQN3B = T_BIASSUBONE | T_DIV2DX
EQN4 = T_SUBDXORY | T_DIV2DX | T_ADDONE
EQN4B = T_DIV2DX
EQN5 = T_2NDX | T_DXNOTY | T_SUBDXORY | T_BIASSUBONE | T_ADDONE
EQN5B = T_2NDX | T_DXNOTY | T_BIASSUBONE
EQN6 = T_2NDX | T_DXNOTY | T_SUBDXORY | T_ADDONE
EQN6B = T_2NDX | T_DXNOTY
EQN7 = T_2NDX
EQN7B = EQN7
EQN8 = T_2NDX | T_BIASSUBONE
EQN8B = EQN8


@njit(cache=True, nogil=True, inline="always")
def _outcode(x, y, xmin, ymin, xmax, ymax):
    oc = 0
    if x < xmin:
        oc |= OUT_LEFT
    if x > xmax:
        oc |= OUT_RIGHT
    if y < ymin:
        oc |= OUT_ABOVE
    if y > ymax:
        oc |= OUT_BELOW
    return oc


@njit(cache=True, nogil=True)
def zero_clip_line(xmin, ymin, xmax, ymax, x1, y1, x2, y2, adx, ady, octant, bias, oc1, oc2):
    """miZeroClipLine: clip a Bresenham line to the box without changing
    which pixels it lights.  Returns (result, x1, y1, x2, y2, clip1, clip2)
    with result -1 when nothing is left."""
    swapped = False
    clip1 = 0
    clip2 = 0
    x1o, y1o, x2o, y2o = x1, y1, x2, y2
    xmajor = (octant & YMAJOR) == 0
    b = (bias >> octant) & 1
    utmp = 0
    eqn = 0
    anchor = 0
    negslope = False
    while True:
        if oc1 & oc2:
            return -1, x1, y1, x2, y2, oc1, oc2
        if (oc1 | oc2) == 0:
            if swapped:
                x1, y1, x2, y2 = x2, y2, x1, y1
                clip1, clip2 = clip2, clip1
            return 1, x1, y1, x2, y2, clip1, clip2
        if oc1 == 0:
            x1, y1, x2, y2 = x2, y2, x1, y1
            x1o, y1o, x2o, y2o = x2o, y2o, x1o, y1o
            oc1, oc2 = oc2, oc1
            clip1, clip2 = clip2, clip1
            swapped = not swapped
        clip1 |= oc1
        if oc1 & OUT_LEFT:
            negslope = (octant & YDECREASING) != 0
            utmp = (xmin - x1o) & 0xFFFFFFFF
            if utmp <= 32767:
                eqn = (EQN2 if swapped else EQN1) if xmajor else (EQN4 if swapped else EQN3)
                anchor = y1o
            else:
                utmp = (x2o - xmin) & 0xFFFFFFFF
                eqn = (EQN1B if swapped else EQN2B) if xmajor else (EQN3B if swapped else EQN4B)
                anchor = y2o
                negslope = not negslope
            x1 = xmin
        elif oc1 & OUT_ABOVE:
            negslope = (octant & XDECREASING) != 0
            utmp = (ymin - y1o) & 0xFFFFFFFF
            if utmp <= 32767:
                eqn = (EQN6 if swapped else EQN5) if xmajor else (EQN8 if swapped else EQN7)
                anchor = x1o
            else:
                utmp = (y2o - ymin) & 0xFFFFFFFF
                eqn = (EQN5B if swapped else EQN6B) if xmajor else (EQN7B if swapped else EQN8B)
                anchor = x2o
                negslope = not negslope
            y1 = ymin
        elif oc1 & OUT_RIGHT:
            negslope = (octant & YDECREASING) != 0
            utmp = (x1o - xmax) & 0xFFFFFFFF
            if utmp <= 32767:
                eqn = (EQN2 if swapped else EQN1) if xmajor else (EQN4 if swapped else EQN3)
                anchor = y1o
            else:
                utmp = (xmax - x2o) & 0xFFFFFFFF
                eqn = (EQN1B if swapped else EQN2B) if xmajor else (EQN3B if swapped else EQN4B)
                anchor = y2o
                negslope = not negslope
            x1 = xmax
        elif oc1 & OUT_BELOW:
            negslope = (octant & XDECREASING) != 0
            utmp = (y1o - ymax) & 0xFFFFFFFF
            if utmp <= 32767:
                eqn = (EQN6 if swapped else EQN5) if xmajor else (EQN8 if swapped else EQN7)
                anchor = x1o
            else:
                utmp = (ymax - y2o) & 0xFFFFFFFF
                eqn = (EQN5B if swapped else EQN6B) if xmajor else (EQN7B if swapped else EQN8B)
                anchor = x2o
                negslope = not negslope
            y1 = ymax
        if swapped:
            negslope = not negslope
        # 32-bit unsigned arithmetic, as the reference
        utmp = (utmp << 1) & 0xFFFFFFFF
        utmp = (utmp * (adx if eqn & T_2NDX else ady)) & 0xFFFFFFFF
        if eqn & T_DXNOTY:
            utmp = (utmp - adx if eqn & T_SUBDXORY else utmp + adx) & 0xFFFFFFFF
        else:
            utmp = (utmp - ady if eqn & T_SUBDXORY else utmp + ady) & 0xFFFFFFFF
        if eqn & T_BIASSUBONE:
            utmp = (utmp + b - 1) & 0xFFFFFFFF
        else:
            utmp = (utmp - b) & 0xFFFFFFFF
        utmp = utmp // ((adx << 1) if eqn & T_DIV2DX else (ady << 1))
        if eqn & T_ADDONE:
            utmp += 1
        step = utmp & 0xFFFFFFFF
        if step & 0x80000000:
            step -= 1 << 32
        if negslope:
            step = -step
        if eqn & T_2NDX:
            x1 = anchor + step
        else:
            y1 = anchor + step
        oc1 = _outcode(x1, y1, xmin, ymin, xmax, ymax)


@njit(cache=True, nogil=True)
def zero_line_spans(pts, width, height, spans):
    """miZeroLine (CoordModeOrigin, CapNotLast): the spans (x, y, w) of a
    polyline clipped to width x height; returns how many were written."""
    xmin, ymin, xmax, ymax = 0, 0, width - 1, height - 1
    n = 0
    npt = pts.shape[0]
    x2 = pts[0, 0]
    y2 = pts[0, 1]
    oc2 = _outcode(x2, y2, xmin, ymin, xmax, ymax)
    for k in range(1, npt):
        x1, y1, oc1 = x2, y2, oc2
        x2 = pts[k, 0]
        y2 = pts[k, 1]
        oc2 = _outcode(x2, y2, xmin, ymin, xmax, ymax)
        octant = 0
        adx = x2 - x1
        sx = 1
        if adx < 0:
            adx = -adx
            sx = -1
            octant |= XDECREASING
        ady = y2 - y1
        sy = 1
        if ady < 0:
            ady = -ady
            sy = -1
            octant |= YDECREASING
        xmajor = adx > ady
        if xmajor:
            e1 = ady << 1
            e2 = e1 - (adx << 1)
            e = e1 - adx
            length = adx
        else:
            e1 = adx << 1
            e2 = e1 - (ady << 1)
            e = e1 - ady
            length = ady
            octant |= YMAJOR
        e -= (DEFAULT_BIAS >> octant) & 1
        nx1, ny1 = x1, y1
        if oc1 | oc2:
            res, nx1, ny1, nx2, ny2, c1, c2 = zero_clip_line(
                xmin, ymin, xmax, ymax, x1, y1, x2, y2, adx, ady, octant, DEFAULT_BIAS, oc1, oc2)
            if res == -1:
                continue
            length = abs(nx2 - nx1) if xmajor else abs(ny2 - ny1)
            if c2:
                length += 1
            if c1:
                cdx = abs(nx1 - x1)
                cdy = abs(ny1 - y1)
                if xmajor:
                    e += cdy * e2 + (cdx - cdy) * e1
                else:
                    e += cdx * e2 + (cdy - cdx) * e1
        x, y = nx1, ny1
        e3 = e2 - e1
        e = e - e1
        cur_y = 0
        fresh = True
        for _ in range(length):
            if not fresh and y == cur_y:
                if x < spans[n - 1, 0]:
                    spans[n - 1, 0] = x
                spans[n - 1, 2] += 1
            else:
                if n >= spans.shape[0]:
                    return -1
                spans[n, 0] = x
                spans[n, 1] = y
                spans[n, 2] = 1
                cur_y = y
                fresh = False
                n += 1
            e += e1
            if xmajor:
                if e >= 0:
                    y += sy
                    e += e3
                x += sx
            else:
                if e >= 0:
                    x += sx
                    e += e3
                y += sy
    return n


@njit(cache=True, nogil=True)
def clip_spans(spans, n, region, out):
    """spice_canvas_clip_spans: each span cut to the region's boxes, as
    boxes (x1, y1, x2, y2)."""
    k = 0
    for i in range(n):
        x = spans[i, 0]
        y = spans[i, 1]
        x2 = x + spans[i, 2]
        for j in range(region.shape[0]):
            if region[j, 1] <= y < region[j, 3]:
                a = max(x, region[j, 0])
                b = min(x2, region[j, 2])
                if a < b:
                    if k >= out.shape[0]:
                        return -1
                    out[k, 0] = a
                    out[k, 1] = y
                    out[k, 2] = b
                    out[k, 3] = y + 1
                    k += 1
    return k


def fix_to_int(v: int) -> int:
    """28.4 to int, rounding x.5 down."""
    val = v >> 4
    return val + 1 if (v & 0xF) > 8 else val


def _tdiv2(v: int) -> int:
    """C integer division by two (towards zero)."""
    return -((-v) >> 1) if v < 0 else v >> 1


def _bezier(out: list[tuple[int, int]], p0, p1, p2, p3, depth: int = 0) -> None:
    """subdivide_bezier: append the flattened curve's points after p0."""
    def dot(x1, y1, x2, y2):
        return (x1 * x2 + y1 * y2) >> 4

    a2 = dot(p1[0] - p0[0], p1[1] - p0[1], p1[0] - p0[0], p1[1] - p0[1])
    b2 = dot(p3[0] - p0[0], p3[1] - p0[1], p3[0] - p0[0], p3[1] - p0[1])
    c2 = dot(p2[0] - p3[0], p2[1] - p3[1], p2[0] - p3[0], p2[1] - p3[1])
    ab = dot(p1[0] - p0[0], p1[1] - p0[1], p3[0] - p0[0], p3[1] - p0[1])
    cb = dot(p2[0] - p3[0], p2[1] - p3[1], p0[0] - p3[0], p0[1] - p3[1])
    h1 = (a2 * b2 - ab * ab) >> 3
    h2 = (c2 * b2 - cb * cb) >> 3
    # A curve whose points have all become equal never passes the test and
    # recurses until the reference's stack overflows; stop there, and after
    # a depth no real curve needs.
    if (h1 < b2 and h2 < b2) or p0 == p1 == p2 == p3 or depth >= 24:
        out.append((fix_to_int(p3[0]), fix_to_int(p3[1])))
        return

    def mid(a, b):
        return (_tdiv2(a[0] + b[0]), _tdiv2(a[1] + b[1]))

    p01, p12, p23 = mid(p0, p1), mid(p1, p2), mid(p2, p3)
    p012, p123 = mid(p01, p12), mid(p12, p23)
    p0123 = mid(p012, p123)
    _bezier(out, p0, p01, p012, p0123, depth + 1)
    _bezier(out, p0123, p123, p23, p3, depth + 1)


def polylines(path: list[qxl.PathSeg]) -> list[list[tuple[int, int]]]:
    """The path as the polylines the reference draws, in order.

    The reference keeps one point buffer and only resets its count when it
    draws, so a CLOSE right after a flush appends the previous polyline's
    first point; that is kept.  A Bezier with no current point reads before
    the buffer there; such a curve is skipped here."""
    result: list[list[tuple[int, int]]] = []
    buf: list[tuple[int, int]] = []
    count = 0

    def append(pt: tuple[int, int]) -> None:
        nonlocal count
        if count < len(buf):
            buf[count] = pt
        else:
            buf.append(pt)
        count += 1

    def flush() -> None:
        nonlocal count
        if count:
            result.append(buf[:count])
        count = 0

    for seg in path:
        pts = [(int(p[0]), int(p[1])) for p in np.asarray(seg.points).reshape(-1, 2)]
        i = 0
        if seg.flags & qxl.QXL_PATH_BEGIN and pts:
            flush()
            append((fix_to_int(pts[0][0]), fix_to_int(pts[0][1])))
            i = 1
        rest = pts[i:]
        if seg.flags & qxl.QXL_PATH_BEZIER:
            if len(rest) % 3:
                # the reference gives up on the whole stroke here, drawing
                # none of the lines it has not flushed yet
                return result
            for k in range(0, len(rest) - 2, 3):
                if count == 0:
                    continue
                curve: list[tuple[int, int]] = []
                p0 = (buf[count - 1][0] << 4, buf[count - 1][1] << 4)
                _bezier(curve, p0, rest[k], rest[k + 1], rest[k + 2])
                for pt in curve:
                    append(pt)
        else:
            for x, y in rest:
                append((fix_to_int(x), fix_to_int(y)))
        if seg.flags & qxl.QXL_PATH_END:
            if seg.flags & qxl.QXL_PATH_CLOSE and buf:
                append(buf[0])
            flush()
    flush()
    return result


def dash_list(attr: qxl.LineAttr) -> tuple[list[int], int] | None:
    """The X11 dash list (bytes) and dash offset of a styled line."""
    if not attr.flags & qxl.SPICE_LINE_FLAGS_STYLED:
        return None
    style = [int(v) for v in np.asarray(attr.style if attr.style is not None else [],
                                         dtype=np.int64).reshape(-1)][:255]
    n = len(style)
    dashes = [fix_to_int(v) & 0xFF for v in style]
    offset = 0
    if attr.flags & qxl.SPICE_LINE_FLAGS_START_WITH_GAP and n:
        dashes = dashes[1:] + dashes[:1]
        offset = dashes[0]
    return dashes, offset


def draw_stroke(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable,
                region: np.ndarray) -> None:
    from spice.canvas.draws import IN_BRUSH, IN_DEST, _check_depth, rop_from_descriptor

    u: qxl.Stroke = d.u
    pf = canvas.pix.fmt
    if region.shape[0] == 0:
        ctx.touch_brush(u.brush, pf)
        return
    rop = rop_from_descriptor(u.fore_mode, IN_BRUSH, IN_DEST)
    dashes = dash_list(u.attr)
    tile = None
    if u.brush.type == qxl.SPICE_BRUSH_TYPE_PATTERN:
        tile = ctx.source(u.brush.pattern, False, pf)
        _check_depth(canvas, tile)
    elif u.brush.type not in (qxl.SPICE_BRUSH_TYPE_SOLID, qxl.SPICE_BRUSH_TYPE_NONE):
        raise DrawError(f"unknown brush type {u.brush.type}")
    color = u.brush.color if u.brush.type == qxl.SPICE_BRUSH_TYPE_SOLID else 0
    pix = canvas.pix
    for poly in polylines(u.path):
        pts = np.array(poly, np.int64).reshape(-1, 2)
        if dashes is None:
            boxes = _solid_boxes(pts, canvas.width, canvas.height, region)
        else:
            from spice.canvas.dashes import dash_boxes

            boxes = dash_boxes(pts, dashes[0], dashes[1], rop, canvas.width, canvas.height,
                               region)
        if boxes.shape[0] == 0:
            continue
        if tile is None:
            value = color & ((1 << (8 * pix.data.itemsize)) - 1)
            raster.fill_rects(pix.data, pix.top, pix.stride, boxes, value, rop)
        else:
            raster.tile_rects(pix.data, pix.top, pix.stride, boxes, tile.data, tile.top,
                              tile.stride, tile.w, tile.h, u.brush.pos.x, u.brush.pos.y, rop)


def _solid_boxes(pts: np.ndarray, width: int, height: int, region: np.ndarray) -> np.ndarray:
    cap = max(width, height) * max(pts.shape[0], 1) + 16
    spans = np.zeros((cap, 3), np.int64)
    n = zero_line_spans(pts, width, height, spans)
    if n < 0:
        raise DrawError("stroke produced more spans than the surface can hold")
    out = np.zeros((n * max(region.shape[0], 1) + 1, 4), np.int32)
    k = clip_spans(spans, n, region, out)
    return out[:k]

"""Rectangle regions in canonical y-x banded form.

A region is an int32 array of shape (n, 4) holding boxes (x1, y1, x2, y2),
sorted by band (y) then x, where every band's boxes share y1/y2, boxes in a
band neither overlap nor touch, and vertically adjacent bands with identical
x spans are merged.  That form is unique for a set of pixels and it is the
one pixman produces, which matters where the order of the boxes is visible:
COPY_BITS copies box by box inside one surface.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OP_UNION = 0
OP_INTERSECT = 1
OP_SUBTRACT = 2

EMPTY = np.zeros((0, 4), np.int32)


@njit(cache=True, nogil=True)
def _band_spans(reg, start, y, out):
    """Copy the x spans of the band of ``reg`` covering row ``y`` into ``out``;
    ``start`` is where to begin looking.  Returns (count, next start)."""
    n = reg.shape[0]
    i = start
    while i < n and reg[i, 3] <= y:
        i += 1
    k = 0
    j = i
    while j < n and reg[j, 1] <= y < reg[j, 3]:
        out[k, 0] = reg[j, 0]
        out[k, 1] = reg[j, 2]
        k += 1
        j += 1
    return k, i


@njit(cache=True, nogil=True)
def _combine(a, na, b, nb, op, out):
    """Combine two sorted, disjoint span lists; returns the span count."""
    k = 0
    if op == 1:  # intersect
        i = 0
        j = 0
        while i < na and j < nb:
            lo = max(a[i, 0], b[j, 0])
            hi = min(a[i, 1], b[j, 1])
            if lo < hi:
                out[k, 0] = lo
                out[k, 1] = hi
                k += 1
            if a[i, 1] < b[j, 1]:
                i += 1
            else:
                j += 1
        return k
    if op == 0:  # union: merge overlapping or touching spans
        i = 0
        j = 0
        while i < na or j < nb:
            if j >= nb or (i < na and a[i, 0] <= b[j, 0]):
                lo = a[i, 0]
                hi = a[i, 1]
                i += 1
            else:
                lo = b[j, 0]
                hi = b[j, 1]
                j += 1
            if k > 0 and lo <= out[k - 1, 1]:
                if hi > out[k - 1, 1]:
                    out[k - 1, 1] = hi
            else:
                out[k, 0] = lo
                out[k, 1] = hi
                k += 1
        return k
    # subtract b from a
    j = 0
    for i in range(na):
        lo = a[i, 0]
        hi = a[i, 1]
        while j < nb and b[j, 1] <= lo:
            j += 1
        jj = j
        while lo < hi and jj < nb and b[jj, 0] < hi:
            if b[jj, 0] > lo:
                out[k, 0] = lo
                out[k, 1] = b[jj, 0]
                k += 1
            if b[jj, 1] > lo:
                lo = b[jj, 1]
            jj += 1
        if lo < hi:
            out[k, 0] = lo
            out[k, 1] = hi
            k += 1
    return k


@njit(cache=True, nogil=True)
def _append_band(res, nres, band_start, spans, ns, y1, y2):
    """Append one band, merging it into the previous band when that one ends
    at ``y1`` with the same spans.  Returns (new count, new band start)."""
    if ns == 0:
        return nres, nres
    prev_n = nres - band_start
    if prev_n == ns and prev_n > 0 and res[band_start, 3] == y1:
        same = True
        for s in range(ns):
            if res[band_start + s, 0] != spans[s, 0] or res[band_start + s, 2] != spans[s, 1]:
                same = False
                break
        if same:
            for s in range(ns):
                res[band_start + s, 3] = y2
            return nres, band_start
    start = nres
    for s in range(ns):
        res[nres, 0] = spans[s, 0]
        res[nres, 1] = y1
        res[nres, 2] = spans[s, 1]
        res[nres, 3] = y2
        nres += 1
    return nres, start


@njit(cache=True, nogil=True)
def region_op(a, b, op):
    """Union / intersection / difference of two canonical regions."""
    na = a.shape[0]
    nb = b.shape[0]
    ys = np.empty(2 * (na + nb), np.int32)
    for i in range(na):
        ys[2 * i] = a[i, 1]
        ys[2 * i + 1] = a[i, 3]
    for i in range(nb):
        ys[2 * na + 2 * i] = b[i, 1]
        ys[2 * na + 2 * i + 1] = b[i, 3]
    ys = np.unique(ys)
    sa = np.empty((na + 1, 2), np.int32)
    sb = np.empty((nb + 1, 2), np.int32)
    sc = np.empty((na + nb + 2, 2), np.int32)
    res = np.empty((2 * (na + nb) + 16, 4), np.int32)
    nres = 0
    band_start = 0
    pa = 0
    pb = 0
    for t in range(ys.shape[0] - 1):
        y1 = ys[t]
        y2 = ys[t + 1]
        ka, pa = _band_spans(a, pa, y1, sa)
        kb, pb = _band_spans(b, pb, y1, sb)
        kc = _combine(sa, ka, sb, kb, op, sc)
        if nres + kc > res.shape[0]:
            grown = np.empty((2 * (nres + kc), 4), np.int32)
            grown[:nres] = res[:nres]
            res = grown
        nres, band_start = _append_band(res, nres, band_start, sc, kc, y1, y2)
    return res[:nres].copy()


@njit(cache=True, nogil=True)
def region_from_boxes(boxes):
    """pixman_region32_init_rects: the union of the boxes, empty ones dropped."""
    res = np.zeros((0, 4), np.int32)
    one = np.empty((1, 4), np.int32)
    for i in range(boxes.shape[0]):
        if boxes[i, 0] < boxes[i, 2] and boxes[i, 1] < boxes[i, 3]:
            one[0, :] = boxes[i, :]
            res = region_op(res, one, 0)
    return res


@njit(cache=True, nogil=True)
def region_from_a1(bits, top, stride, width, height):
    """pixman_region32_init_from_image for an a1 image: the set pixels.
    ``bits`` are bytes, bit x of a row is bit (x & 7) of byte x >> 3."""
    res = np.empty((16, 4), np.int32)
    nres = 0
    band_start = 0
    spans = np.empty(((width + 1) // 2 + 1, 2), np.int32)
    for y in range(height):
        row = top + y * stride
        ns = 0
        x = 0
        while x < width:
            while x < width and not (bits[row + (x >> 3)] >> (x & 7)) & 1:
                x += 1
            if x >= width:
                break
            x0 = x
            while x < width and (bits[row + (x >> 3)] >> (x & 7)) & 1:
                x += 1
            spans[ns, 0] = x0
            spans[ns, 1] = x
            ns += 1
        if nres + ns > res.shape[0]:
            grown = np.empty((2 * (nres + ns), 4), np.int32)
            grown[:nres] = res[:nres]
            res = grown
        nres, band_start = _append_band(res, nres, band_start, spans, ns, y, y + 1)
    return res[:nres].copy()


def rect_region(x: int, y: int, w: int, h: int) -> np.ndarray:
    """pixman_region32_init_rect (a negative or zero size gives an empty region)."""
    if w <= 0 or h <= 0:
        return EMPTY
    return np.array([[x, y, x + w, y + h]], np.int32)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[0] == 0 or b.shape[0] == 0:
        return EMPTY
    if a.shape[0] == 1 and b.shape[0] == 1:
        x1 = max(a[0, 0], b[0, 0])
        y1 = max(a[0, 1], b[0, 1])
        x2 = min(a[0, 2], b[0, 2])
        y2 = min(a[0, 3], b[0, 3])
        if x1 >= x2 or y1 >= y2:
            return EMPTY
        return np.array([[x1, y1, x2, y2]], np.int32)
    return region_op(a, b, OP_INTERSECT)


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return region_op(a, b, OP_UNION)


def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[0] == 0 or b.shape[0] == 0:
        return a
    return region_op(a, b, OP_SUBTRACT)


def from_boxes(boxes: np.ndarray) -> np.ndarray:
    boxes = np.ascontiguousarray(boxes, dtype=np.int32).reshape(-1, 4)
    if boxes.shape[0] == 1:
        b = boxes[0]
        return boxes.copy() if b[0] < b[2] and b[1] < b[3] else EMPTY
    return region_from_boxes(boxes)


def translate(r: np.ndarray, dx: int, dy: int) -> np.ndarray:
    if r.shape[0] == 0 or (dx == 0 and dy == 0):
        return r
    return r + np.array([dx, dy, dx, dy], np.int32)


def extents(r: np.ndarray) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the bounding box; (0, 0, 0, 0) when empty."""
    if r.shape[0] == 0:
        return 0, 0, 0, 0
    return (int(r[:, 0].min()), int(r[0, 1]), int(r[:, 2].max()), int(r[-1, 3]))

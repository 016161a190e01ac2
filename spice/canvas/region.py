"""Pixel regions for the canvas, in pixman's box order.

The canvas speaks pixman's boxes (x1, y1, x2, y2).  The algebra is
:mod:`spice.region`'s: its canonical banded form (bands top to bottom, boxes
left to right, no touching boxes, no mergeable bands) is the one pixman
produces, only with the columns in (top, left, bottom, right) order.  That
form is unique for a set of pixels, so swapping the columns on the way in
and out gives pixman's boxes in pixman's order, which matters where the order
is visible: COPY_BITS copies box by box inside one surface.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spice import region as _r

EMPTY = np.zeros((0, 4), np.int32)
_SWAP = [1, 0, 3, 2]  # (x1, y1, x2, y2) <-> (top, left, bottom, right)


def _swap(r: np.ndarray) -> np.ndarray:
    # a new C-contiguous array: fancy indexing (r[:, _SWAP]) gives a
    # Fortran-ordered one, and every kernel it reached was compiled once
    # more for that layout, and runs strided
    return r if r.shape[0] == 0 else r.take(_SWAP, axis=1)


@njit(cache=True, nogil=True)
def _a1_region(bits, top, stride, width, height):
    """The set pixels of an a1 image as a :mod:`spice.region` region."""
    res = np.empty((16, 4), np.int32)
    n = 0
    band = 0
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
        if n + ns > res.shape[0]:
            grown = np.empty((2 * (n + ns), 4), np.int32)
            grown[:n] = res[:n]
            res = grown
        n, band = _r.put_band(res, n, band, spans, ns, y, y + 1)
    return res[:n].copy()


def region_from_a1(bits: np.ndarray, top: int, stride: int, width: int,
                   height: int) -> np.ndarray:
    """pixman_region32_init_from_image for an a1 image: the set pixels.
    ``bits`` are bytes, bit x of a row is bit (x & 7) of byte x >> 3."""
    return _swap(_a1_region(bits, top, stride, width, height))


def rect_region(x: int, y: int, w: int, h: int) -> np.ndarray:
    """pixman_region32_init_rect (a negative or zero size gives an empty region)."""
    if w <= 0 or h <= 0:
        return EMPTY
    return np.array([[x, y, x + w, y + h]], np.int32)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _swap(_r.intersect(_swap(a), _swap(b)))


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _swap(_r.union(_swap(a), _swap(b)))


def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _swap(_r.subtract(_swap(a), _swap(b)))


def from_boxes(boxes: np.ndarray) -> np.ndarray:
    """pixman_region32_init_rects: the union of the boxes, empty ones dropped."""
    boxes = np.ascontiguousarray(boxes, dtype=np.int32).reshape(-1, 4)
    return _swap(_r.from_rects(_swap(boxes)))


def translate(r: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return _swap(_r.translate(_swap(r), dx, dy))


def extents(r: np.ndarray) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the bounding box; (0, 0, 0, 0) when empty."""
    top, left, bottom, right = _r.extents(r[:, _SWAP] if r.shape[0] else r)
    return left, top, right, bottom

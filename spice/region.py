"""Region algebra for the display channel: sets of pixels as rectangle lists.

A region is an int32 array of shape (n, 4) of rectangles (top, left,
bottom, right) -- the QXL/SPICE field order, bottom and right exclusive --
kept in one canonical form:

* rectangles are grouped in horizontal bands; the rectangles of a band
  share top and bottom, and bands are sorted top to bottom;
* inside a band rectangles are sorted left to right and neither overlap
  nor touch;
* two vertically adjacent bands never have the same horizontal spans (they
  are merged into one).

A set of pixels has exactly one such form, so two regions are equal when
their arrays are, and every operation can walk both operands band by band.
The occlusion tree (:mod:`spice.current_tree`), the video stream clips and
the lossy-area bookkeeping use these operations on every drawable, hence
the numba kernels; the Python wrappers add fast paths for the very common
single-rectangle case.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

OP_UNION = 0
OP_INTERSECT = 1
OP_SUBTRACT = 2

EMPTY = np.zeros((0, 4), np.int32)
EMPTY.flags.writeable = False


# -- kernels --------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _spans_at(reg, start, y, spans):
    """Horizontal spans of ``reg`` on row ``y`` into ``spans`` (k, 2).
    ``start`` is a rectangle index at or before the band holding ``y``;
    returns (span count, index to start from for a later row)."""
    n = reg.shape[0]
    i = start
    while i < n and reg[i, 2] <= y:
        i += 1
    k = 0
    j = i
    while j < n and reg[j, 0] <= y < reg[j, 2]:
        spans[k, 0] = reg[j, 1]
        spans[k, 1] = reg[j, 3]
        k += 1
        j += 1
    return k, i


@njit(cache=True, nogil=True)
def _merge_spans(a, na, b, nb, op, out):
    """Combine two sorted lists of disjoint spans with ``op``; returns the
    number of spans written to ``out`` (sorted, disjoint, not touching)."""
    k = 0
    if op == OP_INTERSECT:
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
    if op == OP_UNION:
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
                out[k - 1, 1] = max(out[k - 1, 1], hi)
            else:
                out[k, 0] = lo
                out[k, 1] = hi
                k += 1
        return k
    # a minus b
    j = 0
    for i in range(na):
        lo = a[i, 0]
        hi = a[i, 1]
        while j < nb and b[j, 1] <= lo:
            j += 1
        m = j
        while lo < hi and m < nb and b[m, 0] < hi:
            if b[m, 0] > lo:
                out[k, 0] = lo
                out[k, 1] = b[m, 0]
                k += 1
            lo = max(lo, b[m, 1])
            m += 1
        if lo < hi:
            out[k, 0] = lo
            out[k, 1] = hi
            k += 1
    return k


@njit(cache=True, nogil=True)
def put_band(res, n, band, spans, ns, top, bottom):
    """Append a band to ``res`` (capacity checked by the caller), merging it
    with the previous band when that one ends at ``top`` with the same
    spans.  ``band`` is where the previous band starts.  Returns (n, band)."""
    if ns == 0:
        return n, n
    if n - band == ns and res[band, 2] == top:
        same = True
        for s in range(ns):
            if res[band + s, 1] != spans[s, 0] or res[band + s, 3] != spans[s, 1]:
                same = False
                break
        if same:
            for s in range(ns):
                res[band + s, 2] = bottom
            return n, band
    for s in range(ns):
        res[n + s, 0] = top
        res[n + s, 1] = spans[s, 0]
        res[n + s, 2] = bottom
        res[n + s, 3] = spans[s, 1]
    return n + ns, n


@njit(cache=True, nogil=True)
def _row_edges(a, b):
    na = a.shape[0]
    nb = b.shape[0]
    ys = np.empty(2 * (na + nb), np.int32)
    for i in range(na):
        ys[2 * i] = a[i, 0]
        ys[2 * i + 1] = a[i, 2]
    for i in range(nb):
        ys[2 * (na + i)] = b[i, 0]
        ys[2 * (na + i) + 1] = b[i, 2]
    return np.unique(ys)


@njit(cache=True, nogil=True)
def region_op(a, b, op):
    """Union, intersection or difference (a - b) of two canonical regions."""
    ys = _row_edges(a, b)
    sa = np.empty((a.shape[0] + 1, 2), np.int32)
    sb = np.empty((b.shape[0] + 1, 2), np.int32)
    sc = np.empty((a.shape[0] + b.shape[0] + 1, 2), np.int32)
    res = np.empty((a.shape[0] + b.shape[0] + 8, 4), np.int32)
    n = 0
    band = 0
    pa = 0
    pb = 0
    for t in range(ys.shape[0] - 1):
        top = ys[t]
        bottom = ys[t + 1]
        ka, pa = _spans_at(a, pa, top, sa)
        kb, pb = _spans_at(b, pb, top, sb)
        kc = _merge_spans(sa, ka, sb, kb, op, sc)
        if n + kc > res.shape[0]:
            grown = np.empty((2 * (n + kc), 4), np.int32)
            grown[:n] = res[:n]
            res = grown
        n, band = put_band(res, n, band, sc, kc, top, bottom)
    return res[:n].copy()


@njit(cache=True, nogil=True)
def region_from_rects(rects):
    """The union of arbitrary (possibly overlapping, possibly empty)
    rectangles, in one sweep over their row edges."""
    m = rects.shape[0]
    ys = np.empty(2 * m, np.int32)
    k = 0
    for i in range(m):
        if rects[i, 0] < rects[i, 2] and rects[i, 1] < rects[i, 3]:
            ys[k] = rects[i, 0]
            ys[k + 1] = rects[i, 2]
            k += 2
    ys = np.unique(ys[:k])
    spans = np.empty((m + 1, 2), np.int32)
    merged = np.empty((m + 1, 2), np.int32)
    res = np.empty((m + 8, 4), np.int32)
    n = 0
    band = 0
    for t in range(ys.shape[0] - 1):
        top = ys[t]
        bottom = ys[t + 1]
        ns = 0
        for i in range(m):
            if rects[i, 0] <= top and bottom <= rects[i, 2] and rects[i, 1] < rects[i, 3]:
                spans[ns, 0] = rects[i, 1]
                spans[ns, 1] = rects[i, 3]
                ns += 1
        order = np.argsort(spans[:ns, 0])
        kc = 0
        for o in order:
            lo = spans[o, 0]
            hi = spans[o, 1]
            if kc > 0 and lo <= merged[kc - 1, 1]:
                merged[kc - 1, 1] = max(merged[kc - 1, 1], hi)
            else:
                merged[kc, 0] = lo
                merged[kc, 1] = hi
                kc += 1
        if n + kc > res.shape[0]:
            grown = np.empty((2 * (n + kc), 4), np.int32)
            grown[:n] = res[:n]
            res = grown
        n, band = put_band(res, n, band, merged, kc, top, bottom)
    return res[:n].copy()


@njit(cache=True, nogil=True)
def _shares_pixels(a, b):
    """Whether two canonical regions have a pixel in common (no allocation
    beyond the span buffers, stops at the first common pixel)."""
    ys = _row_edges(a, b)
    sa = np.empty((a.shape[0] + 1, 2), np.int32)
    sb = np.empty((b.shape[0] + 1, 2), np.int32)
    pa = 0
    pb = 0
    for t in range(ys.shape[0] - 1):
        ka, pa = _spans_at(a, pa, ys[t], sa)
        if ka == 0:
            continue
        kb, pb = _spans_at(b, pb, ys[t], sb)
        i = 0
        j = 0
        while i < ka and j < kb:
            if max(sa[i, 0], sb[j, 0]) < min(sa[i, 1], sb[j, 1]):
                return True
            if sa[i, 1] < sb[j, 1]:
                i += 1
            else:
                j += 1
    return False


@njit(cache=True, nogil=True)
def _covers(a, b):
    """Whether every pixel of ``b`` is in ``a``."""
    ys = _row_edges(a, b)
    sa = np.empty((a.shape[0] + 1, 2), np.int32)
    sb = np.empty((b.shape[0] + 1, 2), np.int32)
    pa = 0
    pb = 0
    for t in range(ys.shape[0] - 1):
        kb, pb = _spans_at(b, pb, ys[t], sb)
        if kb == 0:
            continue
        ka, pa = _spans_at(a, pa, ys[t], sa)
        i = 0
        for j in range(kb):
            while i < ka and sa[i, 1] <= sb[j, 0]:
                i += 1
            if i == ka or sa[i, 0] > sb[j, 0] or sa[i, 1] < sb[j, 1]:
                return False
    return True


# -- the API --------------------------------------------------------------------


# Regions are values: no operation changes an array it is given, and the
# arrays handed out are read-only.  So one rectangle can be one shared
# array, which makes the commonest case -- a video frame drawn over the
# previous frame's rectangle -- an identity test in the operations below
# instead of numpy calls (each a few microseconds on a worker thread that
# wakes once per frame with cold caches).
_RECTS: dict[tuple[int, int, int, int], np.ndarray] = {}
_RECT_OF: dict[int, tuple[int, int, int, int]] = {}  # id of a cached array -> its rectangle
_RECTS_MAX = 1024
_RECTS_LOCK = threading.Lock()
_NO_EXTENTS = (0, 0, 0, 0)


def rect(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """One rectangle as a region (empty if it has no pixels).  The same
    rectangle gives the same read-only array while it is cached."""
    if bottom <= top or right <= left:
        return EMPTY
    r = _RECTS.get((top, left, bottom, right))
    if r is not None:
        return r
    key = (int(top), int(left), int(bottom), int(right))
    r = np.array([key], np.int32)
    r.flags.writeable = False
    with _RECTS_LOCK:
        # Every id in _RECT_OF belongs to an array _RECTS keeps alive, so an
        # id looked up cannot be a dead array's reused by another one.
        cached = _RECTS.get(key)
        if cached is not None:  # another thread was first
            return cached
        if len(_RECTS) >= _RECTS_MAX:
            _RECT_OF.clear()
            _RECTS.clear()
        _RECTS[key] = r
        _RECT_OF[id(r)] = key
    return r


def _frozen(r: np.ndarray) -> np.ndarray:
    """A computed region, read-only like every region handed out.  Besides
    keeping regions values, this gives the kernels one argument type: numba
    specialises on the read-only flag, and a writable region meeting a
    read-only one for the first time would load another specialisation
    from the cache (15-30 ms) on the worker, mid-session."""
    r.flags.writeable = False
    return r


def from_rects(rects: np.ndarray | list) -> np.ndarray:
    """The union of (top, left, bottom, right) rectangles in any order."""
    arr = np.ascontiguousarray(rects, dtype=np.int32).reshape(-1, 4)
    if arr.shape[0] == 1:
        t, lf, b, r = (int(v) for v in arr[0])
        return rect(t, lf, b, r)
    if arr.shape[0] == 0:
        return EMPTY
    return _frozen(region_from_rects(arr))


def is_empty(r: np.ndarray) -> bool:
    return r is EMPTY or r.shape[0] == 0


def extents(r: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the bounding box; all 0 when empty."""
    if r is EMPTY:
        return _NO_EXTENTS
    box = _RECT_OF.get(id(r))
    if box is not None:
        return box
    n = r.shape[0]
    if n == 1:
        t, lf, b, rt = r[0].tolist()
        return t, lf, b, rt
    if n == 0:
        return 0, 0, 0, 0
    return int(r[0, 0]), int(r[:, 1].min()), int(r[-1, 2]), int(r[:, 3].max())


def area(r: np.ndarray) -> int:
    box = _RECT_OF.get(id(r))
    if box is not None:
        return (box[2] - box[0]) * (box[3] - box[1])
    if r.shape[0] == 1:
        t, lf, b, rt = r[0].tolist()
        return (b - t) * (rt - lf)
    if r.shape[0] == 0:
        return 0
    return int(((r[:, 2] - r[:, 0]).astype(np.int64) * (r[:, 3] - r[:, 1])).sum())


def _single(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    at, al, ab, ar = a[0].tolist()
    bt, bl, bb, br = b[0].tolist()
    return max(at, bt), max(al, bl), min(ab, bb), min(ar, br)


def _extents_apart(a: np.ndarray, b: np.ndarray) -> bool:
    at, al, ab, ar = extents(a)
    bt, bl, bb, br = extents(b)
    return ab <= bt or bb <= at or ar <= bl or br <= al


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a is b:
        return a
    if a.shape[0] == 0 or b.shape[0] == 0:
        return EMPTY
    if a.shape[0] == 1 and b.shape[0] == 1:
        return rect(*_single(a, b))
    if _extents_apart(a, b):
        return EMPTY
    return _frozen(region_op(a, b, OP_INTERSECT))


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a is b:
        return a
    if a.shape[0] == 0:
        return b
    if b.shape[0] == 0:
        return a
    if a.shape[0] == 1 and _covers_extents(a, b):
        return a
    if b.shape[0] == 1 and _covers_extents(b, a):
        return b
    return _frozen(region_op(a, b, OP_UNION))


def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The pixels of ``a`` that are not in ``b``."""
    if a is b:
        return EMPTY
    if a.shape[0] == 0 or b.shape[0] == 0:
        return a
    if b.shape[0] == 1 and _covers_extents(b, a):
        return EMPTY
    if _extents_apart(a, b):
        return a
    return _frozen(region_op(a, b, OP_SUBTRACT))


def _covers_extents(single: np.ndarray, r: np.ndarray) -> bool:
    t, lf, b, rt = extents(r)
    st, sl, sb, sr = extents(single)
    return st <= t and sl <= lf and b <= sb and rt <= sr


def intersects(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the regions share at least one pixel."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return False
    if a.shape[0] == 1 and b.shape[0] == 1:
        t, lf, bt, r = _single(a, b)
        return t < bt and lf < r
    if _extents_apart(a, b):
        return False
    return bool(_shares_pixels(a, b))


def contains(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether every pixel of ``b`` is also in ``a`` (an empty ``b`` is)."""
    if a is b:
        return True
    if b.shape[0] == 0:
        return True
    if a.shape[0] == 0:
        return False
    if a.shape[0] == 1:
        return _covers_extents(a, b)
    return bool(_covers(a, b))


def equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a is b:
        return True
    if a.shape != b.shape:
        return False
    if a.shape[0] == 1:
        return a[0].tolist() == b[0].tolist()
    return bool((a == b).all())


def translate(r: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``r`` moved right by ``dx`` and down by ``dy``."""
    if r.shape[0] == 0 or (dx == 0 and dy == 0):
        return r
    return _frozen(r + np.array([dy, dx, dy, dx], np.int32))


def rects(r: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(t), int(lf), int(b), int(rt)) for t, lf, b, rt in r]

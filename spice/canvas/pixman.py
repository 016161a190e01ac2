"""The part of pixman's image compositing the canvas relies on, bit-exact.

``composite`` computes ``dest = src OP (mask) dest`` per pixel over a set of
destination boxes, with pixman's 8-bit arithmetic: products rounded as
``(t + (t >> 8)) >> 8`` with ``t = a * b + 0x80``, sums saturated; sources
and masks sampled through an affine 16.16 transform with nearest or bilinear
(7-bit weights) filtering and NONE / NORMAL / PAD / REFLECT repeat.

Pixman has fast paths that skip format conversion for 32-bit images; they
compute the same colours but keep the top byte of an x8r8g8b8 destination
(or source) as raw data instead of forcing it.  ``raw_src`` / ``raw_dst``
select that behaviour; :func:`.compose.composite` decides when pixman
would take such a path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spice.canvas.pixfmt import from_argb, to_argb

OP_CLEAR = 0
OP_SRC = 1
OP_DST = 2
OP_OVER = 3
OP_OVER_REVERSE = 4
OP_IN = 5
OP_IN_REVERSE = 6
OP_OUT = 7
OP_OUT_REVERSE = 8
OP_ATOP = 9
OP_ATOP_REVERSE = 10
OP_XOR = 11
OP_ADD = 12
SUPPORTED_OPS = frozenset(range(13))

REPEAT_NONE = 0
REPEAT_NORMAL = 1
REPEAT_PAD = 2
REPEAT_REFLECT = 3

FILTER_NEAREST = 0  # pixman FAST and NEAREST
FILTER_BILINEAR = 1  # pixman GOOD, BEST and BILINEAR

KIND_NONE = 0
KIND_SOLID = 1
KIND_BITS = 2


@njit(cache=True, nogil=True)
def mul8(a, b):
    t = a * b + 0x80
    return ((t >> 8) + t) >> 8


@njit(cache=True, nogil=True)
def mul_un8(x, a):
    """Each channel of x times the 8-bit value a."""
    return ((mul8((x >> 24) & 0xFF, a) << 24) | (mul8((x >> 16) & 0xFF, a) << 16)
            | (mul8((x >> 8) & 0xFF, a) << 8) | mul8(x & 0xFF, a))


@njit(cache=True, nogil=True)
def mul_un8x4(x, a):
    """Each channel of x times the same channel of a."""
    return ((mul8((x >> 24) & 0xFF, (a >> 24) & 0xFF) << 24)
            | (mul8((x >> 16) & 0xFF, (a >> 16) & 0xFF) << 16)
            | (mul8((x >> 8) & 0xFF, (a >> 8) & 0xFF) << 8)
            | mul8(x & 0xFF, a & 0xFF))


@njit(cache=True, nogil=True)
def add_un8x4(x, y):
    """Per-channel saturating sum."""
    b = min((x & 0xFF) + (y & 0xFF), 255)
    g = min(((x >> 8) & 0xFF) + ((y >> 8) & 0xFF), 255)
    r = min(((x >> 16) & 0xFF) + ((y >> 16) & 0xFF), 255)
    a = min(((x >> 24) & 0xFF) + ((y >> 24) & 0xFF), 255)
    return (a << 24) | (r << 16) | (g << 8) | b


@njit(cache=True, nogil=True)
def _replicate(a):
    return a | (a << 8) | (a << 16) | (a << 24)


@njit(cache=True, nogil=True)
def combine_u(op, s, d, has_mask, m):
    """pixman's unified-alpha combiners; ``m`` is the mask's alpha."""
    if op == 3:  # OVER keeps its own shortcuts
        if has_mask and m != 0xFF:
            if m == 0 or s == 0:
                return d
            s = mul_un8(s, m)
            return add_un8x4(mul_un8(d, 255 - (s >> 24)), s)
        a = s >> 24
        if a == 0xFF:
            return s
        if s == 0:
            return d
        return add_un8x4(mul_un8(d, 255 - a), s)
    if op == 0:
        return np.int64(0)
    if op == 2:
        return d
    if has_mask:
        s = mul_un8(s, m) if m else np.int64(0)
    sa = s >> 24
    da = d >> 24
    if op == 1:
        return s
    if op == 4:
        return add_un8x4(mul_un8(s, 255 - da), d)
    if op == 5:
        return mul_un8(s, da)
    if op == 6:
        return mul_un8(d, sa)
    if op == 7:
        return mul_un8(s, 255 - da)
    if op == 8:
        return mul_un8(d, 255 - sa)
    if op == 9:
        return add_un8x4(mul_un8(s, da), mul_un8(d, 255 - sa))
    if op == 10:
        return add_un8x4(mul_un8(s, 255 - da), mul_un8(d, sa))
    if op == 11:
        return add_un8x4(mul_un8(s, 255 - da), mul_un8(d, 255 - sa))
    return add_un8x4(d, s)  # ADD


@njit(cache=True, nogil=True)
def combine_ca(op, s, d, m):
    """pixman's component-alpha combiners; ``m`` is the whole mask pixel."""
    full = np.int64(0xFFFFFFFF)
    if op == 0:
        return np.int64(0)
    if op == 2:
        return d
    sa = s >> 24
    da = d >> 24
    if op in (1, 12):  # mask value only
        if m == 0:
            s = np.int64(0)
        elif m != full:
            s = mul_un8x4(s, m)
        return s if op == 1 else add_un8x4(d, s)
    if op in (6, 8):  # mask alpha only
        if m != 0 and sa != 0xFF:
            m = _replicate(sa) if m == full else mul_un8(m, sa)
        a = m if op == 6 else full ^ m
        if a == full:
            return d
        return mul_un8x4(d, a) if a else np.int64(0)
    if op in (5, 7):
        a = da if op == 5 else 255 - da
        if a == 0:
            return np.int64(0)
        if m == 0:
            s = np.int64(0)
        elif m != full:
            s = mul_un8x4(s, m)
        return s if a == 0xFF else mul_un8(s, a)
    if op == 4:
        a = 255 - da
        if a == 0:
            return d
        return add_un8x4(mul_un8(mul_un8x4(s, m), a), d)
    # the rest applies the mask to both source and its alpha first
    if m == 0:
        s = np.int64(0)
    elif m == full:
        m = _replicate(sa)
    else:
        s = mul_un8x4(s, m)
        m = mul_un8(m, sa)
    if op == 3:
        a = full ^ m
        return add_un8x4(mul_un8x4(d, a), s) if a else s
    if op == 9:
        return add_un8x4(mul_un8x4(d, full ^ m), mul_un8(s, da))
    if op == 10:
        return add_un8x4(mul_un8x4(d, m), mul_un8(s, 255 - da))
    return add_un8x4(mul_un8x4(d, full ^ m), mul_un8(s, 255 - da))  # XOR


@njit(cache=True, nogil=True)
def _repeat(mode, c, size):
    if mode == 1:
        c = c % size
    elif mode == 2:
        if c < 0:
            c = 0
        elif c >= size:
            c = size - 1
    elif mode == 3:
        c = c % (2 * size)
        if c >= size:
            c = 2 * size - c - 1
    return c


@njit(cache=True, nogil=True)
def _fetch(data, top, stride, w, h, fmt, raw, repeat, x, y):
    if repeat == 0:
        if x < 0 or x >= w or y < 0 or y >= h:
            return np.int64(0)
    else:
        x = _repeat(repeat, x, w)
        y = _repeat(repeat, y, h)
    v = np.int64(data[top + y * stride + x])
    if fmt == 1 and not raw:
        v |= 0xFF000000
    return v


@njit(cache=True, nogil=True)
def _bilinear(tl, tr, bl, br, distx, disty):
    wtl = (128 - distx) * (128 - disty)
    wtr = distx * (128 - disty)
    wbl = (128 - distx) * disty
    wbr = distx * disty
    b = ((tl & 0xFF) * wtl + (tr & 0xFF) * wtr + (bl & 0xFF) * wbl + (br & 0xFF) * wbr) >> 14
    g = (((tl >> 8) & 0xFF) * wtl + ((tr >> 8) & 0xFF) * wtr
         + ((bl >> 8) & 0xFF) * wbl + ((br >> 8) & 0xFF) * wbr) >> 14
    r = (((tl >> 16) & 0xFF) * wtl + ((tr >> 16) & 0xFF) * wtr
         + ((bl >> 16) & 0xFF) * wbl + ((br >> 16) & 0xFF) * wbr) >> 14
    a = (((tl >> 24) & 0xFF) * wtl + ((tr >> 24) & 0xFF) * wtr
         + ((bl >> 24) & 0xFF) * wbl + ((br >> 24) & 0xFF) * wbr) >> 14
    return (a << 24) | (r << 16) | (g << 8) | b


@njit(cache=True, nogil=True)
def sample(data, top, stride, w, h, fmt, raw, repeat, filt, t, has_t, u, v):
    """The source value for destination-space pixel (u, v) of the picture."""
    if not has_t:
        return _fetch(data, top, stride, w, h, fmt, raw, repeat, u, v)
    # pixman_transform_point_3d on the pixel centre, 48.16 fixed point
    x = t[0] * u + t[1] * v + t[2] + ((t[0] * 32768 + t[1] * 32768 + 0x8000) >> 16)
    y = t[3] * u + t[4] * v + t[5] + ((t[3] * 32768 + t[4] * 32768 + 0x8000) >> 16)
    if filt == 0:
        return _fetch(data, top, stride, w, h, fmt, raw, repeat, (x - 1) >> 16, (y - 1) >> 16)
    x1 = x - 32768
    y1 = y - 32768
    distx = (x1 >> 9) & 0x7F
    disty = (y1 >> 9) & 0x7F
    xi = x1 >> 16
    yi = y1 >> 16
    tl = _fetch(data, top, stride, w, h, fmt, raw, repeat, xi, yi)
    tr = _fetch(data, top, stride, w, h, fmt, raw, repeat, xi + 1, yi)
    bl = _fetch(data, top, stride, w, h, fmt, raw, repeat, xi, yi + 1)
    br = _fetch(data, top, stride, w, h, fmt, raw, repeat, xi + 1, yi + 1)
    return _bilinear(tl, tr, bl, br, distx, disty)


@njit(cache=True, nogil=True)
def composite_kernel(op, rects, ddata, dtop, dstride, dfmt, raw_dst,
                     skind, scolor, sdata, stop, sstride, sw, sh, sfmt, raw_src,
                     srepeat, sfilter, st, shas_t, sox, soy,
                     mkind, mcolor, mdata, mtop, mstride, mw, mh, mfmt,
                     mrepeat, mfilter, mt, mhas_t, mox, moy, ca):
    """Composite over ``rects`` (x1, y1, x2, y2); picture coordinates of
    destination pixel (X, Y) are (X + sox, Y + soy) and (X + mox, Y + moy)."""
    for i in range(rects.shape[0]):
        for yy in range(rects[i, 1], rects[i, 3]):
            row = dtop + yy * dstride
            for xx in range(rects[i, 0], rects[i, 2]):
                if skind == 1:
                    s = np.int64(scolor)
                else:
                    s = sample(sdata, stop, sstride, sw, sh, sfmt, raw_src, srepeat, sfilter,
                               st, shas_t, xx + sox, yy + soy)
                has_mask = mkind != 0
                if mkind == 1:
                    m = np.int64(mcolor)
                elif mkind == 2:
                    m = sample(mdata, mtop, mstride, mw, mh, mfmt, False, mrepeat, mfilter,
                               mt, mhas_t, xx + mox, yy + moy)
                else:
                    m = np.int64(0xFFFFFFFF)
                raw = ddata[row + xx]
                d = np.int64(raw) if raw_dst else np.int64(to_argb(dfmt, raw))
                if ca and has_mask:
                    r = combine_ca(op, s, d, m)
                else:
                    r = combine_u(op, s, d, has_mask, m >> 24)
                ddata[row + xx] = r if raw_dst else from_argb(dfmt, r)

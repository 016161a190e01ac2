"""Specialised kernels for the composites the canvas does most: SRC and OVER
from a 32-bit picture into a 32-bit surface, untransformed or through a
scale + translate transform.  They compute exactly what
:func:`.pixman.composite_kernel` computes for these cases; the scale-only
transform lets the source coordinates of a column (or row) be worked out
once instead of per pixel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spice.canvas.pixman import _repeat, add_un8x4, mul_un8


@njit(cache=True, nogil=True)
def _axis(t_scale, t_off, start, count, size, repeat, bilinear, idx, wgt):
    """Source positions of ``count`` consecutive destination pixels along one
    axis of a scale-only transform: index (-1 outside a NONE image) and, for
    bilinear, the 7-bit weight of the second sample (whose index goes in
    ``idx[count + i]``)."""
    for i in range(count):
        u = start + i
        v = t_scale * u + t_off + ((t_scale * 32768 + 0x8000) >> 16)
        if bilinear:
            v1 = v - 32768
            wgt[i] = (v1 >> 9) & 0x7F
            a = v1 >> 16
            b = a + 1
        else:
            a = (v - 1) >> 16
            b = a
            wgt[i] = 0
        if repeat == 0:
            idx[i] = a if 0 <= a < size else -1
            idx[count + i] = b if 0 <= b < size else -1
        else:
            idx[i] = _repeat(repeat, a, size)
            idx[count + i] = _repeat(repeat, b, size)


@njit(cache=True, nogil=True)
def _px(sdata, stop, sstride, x, y, force_alpha):
    if x < 0 or y < 0:
        return np.int64(0)
    v = np.int64(sdata[stop + y * sstride + x])
    return v | 0xFF000000 if force_alpha else v


@njit(cache=True, nogil=True)
def _bil(tl, tr, bl, br, wx, wy):
    w00 = (128 - wx) * (128 - wy)
    w10 = wx * (128 - wy)
    w01 = (128 - wx) * wy
    w11 = wx * wy
    r = np.int64(0)
    for sh in range(0, 32, 8):
        c = (((tl >> sh) & 0xFF) * w00 + ((tr >> sh) & 0xFF) * w10
             + ((bl >> sh) & 0xFF) * w01 + ((br >> sh) & 0xFF) * w11)
        r |= (c >> 14) << sh
    return r


@njit(cache=True, nogil=True)
def scaled_kernel(op, boxes, ddata, dtop, dstride,
                  sdata, stop, sstride, sw, sh, force_alpha, repeat, bilinear,
                  tx_scale, tx_off, ty_scale, ty_off, sox, soy,
                  mask_alpha, cov, ctop, cstride, cox, coy):
    """SRC (op 1) or OVER (op 3) of a 32-bit picture under a scale-only
    transform (identity: scale 1 << 16, offset 0) into a 32-bit surface
    written in place.  ``mask_alpha`` < 0: no solid mask; ``cov`` (uint8
    coverage, one per pixel) is used when ``cstride`` > 0."""
    for b in range(boxes.shape[0]):
        x1, y1, x2, y2 = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3]
        w = x2 - x1
        h = y2 - y1
        xi = np.empty(2 * w, np.int64)
        xw = np.empty(w, np.int64)
        yi = np.empty(2 * h, np.int64)
        yw = np.empty(h, np.int64)
        _axis(tx_scale, tx_off, x1 + sox, w, sw, repeat, bilinear, xi, xw)
        _axis(ty_scale, ty_off, y1 + soy, h, sh, repeat, bilinear, yi, yw)
        for j in range(h):
            row = dtop + (y1 + j) * dstride + x1
            ya = yi[j]
            yb = yi[h + j]
            for i in range(w):
                xa = xi[i]
                if bilinear:
                    s = _bil(_px(sdata, stop, sstride, xa, ya, force_alpha),
                             _px(sdata, stop, sstride, xi[w + i], ya, force_alpha),
                             _px(sdata, stop, sstride, xa, yb, force_alpha),
                             _px(sdata, stop, sstride, xi[w + i], yb, force_alpha),
                             xw[i], yw[j])
                else:
                    s = _px(sdata, stop, sstride, xa, ya, force_alpha)
                if op == 1:
                    ddata[row + i] = s
                    continue
                m = mask_alpha
                if cstride > 0:
                    m = np.int64(cov[ctop + (y1 + j + coy) * cstride + x1 + i + cox])
                if m >= 0 and m != 0xFF:
                    if m == 0 or s == 0:
                        continue
                    s = mul_un8(s, m)
                    d = np.int64(ddata[row + i])
                    ddata[row + i] = add_un8x4(mul_un8(d, 255 - (s >> 24)), s)
                    continue
                a = s >> 24
                if a == 0xFF:
                    ddata[row + i] = s
                elif s != 0:
                    d = np.int64(ddata[row + i])
                    ddata[row + i] = add_un8x4(mul_un8(d, 255 - a), s)


@njit(cache=True, nogil=True)
def solid_over_kernel(boxes, ddata, dtop, dstride, color, cov, ctop, cstride, cox, coy):
    """OVER of an opaque solid colour through 8-bit coverage into a 32-bit
    surface written in place (text with a solid brush)."""
    for b in range(boxes.shape[0]):
        for y in range(boxes[b, 1], boxes[b, 3]):
            row = dtop + y * dstride
            crow = ctop + (y + coy) * cstride + cox
            for x in range(boxes[b, 0], boxes[b, 2]):
                m = np.int64(cov[crow + x])
                if m == 0xFF:
                    ddata[row + x] = color
                elif m != 0:
                    s = mul_un8(color, m)
                    d = np.int64(ddata[row + x])
                    ddata[row + x] = add_un8x4(mul_un8(d, 255 - (s >> 24)), s)

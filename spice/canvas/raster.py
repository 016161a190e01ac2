"""Integer raster kernels: solid and tiled fills, blits and colour-keyed blits
with the 16 binary raster operations, self-copies for COPY_BITS and the
ternary raster operations of DRAW_ROP3.

Every kernel takes an image as (data, top, stride) -- see :class:`.pixfmt.Pix`
-- and a list of destination boxes (x1, y1, x2, y2) already clipped to the
destination.  Pixel values are raw values of the destination's depth; nothing
here converts colours.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# SpiceROP (X11 GX codes): result bit = bit (3 - (2 * src + dest)) of the code.
ROP_CLEAR = 0
ROP_AND = 1
ROP_AND_REVERSE = 2
ROP_COPY = 3
ROP_AND_INVERTED = 4
ROP_NOOP = 5
ROP_XOR = 6
ROP_OR = 7
ROP_NOR = 8
ROP_EQUIV = 9
ROP_INVERT = 10
ROP_OR_REVERSE = 11
ROP_COPY_INVERTED = 12
ROP_OR_INVERTED = 13
ROP_NAND = 14
ROP_SET = 15


@njit(cache=True, nogil=True, inline="always")
def rop2(rop, s, d):
    """A binary raster operation on two unsigned pixel values (bitwise, so
    storing the result truncates it to the pixel depth correctly)."""
    if rop == 3:
        return s
    r = s & 0
    if rop & 1:
        r |= s & d
    if rop & 2:
        r |= s & ~d
    if rop & 4:
        r |= ~s & d
    if rop & 8:
        r |= ~s & ~d
    return r


@njit(cache=True, nogil=True)
def fill_rects(data, top, stride, rects, value, rop):
    v = value
    for i in range(rects.shape[0]):
        x1, y1, x2, y2 = rects[i, 0], rects[i, 1], rects[i, 2], rects[i, 3]
        for y in range(y1, y2):
            o = top + y * stride
            if rop == 3:
                data[o + x1:o + x2] = v
            else:
                for x in range(o + x1, o + x2):
                    data[x] = rop2(rop, v, np.int64(data[x]))


@njit(cache=True, nogil=True)
def tile_rects(data, top, stride, rects, tdata, ttop, tstride, tw, th, offx, offy, rop):
    """spice_pixman_tile_rect(_rop): the tile repeats from (offx, offy)."""
    for i in range(rects.shape[0]):
        x1, y1, x2, y2 = rects[i, 0], rects[i, 1], rects[i, 2], rects[i, 3]
        tx0 = (x1 - offx) % tw
        ty = (y1 - offy) % th
        for y in range(y1, y2):
            o = top + y * stride
            to = ttop + ty * tstride
            tx = tx0
            for x in range(o + x1, o + x2):
                data[x] = rop2(rop, np.int64(tdata[to + tx]), np.int64(data[x]))
                tx += 1
                if tx == tw:
                    tx = 0
            ty += 1
            if ty == th:
                ty = 0


@njit(cache=True, nogil=True)
def blit_rects(data, top, stride, rects, sdata, stop, sstride, sw, sh, offx, offy, rop):
    """spice_pixman_blit(_rop): source pixel (x - offx, y - offy); parts of a
    box that fall outside the source are left alone."""
    for i in range(rects.shape[0]):
        dx = rects[i, 0]
        dy = rects[i, 1]
        w = rects[i, 2] - dx
        h = rects[i, 3] - dy
        sx = dx - offx
        sy = dy - offy
        if sx < 0:
            w += sx
            dx -= sx
            sx = 0
        if sy < 0:
            h += sy
            dy -= sy
            sy = 0
        if sx + w > sw:
            w = sw - sx
        if sy + h > sh:
            h = sh - sy
        if w <= 0 or h <= 0:
            continue
        for r in range(h):
            o = top + (dy + r) * stride + dx
            so = stop + (sy + r) * sstride + sx
            if rop == 3:
                for x in range(w):
                    data[o + x] = sdata[so + x]
            else:
                for x in range(w):
                    data[o + x] = rop2(rop, np.int64(sdata[so + x]), np.int64(data[o + x]))


@njit(cache=True, nogil=True)
def colorkey_rects(data, top, stride, rects, sdata, stop, sstride, sw, sh, offx, offy, key,
                   keymask):
    """spice_pixman_blit_colorkey: copy source pixels whose value (32-bit:
    its low 24 bits) differs from the key."""
    k = key & keymask
    for i in range(rects.shape[0]):
        dx = rects[i, 0]
        dy = rects[i, 1]
        w = rects[i, 2] - dx
        h = rects[i, 3] - dy
        sx = dx - offx
        sy = dy - offy
        if sx < 0:
            w += sx
            dx -= sx
            sx = 0
        if sy < 0:
            h += sy
            dy -= sy
            sy = 0
        if sx + w > sw:
            w = sw - sx
        if sy + h > sh:
            h = sh - sy
        if w <= 0 or h <= 0:
            continue
        for r in range(h):
            o = top + (dy + r) * stride + dx
            so = stop + (sy + r) * sstride + sx
            for x in range(w):
                v = sdata[so + x]
                if (np.int64(v) & keymask) != k:
                    data[o + x] = v


@njit(cache=True, nogil=True)
def _copy_rect(data, top, stride, sx, sy, w, h, dx, dy):
    """spice_pixman_copy_rect: rows bottom-up when moving down, top-down when
    moving up, and memmove order within a row on the same line."""
    if dy > sy:
        for r in range(h - 1, -1, -1):
            so = top + (sy + r) * stride + sx
            o = top + (dy + r) * stride + dx
            for x in range(w):
                data[o + x] = data[so + x]
    elif dy < sy:
        for r in range(h):
            so = top + (sy + r) * stride + sx
            o = top + (dy + r) * stride + dx
            for x in range(w):
                data[o + x] = data[so + x]
    else:
        for r in range(h):
            so = top + (sy + r) * stride + sx
            o = top + (dy + r) * stride + dx
            if dx > sx:
                for x in range(w - 1, -1, -1):
                    data[o + x] = data[so + x]
            else:
                for x in range(w):
                    data[o + x] = data[so + x]


@njit(cache=True, nogil=True)
def copy_region(data, top, stride, rects, dx, dy):
    """sw_canvas copy_region: copy each box from (x - dx, y - dy) in the order
    that keeps not-yet-copied source pixels intact for whole bands."""
    n = rects.shape[0]
    if dy > 0:
        if dx >= 0:
            for i in range(n - 1, -1, -1):
                _copy_rect(data, top, stride, rects[i, 0] - dx, rects[i, 1] - dy,
                           rects[i, 2] - rects[i, 0], rects[i, 3] - rects[i, 1],
                           rects[i, 0], rects[i, 1])
        else:
            i = n - 1
            while i >= 0:
                end = i - 1
                while end >= 0 and rects[end, 1] == rects[i, 1]:
                    end -= 1
                for j in range(end + 1, i + 1):
                    _copy_rect(data, top, stride, rects[j, 0] - dx, rects[j, 1] - dy,
                               rects[j, 2] - rects[j, 0], rects[j, 3] - rects[j, 1],
                               rects[j, 0], rects[j, 1])
                i = end
    else:
        if dx > 0:
            i = 0
            while i < n:
                end = i
                while end < n and rects[end, 1] == rects[i, 1]:
                    end += 1
                for j in range(end - 1, i - 1, -1):
                    _copy_rect(data, top, stride, rects[j, 0] - dx, rects[j, 1] - dy,
                               rects[j, 2] - rects[j, 0], rects[j, 3] - rects[j, 1],
                               rects[j, 0], rects[j, 1])
                i = end
        else:
            for i in range(n):
                _copy_rect(data, top, stride, rects[i, 0] - dx, rects[i, 1] - dy,
                           rects[i, 2] - rects[i, 0], rects[i, 3] - rects[i, 1],
                           rects[i, 0], rects[i, 1])


@njit(cache=True, nogil=True, inline="always")
def rop3_eval(code, p, s, d):
    """The ternary raster operation ``code``: bit (4p + 2s + d) of the code
    gives the result for each bit position of the operands."""
    r = p & 0
    if code & 0x01:
        r |= ~p & ~s & ~d
    if code & 0x02:
        r |= ~p & ~s & d
    if code & 0x04:
        r |= ~p & s & ~d
    if code & 0x08:
        r |= ~p & s & d
    if code & 0x10:
        r |= p & ~s & ~d
    if code & 0x20:
        r |= p & ~s & d
    if code & 0x40:
        r |= p & s & ~d
    if code & 0x80:
        r |= p & s & d
    return r


@njit(cache=True, nogil=True)
def rop3_kernel(code, d, dtop, dstride, w, h, s, stop, sstride, sx, sy,
                p, ptop, pstride, pw, ph, px, py, color, use_pattern):
    """do_rop3_with_pattern / do_rop3_with_color over a whole w x h image:
    source from (sx, sy), pattern from (px, py) wrapping at its size."""
    c = np.int64(color)
    pv = py
    for y in range(h):
        o = dtop + y * dstride
        so = stop + (sy + y) * sstride + sx
        ph_off = px
        for x in range(w):
            if use_pattern:
                pat = np.int64(p[ptop + pv * pstride + ph_off])
                ph_off += 1
                if ph_off == pw:
                    ph_off = 0
            else:
                pat = c
            d[o + x] = rop3_eval(code, pat, np.int64(s[so + x]), np.int64(d[o + x]))
        if use_pattern:
            pv += 1
            if pv == ph:
                pv = 0

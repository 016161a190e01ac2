"""Pixel formats of canvas images and the per-pixel conversions between them.

The canvas keeps every image (a surface, a decoded bitmap, a temporary) as a
:class:`Pix`: a 1-D numpy array of whole pixels (uint32, uint16 or uint8; the
1-bit format keeps bytes) plus the index of the top row and a signed row
stride in array elements, so that a bottom-up guest surface is used in place.

Conversions go through a8r8g8b8 the way pixman's general path does: channels
widen by bit replication and narrow by truncation, a format without alpha
reads as opaque and stores no alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from spice import qxl

# Image formats (the subset of pixman formats the canvas meets).
PF_A8R8G8B8 = 0
PF_X8R8G8B8 = 1
PF_X1R5G5B5 = 2
PF_R5G6B5 = 3
PF_A8 = 4
PF_A1 = 5

PF_BPP = (32, 32, 16, 16, 8, 1)
PF_DTYPE = (np.uint32, np.uint32, np.uint16, np.uint16, np.uint8, np.uint8)
PF_NAMES = ("a8r8g8b8", "x8r8g8b8", "x1r5g5b5", "r5g6b5", "a8", "a1")

SURFACE_TO_PF = {
    qxl.SPICE_SURFACE_FMT_1_A: PF_A1,
    qxl.SPICE_SURFACE_FMT_8_A: PF_A8,
    qxl.SPICE_SURFACE_FMT_16_555: PF_X1R5G5B5,
    qxl.SPICE_SURFACE_FMT_16_565: PF_R5G6B5,
    qxl.SPICE_SURFACE_FMT_32_xRGB: PF_X8R8G8B8,
    qxl.SPICE_SURFACE_FMT_32_ARGB: PF_A8R8G8B8,
}


def pf_has_alpha(pf: int) -> bool:
    return pf in (PF_A8R8G8B8, PF_A8, PF_A1)


@dataclass(slots=True)
class Pix:
    """An image: ``data[top + y * stride + x]`` is pixel (x, y) (for PF_A1,
    byte ``top + y * stride + (x >> 3)``, bit ``x & 7``)."""

    fmt: int
    w: int
    h: int
    data: np.ndarray
    top: int
    stride: int

    @property
    def bpp(self) -> int:
        return PF_BPP[self.fmt]

    def with_format(self, fmt: int) -> Pix:
        """The same memory seen as another format of equal depth."""
        return Pix(fmt, self.w, self.h, self.data, self.top, self.stride)

    def as_bytes(self) -> tuple[np.ndarray, int, int]:
        """(byte array, byte index of row 0, byte stride) of the same memory."""
        size = self.data.itemsize
        return self.data.view(np.uint8), self.top * size, self.stride * size

    def rows(self) -> np.ndarray:
        """Top-down (h, w) view of the pixels (not for PF_A1)."""
        if self.h == 0 or self.w == 0:
            return np.zeros((self.h, self.w), self.data.dtype)
        size = self.data.itemsize
        return np.lib.stride_tricks.as_strided(
            self.data[self.top:], shape=(self.h, self.w),
            strides=(self.stride * size, size), writeable=False)

    @staticmethod
    def new(fmt: int, w: int, h: int) -> Pix:
        """A zeroed top-down image (pixman_image_create_bits with no data)."""
        if fmt == PF_A1:
            stride = ((w + 31) // 32) * 4
            return Pix(fmt, w, h, np.zeros(max(stride * h, 1), np.uint8), 0, stride)
        return Pix(fmt, w, h, np.zeros(max(w * h, 1), PF_DTYPE[fmt]), 0, w)


@njit(cache=True, nogil=True, inline="always")
def expand5(v):
    return (v << 3) | (v >> 2)


@njit(cache=True, nogil=True, inline="always")
def to_argb(fmt, v):
    """A pixel of ``fmt`` as a8r8g8b8 (all arithmetic in int64 so that numba
    never mixes signed and unsigned types)."""
    v = np.int64(v)
    if fmt == 0:
        return v
    if fmt == 1:
        return v | 0xFF000000
    if fmt == 2:
        r = expand5((v >> 10) & 0x1F)
        g = expand5((v >> 5) & 0x1F)
        b = expand5(v & 0x1F)
        return 0xFF000000 | (r << 16) | (g << 8) | b
    if fmt == 3:
        r = expand5((v >> 11) & 0x1F)
        g6 = (v >> 5) & 0x3F
        g = (g6 << 2) | (g6 >> 4)
        b = expand5(v & 0x1F)
        return 0xFF000000 | (r << 16) | (g << 8) | b
    if fmt == 4:
        return (v & 0xFF) << 24
    return np.int64(0xFF000000) if v & 1 else np.int64(0)


@njit(cache=True, nogil=True, inline="always")
def from_argb(fmt, v):
    """An a8r8g8b8 value stored into ``fmt``."""
    v = np.int64(v) & 0xFFFFFFFF
    if fmt == 0:
        return v
    if fmt == 1:
        return v & 0x00FFFFFF
    if fmt == 2:
        return ((v >> 9) & 0x7C00) | ((v >> 6) & 0x03E0) | ((v >> 3) & 0x001F)
    if fmt == 3:
        return ((v >> 8) & 0xF800) | ((v >> 5) & 0x07E0) | ((v >> 3) & 0x001F)
    if fmt == 4:
        return v >> 24
    return v >> 31


@njit(cache=True, nogil=True, inline="always")
def load(fmt, data, top, stride, x, y):
    """Raw pixel (x, y) of an image of ``fmt``."""
    if fmt == 5:
        return np.int64((data[top + y * stride + (x >> 3)] >> (x & 7)) & 1)
    return np.int64(data[top + y * stride + x])


@njit(cache=True, nogil=True, inline="always")
def store(fmt, data, top, stride, x, y, v):
    if fmt == 5:
        i = top + y * stride + (x >> 3)
        bit = np.uint8(1 << (x & 7))
        if v & 1:
            data[i] |= bit
        else:
            data[i] &= ~bit
    else:
        data[top + y * stride + x] = v


@njit(cache=True, nogil=True)
def convert_kernel(sfmt, sdata, stop, sstride, dfmt, ddata, dtop, dstride, w, h):
    """Composite SRC of a whole image into another of the same size.  An
    x8r8g8b8 destination is written in place by pixman, alpha byte included."""
    for y in range(h):
        for x in range(w):
            v = to_argb(sfmt, load(sfmt, sdata, stop, sstride, x, y))
            store(dfmt, ddata, dtop, dstride, x, y, v if dfmt == 1 else from_argb(dfmt, v))


def convert(src: Pix, fmt: int) -> Pix:
    """A new image of ``fmt`` with ``src``'s pixels (pixman SRC composite)."""
    out = Pix.new(fmt, src.w, src.h)
    if src.w and src.h:
        convert_kernel(src.fmt, src.data, src.top, src.stride,
                       out.fmt, out.data, out.top, out.stride, src.w, src.h)
    return out


@njit(cache=True, nogil=True)
def _argb_2d(fmt, raw, out, drop_alpha):
    for y in range(raw.shape[0]):
        for x in range(raw.shape[1]):
            v = to_argb(fmt, raw[y, x])
            out[y, x] = v & 0x00FFFFFF if drop_alpha else v


def to_argb_array(fmt: int, raw: np.ndarray, drop_alpha: bool) -> np.ndarray:
    """Raw (h, w) pixels of ``fmt`` as a8r8g8b8 (xRGB when ``drop_alpha``)."""
    out = np.zeros(raw.shape, np.uint32)
    if raw.size:
        _argb_2d(fmt, raw, out, drop_alpha)
    return out

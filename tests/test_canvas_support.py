"""Builders shared by the canvas tests (this module holds no tests)."""

from __future__ import annotations

import numpy as np

from spice import qxl
from spice.canvas import SurfaceCanvas

R0 = qxl.Rect(0, 0, 0, 0)
XRGB = qxl.SPICE_SURFACE_FMT_32_xRGB
ARGB = qxl.SPICE_SURFACE_FMT_32_ARGB
RGB555 = qxl.SPICE_SURFACE_FMT_16_555
RGB565 = qxl.SPICE_SURFACE_FMT_16_565
BPP = {XRGB: 4, ARGB: 4, RGB555: 2, RGB565: 2, qxl.SPICE_SURFACE_FMT_8_A: 1}

_uid = [100]


def rect(left: int, top: int, right: int, bottom: int) -> qxl.Rect:
    """A qxl.Rect from the usual (left, top, right, bottom) order."""
    return qxl.Rect(top, left, bottom, right)


def clip(*rects: tuple[int, int, int, int]) -> np.ndarray:
    """A drawable clip from (left, top, right, bottom) tuples."""
    return np.array([[t, lft, b, r] for lft, t, r, b in rects], np.int32).reshape(-1, 4)


def drawable(t: int, bbox: qxl.Rect, u: object, clip_rects: np.ndarray | None = None,
             sid: int = 0) -> qxl.Drawable:
    return qxl.Drawable(sid, 0, t, 0, R0, bbox, clip_rects, 0, (-1, -1, -1), (R0, R0, R0), u)


def new_canvas(w: int, h: int, fmt: int = XRGB, bottom_up: bool = False, pad: int = 0,
               init: np.ndarray | None = None) -> SurfaceCanvas:
    """A canvas over fresh memory; ``init`` is its top-down (h, w) content."""
    bpp = BPP[fmt]
    stride = ((w * bpp + 3) & ~3) + 4 * pad
    data = np.zeros(h * stride, np.uint8)
    canvas = SurfaceCanvas(w, h, -stride if bottom_up else stride, fmt, data)
    if init is not None:
        set_pixels(canvas, init)
    return canvas


def set_pixels(canvas: SurfaceCanvas, values: np.ndarray) -> None:
    """Write top-down (h, w) raw pixel values into the surface memory."""
    bpp = BPP[canvas.format]
    dtype = {4: np.uint32, 2: np.uint16, 1: np.uint8}[bpp]
    stride = abs(canvas.stride)
    rows = canvas.data.reshape(canvas.height, stride)
    if canvas.stride < 0:
        rows = rows[::-1]
    for y in range(canvas.height):
        rows[y, :canvas.width * bpp] = np.asarray(values[y], dtype).view(np.uint8)


def raw(canvas: SurfaceCanvas) -> np.ndarray:
    """Top-down raw pixels read straight from the surface memory."""
    bpp = BPP[canvas.format]
    dtype = {4: np.uint32, 2: np.uint16, 1: np.uint8}[bpp]
    rows = canvas.data.reshape(canvas.height, abs(canvas.stride))
    if canvas.stride < 0:
        rows = rows[::-1]
    return np.ascontiguousarray(rows[:, :canvas.width * bpp]).view(dtype)


def descriptor(w: int, h: int, flags: int = 0, image_id: int | None = None,
               t: int = qxl.SPICE_IMAGE_TYPE_BITMAP) -> qxl.ImageDescriptor:
    if image_id is None:
        _uid[0] += 1
        image_id = _uid[0] << 32
    return qxl.ImageDescriptor(image_id, t, flags, w, h)


def bitmap32(pixels: np.ndarray, fmt: int = qxl.SPICE_BITMAP_FMT_32BIT, top_down: bool = True,
             flags: int = 0, image_id: int | None = None) -> qxl.BitmapImage:
    """A 32-bit bitmap from top-down (h, w) uint32 values."""
    px = np.asarray(pixels, np.uint32)
    h, w = px.shape
    rows = px if top_down else px[::-1]
    data = np.ascontiguousarray(rows).view(np.uint8).reshape(-1).copy()
    return qxl.BitmapImage(descriptor(w, h, flags, image_id), fmt,
                           qxl.QXL_BITMAP_TOP_DOWN if top_down else 0, w, h, w * 4, None, data)


def bitmap_bytes(fmt: int, w: int, h: int, rows: np.ndarray, palette: list[int] | None = None,
                 top_down: bool = True) -> qxl.BitmapImage:
    """A bitmap from its raw top-down rows of bytes (stride = row length)."""
    rows = np.asarray(rows, np.uint8)
    stride = rows.shape[1]
    data = np.ascontiguousarray(rows if top_down else rows[::-1]).reshape(-1).copy()
    pal = None if palette is None else qxl.Palette(1, np.array(palette, np.uint32))
    return qxl.BitmapImage(descriptor(w, h), fmt, qxl.QXL_BITMAP_TOP_DOWN if top_down else 0,
                           w, h, stride, pal, data)


def mask_bits(bits: np.ndarray, big_endian: bool = False, top_down: bool = True
              ) -> qxl.BitmapImage:
    """A 1-bit mask bitmap from a top-down (h, w) array of 0/1."""
    bits = np.asarray(bits, np.uint8)
    h, w = bits.shape
    packed = np.packbits(bits, axis=1, bitorder="big" if big_endian else "little")
    fmt = qxl.SPICE_BITMAP_FMT_1BIT_BE if big_endian else qxl.SPICE_BITMAP_FMT_1BIT_LE
    return bitmap_bytes(fmt, w, h, packed, top_down=top_down)


def solid(color: int) -> qxl.Brush:
    return qxl.Brush(qxl.SPICE_BRUSH_TYPE_SOLID, color)


def pattern(image: qxl.Image, x: int = 0, y: int = 0) -> qxl.Brush:
    return qxl.Brush(qxl.SPICE_BRUSH_TYPE_PATTERN, 0, image, qxl.Point(x, y))


def no_surfaces(_surface_id: int) -> SurfaceCanvas | None:
    return None

"""Guest images turned into canvas images, as spice-common's canvas does it.

A bitmap is converted to the format the drawing needs: the destination
surface's format (``want_original`` false: xRGB canvases keep an RGBA
source's alpha) or the bitmap's own "native" format (alpha blending and
images the server caches).  Palette entries are used as raw pixel values of
the canvas format, 24-bit pixels get a zero top byte, and every other pair
of formats goes through the a8r8g8b8 conversion of :mod:`.pixfmt`.

Formats spice-server cannot convert (1- and 4-bit little-endian palettes, a
palette image on a 16_565 or 8_A canvas, a palette format without palette)
abort spice-server; here they raise :class:`ImageError` and the draw is
dropped with a log line.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
from numba import njit

from spice import qxl
from spice.canvas.pixfmt import (
    PF_A1,
    PF_A8,
    PF_A8R8G8B8,
    PF_DTYPE,
    PF_X1R5G5B5,
    PF_X8R8G8B8,
    SURFACE_TO_PF,
    Pix,
    convert,
)

log = logging.getLogger(__name__)

_PALETTE_FORMATS = (qxl.SPICE_BITMAP_FMT_1BIT_LE, qxl.SPICE_BITMAP_FMT_1BIT_BE,
                    qxl.SPICE_BITMAP_FMT_4BIT_LE, qxl.SPICE_BITMAP_FMT_4BIT_BE,
                    qxl.SPICE_BITMAP_FMT_8BIT)


class ImageError(ValueError):
    """An image the reference canvas cannot turn into pixels."""


def target_format(canvas_pf: int, source_has_alpha: bool) -> int:
    """canvas_get_target_format: the canvas format, but an xRGB canvas keeps
    a source's alpha and an ARGB canvas does not invent one."""
    if source_has_alpha and canvas_pf == PF_X8R8G8B8:
        return PF_A8R8G8B8
    if not source_has_alpha and canvas_pf == PF_A8R8G8B8:
        return PF_X8R8G8B8
    return canvas_pf


def native_format(bitmap_fmt: int, canvas_pf: int) -> int:
    """spice_bitmap_format_to_pixman: palette images take the canvas format."""
    if bitmap_fmt in _PALETTE_FORMATS:
        return canvas_pf
    if bitmap_fmt == qxl.SPICE_BITMAP_FMT_16BIT:
        return PF_X1R5G5B5
    if bitmap_fmt in (qxl.SPICE_BITMAP_FMT_24BIT, qxl.SPICE_BITMAP_FMT_32BIT):
        return PF_X8R8G8B8
    if bitmap_fmt == qxl.SPICE_BITMAP_FMT_RGBA:
        return PF_A8R8G8B8
    if bitmap_fmt == qxl.SPICE_BITMAP_FMT_8BIT_A:
        return PF_A8
    raise ImageError(f"unknown bitmap format {bitmap_fmt}")


@njit(cache=True, nogil=True)
def _bitmap_rows(src, src_stride, top_down, w, h, bfmt, ents, out, out_stride):
    """spice_bitmap_to_pixman: guest rows into a top-down image whose element
    type already is the destination depth."""
    for i in range(h):
        line = i * src_stride
        y = i if top_down else h - 1 - i
        o = y * out_stride
        if bfmt == 8 or bfmt == 9:  # 32BIT, RGBA
            for x in range(w):
                p = line + 4 * x
                out[o + x] = (np.int64(src[p]) | (np.int64(src[p + 1]) << 8)
                              | (np.int64(src[p + 2]) << 16) | (np.int64(src[p + 3]) << 24))
        elif bfmt == 7:  # 24BIT
            for x in range(w):
                p = line + 3 * x
                out[o + x] = (np.int64(src[p]) | (np.int64(src[p + 1]) << 8)
                              | (np.int64(src[p + 2]) << 16))
        elif bfmt == 6:  # 16BIT
            for x in range(w):
                p = line + 2 * x
                out[o + x] = np.int64(src[p]) | (np.int64(src[p + 1]) << 8)
        elif bfmt == 10:  # 8BIT_A
            for x in range(w):
                out[o + x] = src[line + x]
        elif bfmt == 5:  # 8BIT
            for x in range(w):
                out[o + x] = ents[src[line + x]]
        elif bfmt == 4:  # 4BIT_BE: high nibble first
            for x in range(w):
                b = src[line + (x >> 1)]
                out[o + x] = ents[(b >> 4) & 0xF] if (x & 1) == 0 else ents[b & 0xF]
        elif bfmt == 2:  # 1BIT_BE: most significant bit first
            for x in range(w):
                bit = (src[line + (x >> 3)] >> (7 - (x & 7))) & 1
                out[o + x] = ents[1] if bit else ents[0]


def _palette_entries(image: qxl.BitmapImage, size: int) -> np.ndarray:
    """The palette as a zero-padded table (entries past the guest's count are
    whatever the reference reads past its copy; zero here)."""
    ents = np.zeros(size, np.uint32)
    if image.palette is not None:
        src = np.asarray(image.palette.ents, dtype=np.uint32).reshape(-1)[:size]
        ents[:src.size] = src
    return ents


def _bitmap_direct(image: qxl.BitmapImage, fmt: int, canvas_pf: int) -> Pix:
    bfmt = image.format
    if bfmt in (qxl.SPICE_BITMAP_FMT_1BIT_LE, qxl.SPICE_BITMAP_FMT_4BIT_LE):
        raise ImageError(f"unsupported bitmap format {bfmt}")
    if bfmt in _PALETTE_FORMATS:
        if image.palette is None:
            raise ImageError("palette bitmap without a palette")
        if canvas_pf not in (PF_X8R8G8B8, PF_A8R8G8B8, PF_X1R5G5B5):
            raise ImageError("palette bitmap on a canvas format without palette support")
    out = Pix.new(fmt, image.x, image.y)
    src = np.ascontiguousarray(image.data, dtype=np.uint8).reshape(-1)
    need = image.y * image.stride
    if src.size < need:
        raise ImageError(f"bitmap data of {src.size} bytes, {need} needed")
    ents = _palette_entries(image, 256)
    if PF_DTYPE[fmt] == np.uint16:
        ents = ents & 0xFFFF  # 16-bit canvases take the low half of each entry
    _bitmap_rows(src, image.stride, image.top_down, image.x, image.y, bfmt,
                 ents.astype(PF_DTYPE[fmt]), out.data, out.stride)
    return out


def _bitmap_view(image: qxl.BitmapImage, fmt: int) -> Pix | None:
    """A 32-bit bitmap used in place (no conversion needed, rows 4-aligned)."""
    data = np.asarray(image.data).reshape(-1)
    need = image.y * image.stride
    if (data.dtype != np.uint8 or image.stride % 4 or data.size < need
            or data.ctypes.data % 4 or not data.flags.c_contiguous):
        return None
    words = data[:need].view(np.uint32)
    estride = image.stride // 4
    if image.top_down:
        return Pix(fmt, image.x, image.y, words, 0, estride)
    return Pix(fmt, image.x, image.y, words, (image.y - 1) * estride, -estride)


def bitmap_to_pix(image: qxl.BitmapImage, fmt: int, canvas_pf: int,
                  allow_view: bool = False) -> Pix:
    """spice_bitmap_convert_to_pixman: the bitmap as an image of ``fmt``.
    With ``allow_view`` a 32-bit bitmap that needs no conversion is used in
    place instead of copied (the caller neither keeps nor modifies it)."""
    if image.x <= 0 or image.y <= 0:
        raise ImageError("zero-sized bitmap")
    native = native_format(image.format, canvas_pf)
    if native == fmt or (native == PF_A8R8G8B8 and fmt == PF_X8R8G8B8):
        if allow_view and image.format in (qxl.SPICE_BITMAP_FMT_32BIT,
                                           qxl.SPICE_BITMAP_FMT_RGBA):
            view = _bitmap_view(image, fmt)
            if view is not None:
                return view
        return _bitmap_direct(image, fmt, canvas_pf)
    return convert(_bitmap_direct(image, native, canvas_pf), fmt)


class ImageCache:
    """The server's image cache (spice-server keeps one per display channel):
    images flagged QXL_IMAGE_CACHE are kept by id, two at most, least
    recently used out; a later image with a cached id draws the cached
    pixels instead of its own."""

    MAX_ITEMS = 2

    def __init__(self) -> None:
        self._items: OrderedDict[int, Pix] = OrderedDict()

    def hit(self, image_id: int) -> bool:
        if image_id in self._items:
            self._items.move_to_end(image_id)
            return True
        return False

    def get(self, image_id: int) -> Pix:
        return self._items[image_id]

    def put(self, image_id: int, pix: Pix) -> None:
        if image_id not in self._items and len(self._items) >= self.MAX_ITEMS:
            self._items.popitem(last=False)
        self._items[image_id] = pix
        self._items.move_to_end(image_id)

    def clear(self) -> None:
        self._items.clear()


@njit(cache=True, nogil=True)
def _or_alpha(data, top, stride, w, h):
    for y in range(h):
        o = top + y * stride
        for x in range(w):
            data[o + x] = np.int64(data[o + x]) | 0xFF000000


def _decode(image: qxl.Image, want_original: bool, canvas_pf: int, allow_view: bool) -> Pix:
    if isinstance(image, qxl.BitmapImage):
        if want_original:
            fmt = native_format(image.format, canvas_pf)
        else:
            fmt = target_format(canvas_pf, image.format == qxl.SPICE_BITMAP_FMT_RGBA)
        return bitmap_to_pix(image, fmt, canvas_pf, allow_view)
    if isinstance(image, qxl.QuicImage):
        return _decode_quic(image, want_original, canvas_pf)
    raise ImageError(f"image type {image.descriptor.type} cannot be decoded")


def _decode_quic(image: qxl.QuicImage, want_original: bool, canvas_pf: int) -> Pix:
    from spice.codecs import quic as quic_codec
    from spice.codecs.quic_tables import QUIC_IMAGE_TYPE_RGB16, QUIC_IMAGE_TYPE_RGBA

    d = image.descriptor
    try:
        dec = quic_codec.quic_decode(np.asarray(image.data, np.uint8),
                                     max_pixels=max(d.width * d.height, 1))
        widen = (dec.qtype == QUIC_IMAGE_TYPE_RGB16 and not want_original
                 and canvas_pf in (PF_X8R8G8B8, PF_A8R8G8B8))
        if widen:
            dec = quic_codec.quic_decode(np.asarray(image.data, np.uint8), to_32bit=True,
                                         max_pixels=max(d.width * d.height, 1))
    except ValueError as exc:
        raise ImageError(f"QUIC image: {exc}") from exc
    if dec.width != d.width or dec.height != d.height:
        raise ImageError("QUIC image size differs from its descriptor")
    if dec.qtype == QUIC_IMAGE_TYPE_RGB16 and not widen:
        pix = Pix.new(PF_X1R5G5B5, dec.width, dec.height)
        pix.data[:dec.width * dec.height] = dec.pixels.reshape(-1)
        return pix
    fmt = PF_A8R8G8B8 if dec.qtype == QUIC_IMAGE_TYPE_RGBA else PF_X8R8G8B8
    pix = Pix.new(fmt, dec.width, dec.height)
    pix.data[:dec.width * dec.height] = np.ascontiguousarray(dec.pixels).view(np.uint32).reshape(-1)
    return pix


def get_image(image: qxl.Image, want_original: bool, canvas_pf: int,
              cache: ImageCache | None, from_cache: bool,
              dest: np.ndarray | None = None, force_cache: bool = False) -> Pix:
    """canvas_get_image_internal for a non-surface image.  ``from_cache``
    says the server's cache held this id when the drawable was taken in;
    ``dest`` is the memory being drawn into (a bitmap overlapping it is
    copied first, as the reference always does); ``force_cache`` caches the
    image as if it carried QXL_IMAGE_CACHE."""
    d = image.descriptor
    cache_me = bool(d.flags & qxl.QXL_IMAGE_CACHE or force_cache) and not from_cache
    if from_cache:
        if cache is None:
            raise ImageError("cached image without a cache")
        pix = cache.get(d.id)
    else:
        high_bits = bool(d.flags & qxl.QXL_IMAGE_HIGH_BITS_SET)
        view_ok = not cache_me and not high_bits and not (
            dest is not None and isinstance(image, qxl.BitmapImage)
            and np.may_share_memory(np.asarray(image.data), dest))
        pix = _decode(image, want_original or cache_me, canvas_pf, view_ok)
        if high_bits and pix.fmt == PF_X8R8G8B8:
            _or_alpha(pix.data, pix.top, pix.stride, pix.w, pix.h)
        if cache_me and cache is not None:
            cache.put(d.id, pix)
    if not want_original:
        wanted = target_format(canvas_pf, pix.fmt == PF_A8R8G8B8)
        if pix.fmt != wanted:
            pix = convert(pix, wanted)
    return pix


@njit(cache=True, nogil=True)
def _mask_rows(src, src_stride, top_down, w, h, big_endian, out, out_stride):
    nbytes = (w + 7) >> 3
    for i in range(h):
        y = i if top_down else h - 1 - i
        for k in range(nbytes):
            b = src[i * src_stride + k]
            if big_endian:
                r = 0
                for bit in range(8):
                    if (b >> bit) & 1:
                        r |= 0x80 >> bit
                b = r
            out[y * out_stride + k] = b


def bitmap_mask(image: qxl.BitmapImage) -> Pix:
    """canvas_get_bitmap_mask: a 1-bit bitmap as an a1 image (bit order LSB
    first, as pixman keeps a1 on little-endian machines)."""
    if image.format == qxl.SPICE_BITMAP_FMT_1BIT_LE:
        big = False
    elif image.format == qxl.SPICE_BITMAP_FMT_1BIT_BE:
        big = True
    else:
        raise ImageError(f"mask bitmap of format {image.format}")
    if image.x <= 0 or image.y <= 0:
        raise ImageError("zero-sized mask")
    out = Pix.new(PF_A1, image.x, image.y)
    src = np.ascontiguousarray(image.data, dtype=np.uint8).reshape(-1)
    if src.size < image.y * image.stride or image.stride < (image.x + 7) // 8:
        raise ImageError("mask bitmap data too short")
    _mask_rows(src, image.stride, image.top_down, image.x, image.y, big, out.data, out.stride)
    return out


@njit(cache=True, nogil=True)
def _argb_rows(src, src_stride, top_down, w, h, bfmt, ents, out):
    for i in range(h):
        line = i * src_stride
        y = i if top_down else h - 1 - i
        for x in range(w):
            if bfmt == 8 or bfmt == 9:
                p = line + 4 * x
                v = (np.int64(src[p]) | (np.int64(src[p + 1]) << 8)
                     | (np.int64(src[p + 2]) << 16) | (np.int64(src[p + 3]) << 24))
            elif bfmt == 7:
                p = line + 3 * x
                v = (np.int64(src[p]) | (np.int64(src[p + 1]) << 8)
                     | (np.int64(src[p + 2]) << 16))
            elif bfmt == 6:
                p = line + 2 * x
                c = np.int64(src[p]) | (np.int64(src[p + 1]) << 8)
                r = (c >> 10) & 0x1F
                g = (c >> 5) & 0x1F
                b = c & 0x1F
                v = ((((r << 3) | (r >> 2)) << 16) | (((g << 3) | (g >> 2)) << 8)
                     | (b << 3) | (b >> 2))
            elif bfmt == 10:
                v = np.int64(src[line + x]) << 24
            elif bfmt == 5:
                v = ents[src[line + x]]
            elif bfmt == 3 or bfmt == 4:
                b8 = src[line + (x >> 1)]
                hi_first = (x & 1) == 0 if bfmt == 4 else (x & 1) == 1
                v = ents[(b8 >> 4) & 0xF] if hi_first else ents[b8 & 0xF]
            else:
                shift = 7 - (x & 7) if bfmt == 2 else (x & 7)
                v = ents[(src[line + (x >> 3)] >> shift) & 1]
            out[y, x] = v


def bitmap_to_argb32(image: qxl.BitmapImage) -> np.ndarray:
    """A bitmap as top-down (h, w) uint32 pixels: 32-bit formats as stored
    (xRGB keeps whatever its top byte holds, RGBA its alpha), 24-bit with a
    zero top byte, 16-bit x1r5g5b5 widened by bit replication, palette
    formats (both bit orders) looked up, 8BIT_A as alpha << 24."""
    bfmt = image.format
    if bfmt not in range(1, 11):
        raise ValueError(f"unknown bitmap format {bfmt}")
    if bfmt in _PALETTE_FORMATS and image.palette is None:
        raise ValueError("palette bitmap without a palette")
    src = np.ascontiguousarray(image.data, dtype=np.uint8).reshape(-1)
    bpp = qxl.BITMAP_FMT_BPP[bfmt]
    if image.stride < (image.x * bpp + 7) // 8 or src.size < image.y * image.stride:
        raise ValueError("bitmap data shorter than its size and stride")
    out = np.zeros((image.y, image.x), np.uint32)
    if image.x and image.y:
        _argb_rows(src, image.stride, image.top_down, image.x, image.y, bfmt,
                   _palette_entries(image, 256), out)
    return out


def surface_pf(surface_format: int) -> int:
    try:
        return SURFACE_TO_PF[surface_format]
    except KeyError:
        raise ValueError(f"unknown surface format {surface_format}") from None

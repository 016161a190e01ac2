"""Baseline JPEG for SPICE_IMAGE_TYPE_JPEG, JPEG_ALPHA and MJPEG video.

The streams are what spice-server's libjpeg settings produce: JFIF 1.01,
YCbCr with 2x2-subsampled chroma, the standard quantisation tables scaled
by the quality, the standard Huffman tables, one interleaved scan, no
restart markers.  Still images use the accurate integer DCT; MJPEG video
frames use the fast one (``fast_dct=True``), as the server's video encoder
does.

Writing the encoder (rather than depending on an imaging library) lets the
output match the reference server byte for byte; SPICE clients decode it
with libjpeg.
"""

from __future__ import annotations

import functools
import struct
import threading
from typing import NamedTuple

import numpy as np

from spice.codecs import jpeg_kernels as _k
from spice.codecs.jpeg_dct import fast_divisors
from spice.codecs.jpeg_tables import (
    CHROMINANCE_QUANT,
    HUFFMAN_TABLES,
    LUMINANCE_QUANT,
    ZIGZAG,
    divisors,
    scaled_quant,
)
from spice.codecs.lz import lz_encode_alpha
from spice.codecs.quic import byte_view
from spice.qxl import (
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)

__all__ = [
    "JPEG_QUALITY_IMAGES",
    "SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN",
    "JpegAlpha",
    "bitmap_to_rgb",
    "jpeg_alpha_encode",
    "jpeg_encode",
    "jpeg_encode_bitmap",
    "mjpeg_encode_frame",
]

# Quality the server uses for still images.
JPEG_QUALITY_IMAGES = 85
SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN = 1

# JPEG dimensions are 16-bit.
_MAX_SIDE = 65535

# Each thread codes into its own buffer, kept from frame to frame (it grows
# when a large, noisy image needs more, and keeps that size).
_scratch = threading.local()
_SCRATCH_BYTES = 1 << 20
_EOI = b"\xff\xd9"


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _headers(width: int, height: int, q_luma: np.ndarray, q_chroma: np.ndarray,
             huffman_tables: bool) -> bytes:  # fmt: skip
    parts = [
        b"\xff\xd8",  # SOI
        # JFIF 1.01, no density unit, 1:1 pixel aspect, no thumbnail.
        _segment(0xFFE0, b"JFIF\x00\x01\x01\x00" + struct.pack(">HHBB", 1, 1, 0, 0)),
    ]
    for index, table in enumerate((q_luma, q_chroma)):
        parts.append(_segment(0xFFDB, bytes([index]) + bytes(table[ZIGZAG].tolist())))
    # Baseline frame: Y sampled 2x2, Cb and Cr 1x1; quant tables 0, 1, 1.
    parts.append(_segment(0xFFC0, struct.pack(">BHHB", 8, height, width, 3)
                          + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])))  # fmt: skip
    if huffman_tables:
        for klass_index, (bits, vals) in zip((0x00, 0x10, 0x01, 0x11), HUFFMAN_TABLES, strict=True):
            parts.append(_segment(0xFFC4, bytes([klass_index, *bits, *vals])))
    # One scan of all three components, full spectrum.
    parts.append(_segment(0xFFDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])))
    return b"".join(parts)


def jpeg_encode(
    rgb: np.ndarray, quality: int, *, fast_dct: bool = False, huffman_tables: bool = True
) -> bytes:
    """Encode a ``(height, width, 3)`` uint8 RGB image (top row first) as a
    complete JFIF stream.  ``quality`` is libjpeg's 1..100 scale (values
    outside are clamped); ``fast_dct`` selects the fast integer DCT used for
    MJPEG video frames; ``huffman_tables=False`` leaves out the (standard)
    Huffman tables, as video frames after the first do.  Raises ValueError
    for other shapes or sizes beyond 65535 pixels."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (height, width, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    return _encode(_pack(rgb[..., 0], rgb[..., 1], rgb[..., 2]), 0, width, width, height,
                   quality, fast_dct, huffman_tables)


def _encode(px: np.ndarray, start: int, step: int, width: int, height: int, quality: int,
            fast_dct: bool, huffman_tables: bool) -> bytes:
    """The JFIF stream of the image whose row ``y`` starts at pixel ``start
    + y * step`` of ``px``: flat uint8 bytes of x8r8g8b8 words (the guest's
    own memory, or a converted copy)."""
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        raise ValueError(f"JPEG cannot hold a {width}x{height} image")
    div_luma, div_chroma = _divisors(quality, fast_dct)
    head = _cached_headers(width, height, quality, huffman_tables)
    return _scan(px, start, step, width, height, div_luma, div_chroma, fast_dct, head)


def _scan(px: np.ndarray, start: int, step: int, width: int, height: int,
          div_luma: np.ndarray, div_chroma: np.ndarray, fast_dct: bool, head: bytes) -> bytes:
    out = getattr(_scratch, "out", None)
    if out is None:
        out = _scratch.out = np.empty(_SCRATCH_BYTES, np.uint8)
    while (n := _k.encode_scan(px, start, step, width, height, div_luma, div_chroma,
                               fast_dct, out)) < 0:
        out = _scratch.out = np.empty(-n, np.uint8)  # the kernel asked for more room
    return b"".join((head, out.data[:n], _EOI))


def _pack(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Channel planes as the flat bytes of x8r8g8b8 words."""
    px = (r.astype(np.uint32) << 16) | (g.astype(np.uint32) << 8) | b
    return px.reshape(-1).view(np.uint8)


# A video stream encodes every frame with one of a few qualities and one
# size: the tables and headers are computed once for each.
@functools.lru_cache(maxsize=64)
def _divisors(quality: int, fast_dct: bool) -> tuple[np.ndarray, np.ndarray]:
    # in zig-zag order, the order the kernel quantises in; 32-bit, as it computes
    out = tuple(np.ascontiguousarray(divisors(scaled_quant(base, quality), fast_dct)[:, ZIGZAG],
                                     np.int32)
                for base in (LUMINANCE_QUANT, CHROMINANCE_QUANT))
    if fast_dct:
        out = tuple(fast_divisors(a) for a in out)
    for a in out:
        a.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def _cached_headers(width: int, height: int, quality: int, huffman_tables: bool) -> bytes:
    return _headers(width, height, scaled_quant(LUMINANCE_QUANT, quality),
                    scaled_quant(CHROMINANCE_QUANT, quality), huffman_tables)


_U8 = np.dtype(np.uint8)
_BPP = {
    SPICE_BITMAP_FMT_16BIT: 2,
    SPICE_BITMAP_FMT_24BIT: 3,
    SPICE_BITMAP_FMT_32BIT: 4,
    SPICE_BITMAP_FMT_RGBA: 4,
}
def _checked(pixels: np.ndarray | bytes, width: int, height: int, stride: int, fmt: int
             ) -> np.ndarray:  # fmt: skip
    """The bitmap's bytes as a flat uint8 array, after checking that they
    hold ``height`` rows of ``stride`` (the last one may stop at its last
    pixel)."""
    bpp = _BPP.get(fmt)
    if bpp is None:
        raise ValueError(f"JPEG cannot encode SPICE bitmap format {fmt}")
    if width <= 0 or height <= 0 or stride < width * bpp:
        raise ValueError(f"bad bitmap geometry {width}x{height} stride {stride}")
    # The usual case, a guest bitmap, is read where it lies.  Every numpy
    # call here runs once per video frame on a worker that was idle since
    # the last one, when each costs several microseconds: the test asks as
    # little of the array as it can.
    if (type(pixels) is np.ndarray and pixels.dtype is _U8 and pixels.ndim == 1
            and pixels.strides[0] == 1):
        buf = pixels
    else:
        buf = byte_view(pixels)
    if buf.size < (height - 1) * stride + width * bpp:
        raise ValueError(f"{buf.size} bytes cannot hold {height} rows of {stride}")
    return buf


def _rows(pixels: np.ndarray | bytes, width: int, height: int, stride: int, fmt: int
          ) -> np.ndarray:  # fmt: skip
    buf = _checked(pixels, width, height, stride, fmt)
    bpp = _BPP[fmt]
    if buf.size < height * stride:
        buf = np.concatenate([buf, np.zeros(height * stride - buf.size, np.uint8)])
    return buf[: height * stride].reshape(height, stride)[:, : width * bpp]


def _source(pixels: np.ndarray | bytes, width: int, height: int, stride: int, fmt: int,
            area: tuple[int, int, int, int], down: bool) -> tuple[np.ndarray, int, int]:
    """(bytes, start, step) for the kernel (see :func:`_encode`): the (top,
    left, bottom, right) ``area`` of a guest bitmap, its rows taken from the
    top of the area down in memory (``down``) or from the bottom up.  32-bit
    pixels in rows of whole words are read where they lie; anything else is
    converted first."""
    top, left, bottom, right = area
    buf = _checked(pixels, width, height, stride, fmt)
    first = top if down else bottom - 1
    if _BPP[fmt] == 4 and not stride & 3:  # the kernel reads these words in place
        return buf, first * (stride >> 2) + left, (stride >> 2) if down else -(stride >> 2)
    rows = _rows(pixels, width, height, stride, fmt)[top:bottom]
    rgb = _to_rgb(rows if down else rows[::-1], fmt)[:, left:right]
    return _pack(rgb[..., 0], rgb[..., 1], rgb[..., 2]), 0, right - left


def _to_rgb(rows: np.ndarray, fmt: int) -> np.ndarray:
    """(h, w * bpp) guest pixel bytes -> (h, w, 3) RGB as the server converts
    them for libjpeg."""
    h = rows.shape[0]
    w = rows.shape[1] // _BPP[fmt]
    rgb = np.empty((h, w, 3), np.uint8)
    if fmt == SPICE_BITMAP_FMT_16BIT:
        v = rows.reshape(h, w, 2).astype(np.uint16)
        v = v[..., 0] | (v[..., 1] << 8)
        for i, shift in enumerate((10, 5, 0)):
            c = ((v >> shift) & 0x1F).astype(np.uint8)
            rgb[..., i] = (c << 3) | (c >> 2)
    else:
        px = rows.reshape(h, w, _BPP[fmt])
        rgb[..., 0] = px[..., 2]
        rgb[..., 1] = px[..., 1]
        rgb[..., 2] = px[..., 0]
    return rgb


def bitmap_to_rgb(
    pixels: np.ndarray | bytes, width: int, height: int, stride: int, fmt: int, top_down: bool
) -> np.ndarray:
    """A guest bitmap as ``(height, width, 3)`` RGB, top row first, the way
    the server feeds its JPEG encoder (5-bit channels widened as
    ``v << 3 | v >> 2``; the 32-bit x and RGBA alpha bytes dropped)."""
    rows = _rows(pixels, width, height, stride, fmt)
    return _to_rgb(rows if top_down else rows[::-1], fmt)


def jpeg_encode_bitmap(
    pixels: np.ndarray | bytes,
    width: int,
    height: int,
    stride: int,
    fmt: int,
    top_down: bool,
    quality: int = JPEG_QUALITY_IMAGES,
    *,
    fast_dct: bool = False,
) -> bytes:
    """JPEG of a guest bitmap (16BIT, 24BIT, 32BIT or RGBA, whose alpha is
    dropped): the payload of a SPICE_IMAGE_TYPE_JPEG image, after its
    ``data_size`` field.  The reference server sends something else when
    this is longer than ``height * stride``; that choice is the caller's."""
    px, start, step = _source(pixels, width, height, stride, fmt, (0, 0, height, width),
                              top_down)
    return _encode(px, start, step, width, height, quality, fast_dct, True)


def mjpeg_encode_frame(
    pixels: np.ndarray | bytes,
    width: int,
    height: int,
    stride: int,
    fmt: int,
    src: tuple[int, int, int, int],
    top_down: bool,
    quality: int,
    first_frame: bool = True,
) -> bytes:
    """One MJPEG video frame: the ``src`` area (top, left, bottom, right;
    bottom/right exclusive, in image coordinates) of a guest bitmap, coded
    with the fast DCT like the server's video encoder.  Only a stream's
    first frame carries the Huffman tables (libjpeg marks them as sent and
    the server reuses its compressor); clients fall back to the standard
    tables, which are the ones used.

    Rows go into the JPEG in *memory* order, as the server does: for a
    bottom-up bitmap the frame is stored upside down and the stream must be
    created without SPICE_STREAM_FLAGS_TOP_DOWN so that the client flips
    it.  Raises ValueError for an empty area or one outside the bitmap."""
    top, left, bottom, right = src
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ValueError(f"stream area {src} outside a {width}x{height} bitmap")
    first = top if top_down else height - bottom  # the area's rows as they lie in memory
    w, h = right - left, bottom - top
    # A stream's frames are its one size at one of a few qualities: their
    # tables and headers come from one cached call, and a guest's
    # 32-bit bitmap (the usual frame) goes to the kernel where it lies.
    # The worker was idle since the last frame and each call costs it
    # several microseconds, so this path makes as few as it can.
    if not (w <= _MAX_SIDE and h <= _MAX_SIDE):
        raise ValueError(f"JPEG cannot hold a {w}x{h} image")
    tables = _frame_tables(w, h, quality, first_frame)
    if (type(pixels) is np.ndarray and pixels.dtype is _U8 and pixels.ndim == 1
            and pixels.strides[0] == 1 and fmt in _WORDS and not stride & 3
            and stride >= width * 4 and pixels.size >= (height - 1) * stride + width * 4):
        words = stride >> 2
        px, start, step = pixels, first * words + left, words
    else:
        px, start, step = _source(pixels, width, height, stride, fmt,
                                  (first, left, first + h, right), True)
    return _scan(px, start, step, w, h, tables[0], tables[1], True, tables[2])


@functools.lru_cache(maxsize=256)
def _frame_tables(width: int, height: int, quality: int,
                  huffman_tables: bool) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Luma and chroma divisors and the headers of a video frame."""
    return (*_divisors(quality, True), _cached_headers(width, height, quality, huffman_tables))


_WORDS = frozenset({SPICE_BITMAP_FMT_32BIT, SPICE_BITMAP_FMT_RGBA})


class JpegAlpha(NamedTuple):
    """A SPICE_IMAGE_TYPE_JPEG_ALPHA payload.

    On the wire the image is ``flags`` (u8), ``jpeg_size`` (u32),
    ``data_size`` (u32, = ``len(data)``) and then ``data``: the JPEG of the
    colour followed by an LZ stream (type XXXA) of the alpha bytes."""

    flags: int  # SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN when the bitmap is top-down
    jpeg_size: int
    data: bytes


def jpeg_alpha_encode(
    pixels: np.ndarray | bytes,
    width: int,
    height: int,
    stride: int,
    top_down: bool,
    quality: int = JPEG_QUALITY_IMAGES,
) -> JpegAlpha:
    """Encode an RGBA guest bitmap as the server does for JPEG_ALPHA: the
    colour as a top-down JPEG, the alpha plane with LZ in the bitmap's own
    row order (its LZ header and ``flags`` carry the top-down bit)."""
    jpeg = jpeg_encode_bitmap(pixels, width, height, stride, SPICE_BITMAP_FMT_RGBA, top_down,
                              quality)  # fmt: skip
    alpha = lz_encode_alpha(pixels, width, height, stride, top_down)
    flags = SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN if top_down else 0
    return JpegAlpha(flags, len(jpeg), jpeg + alpha)

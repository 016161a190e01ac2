"""QUIC, SPICE's lossless image codec: encoder and reference decoder.

:func:`quic_encode` turns a guest bitmap into the stream that goes into a
SPICE_IMAGE_TYPE_QUIC payload (the server writes ``data_size`` in front of
it); SPICE clients decode it bit-exactly.  :func:`quic_decode` reads such a
stream back: the tests use it as the reference, and the software canvas uses
it for QUIC images a guest hands over already compressed, so it treats its
input as hostile and raises ``ValueError`` for anything malformed.

A QUIC stream has no row-order flag: its first row is the top of the image.
Bottom-up bitmaps are therefore read from their last row in memory, as the
reference server does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from spice.codecs import quic_kernels as _k
from spice.codecs.quic_tables import (
    FAMILY_5BPC,
    FAMILY_8BPC,
    MELC_ORDER_LOG2,
    QUIC_IMAGE_TYPE_GRAY,
    QUIC_IMAGE_TYPE_RGB16,
    QUIC_IMAGE_TYPE_RGB24,
    QUIC_IMAGE_TYPE_RGB32,
    QUIC_IMAGE_TYPE_RGBA,
    QUIC_MAGIC,
    QUIC_MAX_PIXELS,
    QUIC_VERSION,
    TABRAND,
    WM_TRIGGER,
    Family,
)
from spice.qxl import (
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)

__all__ = [
    "QUIC_IMAGE_TYPE_RGB16",
    "QUIC_IMAGE_TYPE_RGB24",
    "QUIC_IMAGE_TYPE_RGB32",
    "QUIC_IMAGE_TYPE_RGBA",
    "QUIC_MAX_PIXELS",
    "QuicImage",
    "quic_decode",
    "quic_encode",
    "quic_image_type",
]


class _Layout(NamedTuple):
    qtype: int
    bpp: int  # bytes per pixel in guest memory
    is16: bool
    ch_off: tuple[int, ...]  # byte offset of r, g, b[, a] inside a pixel
    nrgb: int  # channels in the colour group
    family: Family


# Guest pixels are little-endian xRGB: blue is the first byte.
_LAYOUTS = {
    SPICE_BITMAP_FMT_16BIT: _Layout(QUIC_IMAGE_TYPE_RGB16, 2, True, (0, 0, 0), 3, FAMILY_5BPC),
    SPICE_BITMAP_FMT_24BIT: _Layout(QUIC_IMAGE_TYPE_RGB24, 3, False, (2, 1, 0), 3, FAMILY_8BPC),
    SPICE_BITMAP_FMT_32BIT: _Layout(QUIC_IMAGE_TYPE_RGB32, 4, False, (2, 1, 0), 3, FAMILY_8BPC),
    SPICE_BITMAP_FMT_RGBA: _Layout(QUIC_IMAGE_TYPE_RGBA, 4, False, (2, 1, 0, 3), 3, FAMILY_8BPC),
}
_TYPE_CHANNELS = {
    QUIC_IMAGE_TYPE_RGB16: (3, FAMILY_5BPC),
    QUIC_IMAGE_TYPE_RGB24: (3, FAMILY_8BPC),
    QUIC_IMAGE_TYPE_RGB32: (3, FAMILY_8BPC),
    QUIC_IMAGE_TYPE_RGBA: (4, FAMILY_8BPC),
}


def quic_image_type(fmt: int) -> int:
    """The QUIC image type a SPICE bitmap format is sent as; ValueError for
    formats QUIC cannot carry (palettes, alpha-only)."""
    try:
        return _LAYOUTS[fmt].qtype
    except KeyError:
        raise ValueError(f"QUIC cannot encode SPICE bitmap format {fmt}") from None


def byte_view(pixels: object) -> np.ndarray:
    """Any buffer (numpy array of any dtype, bytes, memoryview) as a flat,
    read-only uint8 array, copied only if it is not contiguous.  Always
    read-only so that every caller hits the same compiled kernel."""
    if isinstance(pixels, np.ndarray):
        arr = np.ascontiguousarray(pixels).reshape(-1)
        arr = arr if arr.dtype == np.uint8 else arr.view(np.uint8)
    else:
        arr = np.frombuffer(pixels, np.uint8)  # type: ignore[call-overload]
    view = arr.view()
    view.flags.writeable = False
    return view


def quic_encode(
    pixels: np.ndarray | bytes,
    width: int,
    height: int,
    stride: int,
    fmt: int,
    top_down: bool,
) -> bytes:
    """Encode a guest bitmap as a QUIC stream.

    ``pixels`` holds the rows as the guest stores them (``stride`` bytes
    apart; row padding is ignored); ``fmt`` is SPICE_BITMAP_FMT_16BIT
    (x1r5g5b5), 24BIT (b, g, r bytes), 32BIT (b, g, r, x; x is ignored) or
    RGBA (b, g, r, a); ``top_down`` False means the first row in memory is
    the bottom row.  Returns the complete stream, a multiple of 4 bytes.

    The reference server sends the bitmap uncompressed instead when the
    stream is longer than ``height * stride``; that choice is the caller's.
    Raises ValueError for an unsupported format or inconsistent geometry.
    """
    layout = _LAYOUTS.get(fmt)
    if layout is None:
        raise ValueError(f"QUIC cannot encode SPICE bitmap format {fmt}")
    if not (0 < width < 1 << 31 and 0 < height < 1 << 31):
        raise ValueError(f"bad QUIC image size {width}x{height}")
    if width * height > QUIC_MAX_PIXELS:
        raise ValueError(f"image of {width}x{height} pixels is too large for QUIC")
    if stride < width * layout.bpp:
        raise ValueError(f"stride {stride} too small for {width} pixels of format {fmt}")
    buf = byte_view(pixels)
    if buf.size < (height - 1) * stride + width * layout.bpp:
        raise ValueError(f"{buf.size} bytes of pixels cannot hold {height} rows of {stride}")
    if top_down:
        row0, step = 0, stride
    else:
        row0, step = (height - 1) * stride, -stride
    fam = layout.family
    header = np.array([QUIC_MAGIC, QUIC_VERSION, layout.qtype, width, height], np.int64)
    nch = len(layout.ch_off)
    words, n = _k.quic_encode_kernel(
        buf, row0, step, width, height, layout.bpp, layout.is16,
        np.array(layout.ch_off, np.int64), nch, layout.nrgb, header,
        fam.packed, fam.code_len, fam.bucket_of, fam.bpc, fam.n_buckets,
        TABRAND, WM_TRIGGER, MELC_ORDER_LOG2,
    )  # fmt: skip
    return words[:n].astype("<u4", copy=False).tobytes()


class QuicImage(NamedTuple):
    """A decoded QUIC stream.

    ``pixels`` is top row first.  For RGB24, RGB32 and RGBA it is
    ``(height, width, 4)`` uint8 in memory order b, g, r, a (a = 0 unless
    RGBA), i.e. little-endian xRGB / ARGB as SPICE clients draw it.  For
    RGB16 it is ``(height, width)`` uint16 x1r5g5b5, unless 32-bit output
    was asked for.
    """

    qtype: int  # QUIC_IMAGE_TYPE_*
    width: int
    height: int
    pixels: np.ndarray


def _header(data: bytes | np.ndarray) -> tuple[np.ndarray, int, int, int]:
    raw = byte_view(data)
    nwords = raw.size // 4  # trailing bytes are ignored, as clients do
    if nwords < 6:
        raise ValueError(f"QUIC stream of {raw.size} bytes is shorter than its header")
    words = raw[: nwords * 4].view("<u4").astype(np.uint32)
    if words[0] != QUIC_MAGIC:
        raise ValueError(f"bad QUIC magic {int(words[0]):#010x}")
    if words[1] != QUIC_VERSION:
        raise ValueError(f"unsupported QUIC version {int(words[1]):#x}")
    qtype, width, height = (int(w) for w in words[2:5])
    if qtype == QUIC_IMAGE_TYPE_GRAY:
        raise ValueError("QUIC GRAY images are not part of the SPICE protocol")
    if qtype not in _TYPE_CHANNELS:
        raise ValueError(f"bad QUIC image type {qtype}")
    # Widths and heights are signed on the wire.
    if not (0 < width < 1 << 31 and 0 < height < 1 << 31):
        raise ValueError(f"bad QUIC image size {width}x{height}")
    return words, qtype, width, height


def quic_decode(
    data: bytes | np.ndarray,
    *,
    to_32bit: bool = False,
    max_pixels: int = QUIC_MAX_PIXELS,
    expected_size: tuple[int, int] | None = None,
) -> QuicImage:
    """Decode a QUIC stream (the bytes of a QUIC image payload after its
    ``data_size`` field).

    ``to_32bit`` widens RGB16 images to b, g, r, 0 bytes the way SPICE
    clients do for a 32-bit canvas (each 5-bit value v becomes
    ``v << 3 | v >> 2``).  ``max_pixels`` bounds ``width * height`` before
    anything is allocated.  ``expected_size`` (width, height) is the size
    the image descriptor promised: clients refuse a stream of another size.

    Raises ValueError for a bad magic, version or type, a size over the
    limits, a stream that ends before its pixels do, a codeword out of range
    or a run crossing the end of its row segment.  Bytes after the image are
    ignored.
    """
    words, qtype, width, height = _header(data)
    if expected_size is not None and (width, height) != tuple(expected_size):
        raise ValueError(f"QUIC stream is {width}x{height}, the image {expected_size}")
    if width * height > min(max_pixels, QUIC_MAX_PIXELS):
        raise ValueError(f"QUIC image of {width}x{height} pixels exceeds the limit")
    nch, fam = _TYPE_CHANNELS[qtype]
    # Every pixel of the first row and the first three of each other row
    # cost at least one bit per channel; reject short streams before
    # allocating planes for a size they cannot describe.
    min_bits = nch * (width + (height - 1) * min(width, 3))
    if (words.size - 5) * 32 < min_bits:
        raise ValueError(f"QUIC stream too short for a {width}x{height} image")
    planes = _k.quic_decode_kernel(
        words, width, height, nch, 3, fam.code_len, fam.unfold, fam.bucket_of, fam.bpc,
        fam.n_buckets, fam.n_gr, fam.escape_len, fam.escape_suffix_len,
        fam.escape_prefix_max, TABRAND, WM_TRIGGER, MELC_ORDER_LOG2,
    )  # fmt: skip
    r, g, b = planes[0], planes[1], planes[2]
    if qtype == QUIC_IMAGE_TYPE_RGB16:
        if not to_32bit:
            pix16 = (r.astype(np.uint16) << 10) | (g.astype(np.uint16) << 5) | b
            return QuicImage(qtype, width, height, pix16)
        r, g, b = ((p << 3) | (p >> 2) for p in (r, g, b))
    out = np.zeros((height, width, 4), np.uint8)
    out[..., 0] = b
    out[..., 1] = g
    out[..., 2] = r
    if qtype == QUIC_IMAGE_TYPE_RGBA:
        out[..., 3] = planes[3]
    return QuicImage(qtype, width, height, out)

"""What the LZ-family codecs share: image types, pass parameters, and the
conversion between guest bitmap bytes and one uint32 value per pixel.

The LZ image types and their numbering are those of the SPICE LZ stream
(``LzImageType`` in the SPICE sources); the SPICE bitmap formats map onto
them one to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from spice.qxl import BITMAP_FMT_BPP

LZ_MAGIC = 0x20205A4C  # "  ZL" big-endian
LZ_VERSION = 0x00010001
# Largest image (header stride * height bytes) the SPICE LZ decoder accepts.
MAX_IMAGE_BYTES = (1 << 30) - 1


class LzImageType(IntEnum):
    INVALID = 0
    PLT1_LE = 1
    PLT1_BE = 2
    PLT4_LE = 3
    PLT4_BE = 4
    PLT8 = 5
    RGB16 = 6
    RGB24 = 7
    RGB32 = 8
    RGBA = 9
    XXXA = 10
    A8 = 11


PLT_TYPES = frozenset(
    {LzImageType.PLT1_LE, LzImageType.PLT1_BE, LzImageType.PLT4_LE, LzImageType.PLT4_BE,
     LzImageType.PLT8}
)
# Palette indices per byte of the PLT types.
PLT_PIXELS_PER_BYTE = {1: 8, 2: 8, 3: 2, 4: 2, 5: 1}
# Bytes per pixel the header stride counts for the other types.
RGB_BYTES_PER_PIXEL = {6: 2, 7: 3, 8: 4, 9: 4, 10: 4, 11: 1}

# SPICE_BITMAP_FMT_* (index) -> LZ image type; the formats are numbered alike
# except that 8BIT_A (10) is the LZ type A8 (11).
_FMT_TO_LZ = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11)


def lz_type_for_format(fmt: int) -> LzImageType:
    if not 1 <= fmt < len(_FMT_TO_LZ):
        raise ValueError(f"unknown SPICE bitmap format {fmt}")
    return LzImageType(_FMT_TO_LZ[fmt])


class Pass(NamedTuple):
    """How one coding pass reads keys from pixel values and writes literals."""

    shift: int
    kmask: int
    pb: int  # bytes per literal pixel
    fmt_min: int  # match length a length field of 1 stands for


RGB_PASS = Pass(0, 0xFFFFFF, 3, 1)
RGB16_PASS = Pass(0, 0x7FFF, 2, 2)
ALPHA_PASS = Pass(24, 0xFF, 1, 3)
BYTE_PASS = Pass(0, 0xFF, 1, 3)


def passes_for(lz_type: LzImageType) -> tuple[Pass, ...]:
    if lz_type in (LzImageType.RGB24, LzImageType.RGB32):
        return (RGB_PASS,)
    if lz_type == LzImageType.RGBA:
        return (RGB_PASS, ALPHA_PASS)  # colour first, then alpha: the server's order
    if lz_type == LzImageType.RGB16:
        return (RGB16_PASS,)
    if lz_type == LzImageType.XXXA:
        return (ALPHA_PASS,)
    return (BYTE_PASS,)


def header_stride(lz_type: LzImageType, width: int) -> int:
    """The stride the header carries: rows without padding."""
    if lz_type in PLT_TYPES:
        ppb = PLT_PIXELS_PER_BYTE[lz_type]
        return (width + ppb - 1) // ppb
    return width * RGB_BYTES_PER_PIXEL[lz_type]


def coded_pixels(lz_type: LzImageType, width: int, height: int) -> int:
    """Units the stream codes: pixels, or bytes for the palette types."""
    if lz_type in PLT_TYPES:
        return header_stride(lz_type, width) * height
    return width * height


def bitmap_rows(pixels: np.ndarray, height: int, stride: int, row_bytes: int) -> np.ndarray:
    """(height, row_bytes) uint8 view of a bitmap's rows, without padding."""
    if height <= 0:
        raise ValueError(f"bitmap height must be positive, not {height}")
    if stride < row_bytes:
        raise ValueError(f"stride {stride} is shorter than a row ({row_bytes} bytes)")
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        arr = np.ascontiguousarray(arr).view(np.uint8)
    arr = arr.reshape(-1)
    need = (height - 1) * stride + row_bytes
    if arr.size < need:
        raise ValueError(f"bitmap holds {arr.size} bytes, {need} needed")
    if stride == row_bytes:
        return arr[:need].reshape(height, row_bytes)
    return np.lib.stride_tricks.as_strided(
        arr, shape=(height, row_bytes), strides=(stride, 1), writeable=False
    )


def check_size(fmt: int, width: int, height: int) -> None:
    if not 1 <= fmt < len(BITMAP_FMT_BPP):
        raise ValueError(f"unknown SPICE bitmap format {fmt}")
    if width <= 0 or height <= 0:
        raise ValueError(f"bitmap size must be positive, not {width}x{height}")
    lz_type = lz_type_for_format(fmt)
    if header_stride(lz_type, width) * height > MAX_IMAGE_BYTES:
        raise ValueError(f"bitmap {width}x{height} is too large for the LZ codecs")


def load_values(pixels: np.ndarray, width: int, height: int, stride: int,
                lz_type: LzImageType) -> np.ndarray:
    """One uint32 value per coded unit, rows in memory order (see lz_kernels)."""
    rb = header_stride(lz_type, width)
    rows = bitmap_rows(pixels, height, stride, rb)
    if lz_type in (LzImageType.RGB32, LzImageType.RGBA, LzImageType.XXXA):
        if rows.flags.c_contiguous:
            return rows.reshape(-1).view("<u4")
        return np.ascontiguousarray(rows).reshape(-1).view("<u4")
    if lz_type == LzImageType.RGB24:
        px = rows.reshape(height * width, 3).astype(np.uint32)
        return px[:, 0] | (px[:, 1] << 8) | (px[:, 2] << 16)
    if lz_type == LzImageType.RGB16:
        return np.ascontiguousarray(rows).reshape(-1).view("<u2").astype(np.uint32)
    return rows.reshape(-1).astype(np.uint32)


def values_to_bytes(values: np.ndarray, lz_type: LzImageType, width: int,
                    height: int) -> np.ndarray:
    """Inverse of ``load_values``: (height, row_bytes) uint8 in the bitmap layout.
    The unused byte of RGB32 pixels comes out as 0, as SPICE decoders write it."""
    if lz_type in (LzImageType.RGB32, LzImageType.RGBA):
        v = values.astype("<u4")
        if lz_type == LzImageType.RGB32:
            v &= 0xFFFFFF
        return v.view(np.uint8).reshape(height, width * 4)
    if lz_type == LzImageType.RGB24:
        v = values.astype(np.uint32)
        px = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], -1).astype(np.uint8)
        return px.reshape(height, width * 3)
    if lz_type == LzImageType.RGB16:
        return values.astype("<u2").view(np.uint8).reshape(height, width * 2)
    if lz_type == LzImageType.XXXA:
        return (values >> 24).astype(np.uint8).reshape(height, width)
    return values.astype(np.uint8).reshape(height, -1)


def rgb16_to_rgb32(values: np.ndarray) -> np.ndarray:
    """x1r5g5b5 -> 0x00RRGGBB, widening each channel by bit replication the
    way SPICE clients do."""
    v = values.astype(np.uint32)
    r = (v >> 10) & 31
    g = (v >> 5) & 31
    b = v & 31
    r = (r << 3) | (r >> 2)
    g = (g << 3) | (g >> 2)
    b = (b << 3) | (b >> 2)
    return (r << 16) | (g << 8) | b


@dataclass(frozen=True)
class DecodedImage:
    """A decoded LZ-family image.  ``pixels`` is (height, row_bytes) uint8 in
    the source bitmap's layout and row order (the stream's order: the top
    row first only if ``top_down``)."""

    lz_type: LzImageType
    width: int
    height: int
    stride: int  # as the stream's header states it
    top_down: bool
    pixels: np.ndarray

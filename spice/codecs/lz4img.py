"""LZ4 image payload (SPICE_IMAGE_TYPE_LZ4): encoder and reference decoder.

Payload, after SpiceLZ4Data's u32 data_size which the caller marshals:

    u8 top_down (1 when row 0 is the top row)   u8 SPICE bitmap format
    then one or more blocks: u32 big-endian compressed length, LZ4 block

The blocks form one LZ4 stream: each may copy from the 64 KiB of pixels
before it, since the client decodes them back to back into one buffer
(LZ4_decompress_safe_continue).  Rows are unpadded (the client assumes
``width * bytes per pixel``) and in memory order.  Clients accept 16BIT,
24BIT, 32BIT and RGBA only; the client must have announced
SPICE_DISPLAY_CAP_LZ4_COMPRESSION.  Image width and height travel in the
image descriptor, not in the payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import lz4.block
import numpy as np

from spice.codecs.lz_layout import bitmap_rows, check_size
from spice.qxl import (
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)

LZ4_BYTES_PER_PIXEL = {
    SPICE_BITMAP_FMT_16BIT: 2,
    SPICE_BITMAP_FMT_24BIT: 3,
    SPICE_BITMAP_FMT_32BIT: 4,
    SPICE_BITMAP_FMT_RGBA: 4,
}
LZ4_DICT_BYTES = 64 * 1024  # how far back an LZ4 match can reach
BLOCK_BYTES = 256 * 1024  # rows are grouped into blocks of about this size
_BE32 = struct.Struct(">I")


def lz4_encode(pixels: np.ndarray, width: int, height: int, stride: int, fmt: int,
               top_down: bool) -> bytes:
    """LZ4-encode a guest bitmap into a SPICE LZ4 payload.  Arguments as
    ``lz_encode``; raises ValueError for formats clients do not decode as
    LZ4 and for bad sizes or buffers.  Thread-safe (lz4 releases the GIL)."""
    if fmt not in LZ4_BYTES_PER_PIXEL:
        raise ValueError(f"LZ4 images cannot carry bitmap format {fmt}")
    check_size(fmt, width, height)
    row_bytes = width * LZ4_BYTES_PER_PIXEL[fmt]
    flat = np.ascontiguousarray(bitmap_rows(pixels, height, stride, row_bytes)).reshape(-1)
    view = memoryview(flat)
    parts = [bytes((1 if top_down else 0, fmt))]
    lines = max(1, BLOCK_BYTES // row_bytes)
    for y in range(0, height, lines):
        begin = y * row_bytes
        end = min(height, y + lines) * row_bytes
        block = lz4.block.compress(view[begin:end], store_size=False,
                                   dict=view[max(0, begin - LZ4_DICT_BYTES) : begin])
        parts.append(_BE32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


@dataclass(frozen=True)
class Lz4Image:
    """A decoded LZ4 payload: ``pixels`` is (height, width * bytes per pixel)
    uint8 in the bitmap layout, rows in stream order."""

    fmt: int
    width: int
    height: int
    top_down: bool
    pixels: np.ndarray


def lz4_decode(data: bytes, width: int, height: int) -> Lz4Image:
    """Decode an LZ4 payload of a ``width`` x ``height`` image (the sizes
    come from the image descriptor).  Raises ValueError on anything the
    client would reject, and also on payloads that leave part of the image
    undecoded or carry bytes past its end."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bad LZ4 image size {width}x{height}")
    if len(data) < 2:
        raise ValueError("LZ4 payload shorter than its header")
    top_down, fmt = data[0] != 0, data[1]
    if fmt not in LZ4_BYTES_PER_PIXEL:
        raise ValueError(f"LZ4 payload with bitmap format {fmt}")
    size = width * height * LZ4_BYTES_PER_PIXEL[fmt]
    if size > 256 * len(data) + 64:  # LZ4 expands at most ~255x
        raise ValueError(f"LZ4 payload too short for a {width}x{height} image")
    out = bytearray()
    pos = 2
    while True:
        if pos + 4 > len(data):
            raise ValueError("LZ4 block length missing")
        (block_len,) = _BE32.unpack_from(data, pos)
        pos += 4
        if block_len > len(data) - pos:
            raise ValueError("LZ4 block longer than the payload")
        available = size - len(out)
        if available <= 0:
            raise ValueError("LZ4 block past the end of the image")
        try:
            chunk = lz4.block.decompress(data[pos : pos + block_len], uncompressed_size=available,
                                         dict=bytes(out[-LZ4_DICT_BYTES:]))
        except lz4.block.LZ4BlockError as e:
            raise ValueError(f"bad LZ4 block: {e}") from None
        if not chunk:
            raise ValueError("empty LZ4 block")
        out += chunk
        pos += block_len
        if pos >= len(data):
            break
    if len(out) != size:
        raise ValueError(f"LZ4 payload decodes to {len(out)} bytes, the image has {size}")
    pixels = np.frombuffer(bytes(out), np.uint8).reshape(height, -1)
    return Lz4Image(fmt, width, height, top_down, pixels)

"""LZ image codec (SPICE_IMAGE_TYPE_LZ_RGB / LZ_PLT, and the alpha plane of
JPEG_ALPHA): encoder and reference decoder.

Stream = 28-byte big-endian header, then the coded pixels (see lz_kernels):

    u32 magic "  ZL"   u32 version 1.1   u32 LZ image type
    u32 width          u32 height        u32 stride (bytes per row, no padding)
    u32 top_down (1 when row 0 is the top row)

Rows are coded in memory order; the header's top_down flag tells the client
which way up they are.  RGBA is coded as its colour, then a second pass over
its alpha; XXXA is the alpha pass alone.

What the caller marshals around ``lz_encode``'s bytes:
  * LZ_RGB (RGB formats and 8BIT_A): SpiceLZRGBData = u32 data_size, then
    the bytes.
  * LZ_PLT (1/4/8-bit palette formats): SpiceLZPLTData = u8 flags
    (SPICE_BITMAP_FLAGS_TOP_DOWN of the bitmap, plus PAL_CACHE_ME or
    PAL_FROM_CACHE), u32 data_size, then the u64 palette id when
    PAL_FROM_CACHE, else a u32 message offset of the palette (u64 unique,
    u16 num_ents, u32 ents[]) placed out of line; then the bytes.
  * JPEG_ALPHA: ``lz_encode_alpha``'s bytes follow the JPEG data; data_size
    counts both.
spice-server sends the raw bitmap instead when the result is larger than
``height * stride``; that choice is the caller's.
"""

from __future__ import annotations

import struct

import numpy as np

from spice.codecs.lz_kernels import DECODE_ERRORS, lz_compress, lz_decompress
from spice.codecs.lz_layout import (
    LZ_MAGIC,
    LZ_VERSION,
    MAX_IMAGE_BYTES,
    PLT_PIXELS_PER_BYTE,
    PLT_TYPES,
    RGB_BYTES_PER_PIXEL,
    DecodedImage,
    LzImageType,
    check_size,
    coded_pixels,
    header_stride,
    load_values,
    lz_type_for_format,
    passes_for,
    values_to_bytes,
)
from spice.qxl import SPICE_BITMAP_FMT_RGBA

LZ_HEADER = struct.Struct(">7I")
LZ_HEADER_SIZE = LZ_HEADER.size  # 28
MAX_CHAIN = 8  # hash-chain candidates tried per position
HASH_N = 3  # pixels hashed to find them


def _hash_bits(n: int) -> int:
    return min(16, max(10, (n - 1).bit_length()))


def _encode(values: np.ndarray, lz_type: LzImageType, width: int, height: int,
            top_down: bool) -> bytes:
    n = coded_pixels(lz_type, width, height)
    passes = passes_for(lz_type)
    out = np.empty(LZ_HEADER_SIZE + sum(n * (p.pb + 1) + 16 for p in passes), np.uint8)
    LZ_HEADER.pack_into(out, 0, LZ_MAGIC, LZ_VERSION, int(lz_type), width, height,
                        header_stride(lz_type, width), 1 if top_down else 0)
    op = LZ_HEADER_SIZE
    hbits = _hash_bits(n)
    row = n // height
    for p in passes:
        op = lz_compress(values, n, row, p.shift, p.kmask, p.pb, p.fmt_min, HASH_N, hbits,
                         MAX_CHAIN, out, op)
    return out[:op].tobytes()


def _check_palette(values: np.ndarray, lz_type: LzImageType, palette: np.ndarray) -> None:
    # Clients look palette entries up without bounds checks (PLT8, PLT1) or
    # modulo the entry count (PLT4): refuse what would read outside it.
    entries = np.asarray(palette).reshape(-1).size
    if lz_type == LzImageType.PLT8:
        top = int(values.max())
        if top >= entries:
            raise ValueError(f"palette index {top} but the palette has {entries} entries")
    elif lz_type in (LzImageType.PLT1_LE, LzImageType.PLT1_BE) and entries < 2:
        raise ValueError("a 1-bit bitmap needs a palette of at least 2 entries")
    elif entries < 1:
        raise ValueError("empty palette")


def lz_encode(pixels: np.ndarray, width: int, height: int, stride: int, fmt: int,
              top_down: bool, palette: np.ndarray | None = None) -> bytes:
    """LZ-encode a guest bitmap; returns the stream (header included).

    ``pixels``: the bitmap's bytes (uint8, rows ``stride`` apart, row 0 first
    in memory); ``fmt``: SPICE_BITMAP_FMT_*; ``top_down``: whether row 0 is
    the top row.  Row padding is dropped (the header stride is the unpadded
    one).  ``palette`` (optional, palette formats only): when given, indices
    outside it are refused because clients would read past it.
    Raises ValueError for a bad size, stride, format, buffer or palette.
    Thread-safe; releases the GIL while compressing."""
    check_size(fmt, width, height)
    lz_type = lz_type_for_format(fmt)
    values = load_values(pixels, width, height, stride, lz_type)
    if palette is not None and lz_type in PLT_TYPES:
        _check_palette(values, lz_type, palette)
    return _encode(values, lz_type, width, height, top_down)


def lz_encode_alpha(pixels: np.ndarray, width: int, height: int, stride: int,
                    top_down: bool) -> bytes:
    """LZ-encode the alpha bytes of an RGBA bitmap as an XXXA stream (the
    tail of a JPEG_ALPHA image).  Arguments and errors as ``lz_encode``."""
    check_size(SPICE_BITMAP_FMT_RGBA, width, height)
    values = load_values(pixels, width, height, stride, LzImageType.XXXA)
    return _encode(values, LzImageType.XXXA, width, height, top_down)


# -- reference decoder ----------------------------------------------------------


def parse_lz_header(data: bytes | np.ndarray) -> tuple[LzImageType, int, int, int, bool]:
    """Validate an LZ header as the SPICE decoder does, plus the checks it
    misses (zero sizes, strides too short for the width).  Returns
    (type, width, height, stride, top_down)."""
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    if buf.size < LZ_HEADER_SIZE:
        raise ValueError("LZ stream shorter than its header")
    magic, version, type_, width, height, stride, top_down = LZ_HEADER.unpack_from(buf, 0)
    if magic != LZ_MAGIC:
        raise ValueError(f"bad LZ magic {magic:#x}")
    if version != LZ_VERSION:
        raise ValueError(f"bad LZ version {version:#x}")
    if not LzImageType.PLT1_LE <= type_ <= LzImageType.A8:
        raise ValueError(f"bad LZ image type {type_}")
    lz_type = LzImageType(type_)
    if not (0 < width < 1 << 31 and 0 < height < 1 << 31 and 0 < stride < 1 << 31):
        raise ValueError(f"bad LZ image size {width}x{height} stride {stride}")
    if lz_type in PLT_TYPES:
        if stride != header_stride(lz_type, width):
            ppb = PLT_PIXELS_PER_BYTE[lz_type]
            raise ValueError(f"LZ stride {stride} does not fit width {width} at {ppb} per byte")
    elif stride != width * RGB_BYTES_PER_PIXEL[lz_type]:
        raise ValueError(f"LZ stride {stride} != width {width} * bytes per pixel")
    if stride * height > MAX_IMAGE_BYTES:
        raise ValueError("LZ image too large")
    return lz_type, width, height, stride, top_down != 0


def lz_decode(data: bytes | np.ndarray) -> DecodedImage:
    """Decode a whole LZ stream.  Raises ValueError on anything a SPICE client
    would reject or misread: bad header, a reference outside the image, a run
    past its end, missing or trailing bytes."""
    buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    buf = np.ascontiguousarray(buf, dtype=np.uint8).reshape(-1)
    lz_type, width, height, stride, top_down = parse_lz_header(buf)
    n = coded_pixels(lz_type, width, height)
    # Each input byte codes at most 255 units (a length-extension byte), so a
    # header promising more than that is refused before allocating.
    if n > 256 * buf.size + 64:
        raise ValueError(f"LZ header claims {n} pixels, more than the stream can code")
    values = np.zeros(n, np.uint32)
    ip = LZ_HEADER_SIZE
    for p in passes_for(lz_type):
        ip = lz_decompress(buf, ip, values, n, p.pb, p.fmt_min, p.shift == 24)
        if ip < 0:
            raise ValueError(f"bad LZ stream: {DECODE_ERRORS[ip]}")
    if ip != buf.size:
        raise ValueError(f"{buf.size - ip} bytes left over after the LZ image")
    pixels = values_to_bytes(values, lz_type, width, height)
    return DecodedImage(lz_type, width, height, stride, top_down, pixels)

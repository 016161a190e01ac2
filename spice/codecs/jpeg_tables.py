"""Tables of baseline JPEG (ITU-T T.81 Annex K) and how libjpeg scales them.

The server's JPEG output is meant to match what spice-server produces with
libjpeg's defaults (YCbCr 4:2:0, the Annex K quantisation tables scaled by
the quality setting, the Annex K Huffman tables), so everything here follows
the standard and libjpeg's documented quality scaling.
"""

from __future__ import annotations

import math

import numpy as np

# Position in natural (row-major) order of the i-th coefficient in zig-zag
# order.
ZIGZAG = np.array(
    [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
     12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
     35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
     58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63],
    np.int64,
)  # fmt: skip

# Annex K.1 and K.2, natural order.
LUMINANCE_QUANT = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61,
     12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77,
     24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101,
     72, 92, 95, 98, 112, 100, 103, 99],
    np.int64,
)  # fmt: skip
CHROMINANCE_QUANT = np.array(
    [17, 18, 24, 47, 99, 99, 99, 99,
     18, 21, 26, 66, 99, 99, 99, 99,
     24, 26, 56, 99, 99, 99, 99, 99,
     47, 66, 99, 99, 99, 99, 99, 99]
    + [99] * 32,
    np.int64,
)  # fmt: skip

# Annex K.3-K.6: number of codes of each length 1..16, then the symbols.
DC_LUMINANCE_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DC_LUMINANCE_VALS = list(range(12))
DC_CHROMINANCE_BITS = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
DC_CHROMINANCE_VALS = list(range(12))
AC_LUMINANCE_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]
AC_LUMINANCE_VALS = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52,
    0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25,
    0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45,
    0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83,
    0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
    0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3,
    0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8,
    0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
]  # fmt: skip
AC_CHROMINANCE_BITS = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77]
AC_CHROMINANCE_VALS = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
    0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33,
    0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18,
    0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44,
    0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63,
    0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
    0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
    0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4,
    0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
    0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
    0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
]  # fmt: skip


# (bits, values) of the four standard tables, in the order DC luma, AC
# luma, DC chroma, AC chroma: the encoder's only tables.
HUFFMAN_TABLES = (
    (DC_LUMINANCE_BITS, DC_LUMINANCE_VALS),
    (AC_LUMINANCE_BITS, AC_LUMINANCE_VALS),
    (DC_CHROMINANCE_BITS, DC_CHROMINANCE_VALS),
    (AC_CHROMINANCE_BITS, AC_CHROMINANCE_VALS),
)


def huffman_codes(bits: list[int], vals: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Canonical codes of a (bits, vals) table: (code, length) per symbol."""
    code = np.zeros(256, np.int64)
    size = np.zeros(256, np.int64)
    c = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            code[vals[k]] = c
            size[vals[k]] = length
            c += 1
            k += 1
        c <<= 1
    return code, size


def scaled_quant(base: np.ndarray, quality: int) -> np.ndarray:
    """libjpeg's quality scaling (1..100, 50 = the tables as printed),
    limited to 8-bit entries as a baseline stream requires."""
    quality = min(max(quality, 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - quality * 2
    return np.clip((base * scale + 50) // 100, 1, 255)


def _aan_scales() -> np.ndarray:
    # The fast DCT leaves each output scaled by s[row] * s[col] with
    # s[0] = 1 and s[k] = sqrt(2) cos(k pi / 16); folded into the divisors,
    # as 14-bit fixed point.
    s = [1.0] + [math.sqrt(2.0) * math.cos(k * math.pi / 16) for k in range(1, 8)]
    return np.array([round(16384 * s[r] * s[c]) for r in range(8) for c in range(8)], np.int64)


AAN_SCALES = _aan_scales()


def divisors(quant: np.ndarray, fast: bool) -> np.ndarray:
    """Per-coefficient quantisation as libjpeg-turbo performs it, natural
    order: rows are (reciprocal, rounding correction, shift) so that
    ``q = ((|x| + corr) * recip) >> shift``, sign restored afterwards.

    The accurate DCT's output carries a factor 8, the fast one the AAN
    scale factors; both are folded into the divisor first."""
    out = np.zeros((3, 64), np.int64)
    for i in range(64):
        if fast:
            d = (int(quant[i]) * int(AAN_SCALES[i]) + (1 << 10)) >> 11
        else:
            d = int(quant[i]) << 3
        if d == 1:
            out[:, i] = (1, 0, 0)
            continue
        r = 16 + d.bit_length() - 1
        fq, fr = divmod(1 << r, d)
        c = d // 2
        if fr == 0:  # a power of two: exact
            fq >>= 1
            r -= 1
        elif fr <= d // 2:
            c += 1
        else:
            fq += 1
        out[:, i] = (fq, c, r)
    return out

"""How photo-like a bitmap is: the "graduality" that picks QUIC over LZ/GLZ
and decides whether a series of frames is worth streaming as video.

The score samples small squares (a pixel, its right, lower and lower-right
neighbours) every 15 pixels.  Identical neighbours count for artificial
content (+0.5), strongly contrasting ones too (+1.0: text, edges), while
neighbours that differ only a little count for photographic content
(-0.25).  Squares of four identical pixels are ignored but still counted
as samples.  A low average means smooth, noisy, photo-like content.

This is the reference server's rule, reproduced to the sample: it walks the
pixels as if rows were ``width`` pixels long (not ``stride`` bytes), per
memory chunk of the bitmap, so a padded stride shifts the sample grid just
as it does there.  The same image therefore gets the same codec.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from spice.codecs.quic import byte_view
from spice.qxl import (
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)

# BitmapGradualType values of the reference server.
BITMAP_GRADUAL_INVALID = 0
BITMAP_GRADUAL_NOT_AVAIL = 1
BITMAP_GRADUAL_LOW = 2
BITMAP_GRADUAL_MEDIUM = 3
BITMAP_GRADUAL_HIGH = 4

SAMPLE_JUMP = 15
# Average score below which content is photographic.  16-bit pixels lose
# the fine differences, so their threshold is stricter.
GRADUAL_HIGH_TH = -0.03
GRADUAL_HIGH_TH_16BPP = 0.0
# Below this (and not HIGH) content is "medium": kept permissive so that
# video scaled up by the guest is still recognised as a stream.
GRADUAL_MEDIUM_TH = 0.002

_PAIR_SCORE = np.array([0.5, 1.0, -0.25])  # same, contrasting, different
_BYTES_PER_PIXEL = {
    SPICE_BITMAP_FMT_16BIT: 2,
    SPICE_BITMAP_FMT_24BIT: 3,
    SPICE_BITMAP_FMT_32BIT: 4,
    SPICE_BITMAP_FMT_RGBA: 4,
}


@njit(cache=True, nogil=True)
def _rgb(buf, base, p, bpp):
    o = base + p * bpp
    if bpp == 2:
        v = np.int64(buf[o]) | (np.int64(buf[o + 1]) << 8)
        return (v >> 10) & 0x1F, (v >> 5) & 0x1F, v & 0x1F
    return np.int64(buf[o + 2]), np.int64(buf[o + 1]), np.int64(buf[o])


@njit(cache=True, nogil=True)
def _pair(buf, base, p, q, bpp, contrast):
    """0 identical, 1 contrasting, 2 different but not contrasting."""
    r1, g1, b1 = _rgb(buf, base, p, bpp)
    r2, g2, b2 = _rgb(buf, base, q, bpp)
    # Channels are looked at in the order red, green, blue; the first
    # contrasting one decides.
    for d in (r1 - r2, g1 - g2, b1 - b2):
        if d <= -contrast or d >= contrast:
            return 1
    if r1 == r2 and g1 == g2 and b1 == b2:
        return 0
    return 2


@njit(cache=True, nogil=True)
def chunk_score(buf, base, width, num_lines, bpp, pair_score):
    """(sum of square scores, number of samples) for one memory chunk."""
    if width <= 1 or num_lines <= 1:
        return 1.0, 1
    contrast = 8 if bpp == 2 else 60
    jump = SAMPLE_JUMP if SAMPLE_JUMP % width else SAMPLE_JUMP - 1
    last_line = (num_lines - 1) * width
    cur = width // 2
    total = 0.0
    n = 0
    while cur < last_line:
        if (cur + 1) % width == 0:
            cur -= 1  # never sample from the last pixel of a row
        below = cur + width
        a = _pair(buf, base, cur, cur + 1, bpp, contrast)
        b = _pair(buf, base, cur, below, bpp, contrast)
        c = _pair(buf, base, cur, below + 1, bpp, contrast)
        if a | b | c:
            total += pair_score[a] + pair_score[b] + pair_score[c]
        n += 1
        cur += jump
    return total, n * 3


def bitmap_graduality(
    pixels: np.ndarray | bytes,
    width: int,
    height: int,
    stride: int,
    fmt: int,
    chunk_heights: Sequence[int] | None = None,
) -> int:
    """Classify an RGB bitmap as BITMAP_GRADUAL_LOW, _MEDIUM or _HIGH.

    ``pixels`` holds ``height`` rows ``stride`` bytes apart in memory order
    (row order does not matter: the reference samples memory as it lies).
    ``chunk_heights`` gives the rows of each guest data chunk when the
    bitmap came in several; the default is one chunk.  Raises ValueError for
    formats without graduality (palettes, alpha-only) or bad geometry.
    """
    bpp = _BYTES_PER_PIXEL.get(fmt)
    if bpp is None:
        raise ValueError(f"SPICE bitmap format {fmt} has no graduality")
    if width <= 0 or height <= 0 or stride < width * bpp:
        raise ValueError(f"bad bitmap geometry {width}x{height} stride {stride}")
    buf = byte_view(pixels)
    heights = [height] if chunk_heights is None else list(chunk_heights)
    if sum(heights) != height or any(h < 0 for h in heights):
        raise ValueError(f"chunk heights {heights} do not add up to {height}")
    if buf.size < (height - 1) * stride + width * bpp:
        raise ValueError(f"{buf.size} bytes cannot hold {height} rows of {stride}")
    score = 0.0
    samples = 0
    base = 0
    for lines in heights:
        s, n = chunk_score(buf, base, width, lines, bpp, _PAIR_SCORE)
        score += s
        samples += n
        base += lines * stride
    score /= samples
    high = GRADUAL_HIGH_TH_16BPP if fmt == SPICE_BITMAP_FMT_16BIT else GRADUAL_HIGH_TH
    if score < high:
        return BITMAP_GRADUAL_HIGH
    if score < GRADUAL_MEDIUM_TH:
        return BITMAP_GRADUAL_MEDIUM
    return BITMAP_GRADUAL_LOW

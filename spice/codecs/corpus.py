"""Synthetic test images for the image codecs.

A deterministic corpus of bitmaps laid out exactly as a guest hands them to
the server: ``height * stride`` bytes, rows in memory order (the bottom row
first unless ``top_down``), optional padding at the end of each row, and a
palette for the indexed formats.  Content kinds cover what a desktop shows:
gradients, text, photographs (smooth noise), flat colours and a UI mock-up
with repeated widgets.

``picture(kind, w, h)`` gives the RGB + alpha content, ``pack(...)`` lays it
out in any SPICE bitmap format, ``corpus(...)`` builds the standard set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spice.qxl import (
    BITMAP_FMT_BPP,
    BITMAP_FMT_HAS_PALETTE,
    SPICE_BITMAP_FMT_1BIT_BE,
    SPICE_BITMAP_FMT_1BIT_LE,
    SPICE_BITMAP_FMT_4BIT_BE,
    SPICE_BITMAP_FMT_4BIT_LE,
    SPICE_BITMAP_FMT_8BIT,
    SPICE_BITMAP_FMT_8BIT_A,
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)

KINDS = ("gradient", "text", "photo", "flat", "ui")
RGB_FORMATS = (
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)
PALETTE_FORMATS = (
    SPICE_BITMAP_FMT_1BIT_LE,
    SPICE_BITMAP_FMT_1BIT_BE,
    SPICE_BITMAP_FMT_4BIT_LE,
    SPICE_BITMAP_FMT_4BIT_BE,
    SPICE_BITMAP_FMT_8BIT,
)
ALL_FORMATS = RGB_FORMATS + PALETTE_FORMATS + (SPICE_BITMAP_FMT_8BIT_A,)
FORMAT_NAMES = {
    SPICE_BITMAP_FMT_1BIT_LE: "1le",
    SPICE_BITMAP_FMT_1BIT_BE: "1be",
    SPICE_BITMAP_FMT_4BIT_LE: "4le",
    SPICE_BITMAP_FMT_4BIT_BE: "4be",
    SPICE_BITMAP_FMT_8BIT: "8",
    SPICE_BITMAP_FMT_16BIT: "16",
    SPICE_BITMAP_FMT_24BIT: "24",
    SPICE_BITMAP_FMT_32BIT: "32",
    SPICE_BITMAP_FMT_RGBA: "rgba",
    SPICE_BITMAP_FMT_8BIT_A: "a8",
}
# Byte written into row padding so that a codec that leaks it shows up.
PAD_BYTE = 0xA5


@dataclass(frozen=True)
class CorpusImage:
    name: str
    fmt: int  # SPICE_BITMAP_FMT_*
    width: int
    height: int
    stride: int
    top_down: bool
    data: np.ndarray  # uint8, height * stride bytes, rows in memory order
    palette: np.ndarray | None  # uint32 xRGB entries for the indexed formats

    @property
    def row_bytes(self) -> int:
        """Bytes of pixel data in one row (the stride without padding)."""
        return row_bytes(self.fmt, self.width)

    def rows(self) -> np.ndarray:
        """(height, row_bytes) view of the pixel bytes without row padding."""
        return self.data.reshape(self.height, self.stride)[:, : self.row_bytes]


def row_bytes(fmt: int, width: int) -> int:
    return (width * BITMAP_FMT_BPP[fmt] + 7) // 8


# -- content ------------------------------------------------------------------


def picture(kind: str, width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-down content: (height, width, 3) uint8 RGB and (height, width) alpha."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    if kind == "gradient":
        rgb = np.stack(
            [
                x * 255 // max(width - 1, 1),
                y * 255 // max(height - 1, 1),
                (x + y) * 255 // max(width + height - 2, 1),
            ],
            axis=-1,
        )
        alpha = 255 - (x * 255 // max(width - 1, 1))
    elif kind == "text":
        rgb, alpha = _text(width, height, rng)
    elif kind == "photo":
        rgb = _smooth_noise(width, height, 3, rng, cell=16)
        rgb = rgb + rng.normal(0.0, 3.0, rgb.shape)
        alpha = _smooth_noise(width, height, 1, rng, cell=32)[..., 0]
    elif kind == "flat":
        colour = rng.integers(0, 256, 3)
        rgb = np.broadcast_to(colour, (height, width, 3))
        alpha = np.full((height, width), 255)
    elif kind == "ui":
        rgb, alpha = _ui(width, height, rng)
    else:
        raise ValueError(f"unknown picture kind {kind!r}")
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0, 255).astype(np.uint8)
    alpha = np.clip(np.asarray(alpha, dtype=np.float64), 0, 255).astype(np.uint8)
    return rgb, alpha


def _smooth_noise(width: int, height: int, channels: int, rng: np.random.Generator,
                  cell: int) -> np.ndarray:
    gh, gw = height // cell + 2, width // cell + 2
    grid = rng.uniform(0, 255, (gh, gw, channels))
    fy = np.arange(height) / cell
    fx = np.arange(width) / cell
    y0 = fy.astype(int)
    x0 = fx.astype(int)
    wy = (fy - y0)[:, None, None]
    wx = (fx - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x0 + 1] * wx
    bottom = grid[y0 + 1][:, x0] * (1 - wx) + grid[y0 + 1][:, x0 + 1] * wx
    return top * (1 - wy) + bottom * wy


def _glyphs(rng: np.random.Generator, count: int = 48) -> np.ndarray:
    """Random 8x12 'glyphs' made of strokes, like a bitmap font."""
    glyphs = np.zeros((count, 12, 8), dtype=bool)
    for g in glyphs:
        for _ in range(rng.integers(2, 5)):
            if rng.integers(2):
                col = rng.integers(1, 7)
                r0, r1 = sorted(rng.integers(1, 11, 2))
                g[r0 : r1 + 1, col] = True
            else:
                row = rng.integers(1, 11)
                c0, c1 = sorted(rng.integers(1, 7, 2))
                g[row, c0 : c1 + 1] = True
    return glyphs


def _text(width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    glyphs = _glyphs(rng)
    ink = np.zeros((height, width), dtype=bool)
    for top in range(2, height - 12, 15):
        left = 4
        while left + 8 <= width - 4:
            if rng.random() < 0.15:  # a space
                left += 8
                continue
            ink[top : top + 12, left : left + 8] = glyphs[rng.integers(len(glyphs))]
            left += 8
    background = np.array([250, 250, 245])
    foreground = np.array([20, 20, 60])
    rgb = np.where(ink[..., None], foreground, background)
    alpha = np.where(ink, 255, 0)
    return rgb, alpha


def _ui(width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rgb, alpha = _text(width, height, rng)
    rgb = rgb.copy()
    # Title bar, buttons and a frame: flat areas with sharp edges.
    bar = min(height, 20)
    rgb[:bar] = (50, 90, 160)
    for left in range(4, width - 24, 64):
        rgb[min(24, height) : min(44, height), left : left + 48] = (200, 200, 210)
        rgb[min(24, height) : min(25, height), left : left + 48] = (255, 255, 255)
    rgb[:, :2] = (30, 30, 30)
    rgb[:, -2:] = (30, 30, 30)
    alpha = np.full((height, width), 255)
    return rgb, alpha


# -- layout -------------------------------------------------------------------


def palette_for(fmt: int) -> np.ndarray:
    """The palette ``pack`` quantises to (uint32 0x00RRGGBB entries)."""
    if fmt == SPICE_BITMAP_FMT_8BIT:  # 3-3-2 colour cube
        i = np.arange(256, dtype=np.uint32)
        r = ((i >> 5) & 7) * 255 // 7
        g = ((i >> 2) & 7) * 255 // 7
        b = (i & 3) * 255 // 3
        return (r << 16) | (g << 8) | b
    if fmt in (SPICE_BITMAP_FMT_4BIT_LE, SPICE_BITMAP_FMT_4BIT_BE):  # 16 greys
        v = np.arange(16, dtype=np.uint32) * 17
        return (v << 16) | (v << 8) | v
    if fmt in (SPICE_BITMAP_FMT_1BIT_LE, SPICE_BITMAP_FMT_1BIT_BE):
        return np.array([0x000000, 0xFFFFFF], dtype=np.uint32)
    raise ValueError(f"format {fmt} has no palette")


def _pack_bits(values: np.ndarray, bits: int, little: bool) -> np.ndarray:
    """Pack (h, w) small integers into (h, ceil(w*bits/8)) bytes."""
    h, w = values.shape
    per_byte = 8 // bits
    padded_w = -(-w // per_byte) * per_byte
    v = np.zeros((h, padded_w), dtype=np.uint8)
    v[:, :w] = values
    v = v.reshape(h, -1, per_byte)
    shifts = np.arange(per_byte) * bits
    if not little:
        shifts = shifts[::-1]
    return (v.astype(np.uint32) << shifts).sum(axis=-1).astype(np.uint8)


def pack(rgb: np.ndarray, alpha: np.ndarray, fmt: int, *, top_down: bool = True,
         pad: int = 0, pad_x: int = 0) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Lay a top-down picture out as a guest bitmap.

    Returns (data, stride, palette): ``data`` is ``height * stride`` uint8
    bytes, rows in memory order (reversed unless ``top_down``), each row
    followed by ``pad`` bytes of PAD_BYTE.  ``pad_x`` is written into the
    unused pad byte of 32BIT pixels (guests leave anything there)."""
    h, w, _ = rgb.shape
    r = rgb[..., 0].astype(np.uint32)
    g = rgb[..., 1].astype(np.uint32)
    b = rgb[..., 2].astype(np.uint32)
    if fmt == SPICE_BITMAP_FMT_32BIT:
        px = np.stack([b, g, r, np.full_like(r, pad_x)], -1).astype(np.uint8).reshape(h, -1)
    elif fmt == SPICE_BITMAP_FMT_RGBA:
        px = np.stack([b, g, r, alpha], -1).astype(np.uint8).reshape(h, -1)
    elif fmt == SPICE_BITMAP_FMT_24BIT:
        px = np.stack([b, g, r], -1).astype(np.uint8).reshape(h, -1)
    elif fmt == SPICE_BITMAP_FMT_16BIT:
        v = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3)
        px = v.astype("<u2").view(np.uint8).reshape(h, -1)
    elif fmt == SPICE_BITMAP_FMT_8BIT_A:
        px = alpha.astype(np.uint8)
    elif fmt == SPICE_BITMAP_FMT_8BIT:
        px = ((r >> 5) << 5 | (g >> 5) << 2 | (b >> 6)).astype(np.uint8)
    elif fmt in (SPICE_BITMAP_FMT_4BIT_LE, SPICE_BITMAP_FMT_4BIT_BE):
        luma = (r * 77 + g * 150 + b * 29) >> 8
        px = _pack_bits(luma >> 4, 4, fmt == SPICE_BITMAP_FMT_4BIT_LE)
    elif fmt in (SPICE_BITMAP_FMT_1BIT_LE, SPICE_BITMAP_FMT_1BIT_BE):
        luma = (r * 77 + g * 150 + b * 29) >> 8
        px = _pack_bits((luma > 127).astype(np.uint8), 1, fmt == SPICE_BITMAP_FMT_1BIT_LE)
    else:
        raise ValueError(f"unsupported bitmap format {fmt}")
    if not top_down:
        px = px[::-1]
    stride = px.shape[1] + pad
    data = np.full((h, stride), PAD_BYTE, dtype=np.uint8)
    data[:, : px.shape[1]] = px
    palette = palette_for(fmt) if fmt in BITMAP_FMT_HAS_PALETTE else None
    return data.reshape(-1), stride, palette


def make(kind: str, fmt: int, width: int, height: int, *, top_down: bool = True, pad: int = 0,
         seed: int = 0, pad_x: int = 0) -> CorpusImage:
    rgb, alpha = picture(kind, width, height, seed)
    data, stride, palette = pack(rgb, alpha, fmt, top_down=top_down, pad=pad, pad_x=pad_x)
    name = (f"{kind}-{FORMAT_NAMES[fmt]}-{width}x{height}"
            f"{'' if top_down else '-bu'}{f'-pad{pad}' if pad else ''}")
    return CorpusImage(name, fmt, width, height, stride, top_down, data, palette)


# Odd shapes every codec must survive (1x1, a row, a column, wider than 4096).
ODD_SIZES = ((1, 1), (1, 37), (53, 1), (4097, 3), (3, 2), (7, 5))


def corpus(formats: tuple[int, ...] = ALL_FORMATS, *, size: tuple[int, int] = (96, 64),
           seed: int = 0) -> list[CorpusImage]:
    """The standard set: every kind in every format at ``size``, the odd sizes,
    a bottom-up and a padded-stride variant of each format."""
    images = []
    w, h = size
    for fmt in formats:
        for i, kind in enumerate(KINDS):
            images.append(make(kind, fmt, w, h, seed=seed + i, pad_x=0xFF if i % 2 else 0))
        for ow, oh in ODD_SIZES:
            images.append(make("photo", fmt, ow, oh, seed=seed))
        images.append(make("ui", fmt, w + 3, h + 1, top_down=False, seed=seed))
        images.append(make("text", fmt, w - 5, h, pad=5, seed=seed))
        images.append(make("gradient", fmt, w + 1, h, top_down=False, pad=3, seed=seed))
    return images


def bench_corpus(seed: int = 0) -> list[CorpusImage]:
    """Larger 32-bit screen-sized images for throughput measurements."""
    return [
        make("ui", SPICE_BITMAP_FMT_32BIT, 1024, 768, seed=seed),
        make("text", SPICE_BITMAP_FMT_32BIT, 1024, 768, seed=seed),
        make("photo", SPICE_BITMAP_FMT_32BIT, 1024, 768, seed=seed),
        make("gradient", SPICE_BITMAP_FMT_32BIT, 1024, 768, seed=seed),
        make("flat", SPICE_BITMAP_FMT_32BIT, 1024, 768, seed=seed),
        make("text", SPICE_BITMAP_FMT_16BIT, 1024, 768, seed=seed),
        make("photo", SPICE_BITMAP_FMT_RGBA, 512, 512, seed=seed),
        make("text", SPICE_BITMAP_FMT_8BIT, 1024, 768, seed=seed),
    ]

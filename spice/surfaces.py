"""Surfaces of one display channel and the software canvas behind each.

A surface's pixels live in guest memory (the primary in the QXL VRAM BAR,
off-screen surfaces wherever the driver put them); the worker renders
drawables into that memory through a :mod:`spice.canvas` canvas, exactly as
spice-server's software canvas draws on the surface.  Everything that needs
the canvas goes through :func:`make_canvas`, the one place the canvas API
is named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from spice.qxl import (
    SPICE_BITMAP_FMT_8BIT_A,
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
    SPICE_SURFACE_FMT_8_A,
    SPICE_SURFACE_FMT_16_555,
    SPICE_SURFACE_FMT_32_ARGB,
    SURFACE_FMT_BPP,
    Command,
    SPICE_SURFACE_FMT_32_xRGB,
)

log = logging.getLogger(__name__)

MAX_SURFACE_BYTES = 1 << 30  # spice-server's MAX_DATA_CHUNK
# Surface formats whose pixels can be sent as an image (spice_bitmap_from_surface_type).
SURFACE_TO_BITMAP_FMT = {
    SPICE_SURFACE_FMT_16_555: SPICE_BITMAP_FMT_16BIT,
    SPICE_SURFACE_FMT_32_xRGB: SPICE_BITMAP_FMT_32BIT,
    SPICE_SURFACE_FMT_32_ARGB: SPICE_BITMAP_FMT_RGBA,
    SPICE_SURFACE_FMT_8_A: SPICE_BITMAP_FMT_8BIT_A,
}

_canvas_warned = False


def valid_surface(width: int, height: int, stride: int, fmt: int) -> bool:
    """spice-server's red_validate_surface."""
    bpp = SURFACE_FMT_BPP.get(fmt)
    if not bpp or width <= 0 or height <= 0:
        return False
    if stride == -(1 << 31) or (width * bpp + 7) // 8 > abs(stride):
        return False
    return height * abs(stride) <= MAX_SURFACE_BYTES


def make_canvas(surface: RedSurface) -> object | None:
    """The software canvas drawing into ``surface``'s memory, or None when
    the canvas package is not available (drawables are then forwarded to
    clients but not rendered on the server)."""
    global _canvas_warned
    try:
        from spice.canvas import SurfaceCanvas  # noqa: PLC0415 (optional component)
    except ImportError:
        if not _canvas_warned:
            _canvas_warned = True
            log.warning("spice.canvas is not available: surfaces are not rendered server-side")
        return None
    return SurfaceCanvas(surface.width, surface.height, surface.stride, surface.format,
                         surface.data)


def make_image_cache() -> object | None:
    """The display channel's decoded-image cache the canvas consults (None
    without the canvas package)."""
    try:
        from spice.canvas import ImageCache  # noqa: PLC0415 (optional component)
    except ImportError:
        return None
    return ImageCache()


@dataclass
class RedSurface:
    id: int
    width: int
    height: int
    stride: int  # negative: the top row is the last row of ``data``
    format: int
    data: np.ndarray  # uint8, height * abs(stride) bytes from the lowest address
    is_primary: bool = False
    create_cmd: Command | None = None
    generation: int = 0
    canvas: object | None = None
    # areas rendered since the device last asked (update_area with clear_dirty)
    dirty: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def bytes_per_pixel(self) -> int:
        return SURFACE_FMT_BPP[self.format] // 8

    def rows(self) -> np.ndarray:
        """A (height, abs(stride)) view, row 0 being the top row."""
        view = self.data[: self.height * abs(self.stride)].reshape(self.height, abs(self.stride))
        return view[::-1] if self.stride < 0 else view

    def clear(self) -> None:
        self.data[: self.height * abs(self.stride)] = 0

    def read_area(self, top: int, left: int, bottom: int, right: int) -> np.ndarray:
        """Copy of an area as top-down rows of ``width * bpp`` bytes."""
        bpp = self.bytes_per_pixel
        return np.ascontiguousarray(self.rows()[top:bottom, left * bpp:right * bpp])

    def add_dirty(self, rect: tuple[int, int, int, int]) -> None:
        self.dirty.append(rect)
        if len(self.dirty) > 64:
            t = min(r[0] for r in self.dirty)
            left = min(r[1] for r in self.dirty)
            b = max(r[2] for r in self.dirty)
            right = max(r[3] for r in self.dirty)
            self.dirty = [(t, left, b, right)]

    def get_canvas(self) -> object | None:
        if self.canvas is None:
            self.canvas = make_canvas(self)
        return self.canvas


def rgb32_alpha_state(pixels: np.ndarray) -> str:
    """For 32-bit pixels as bytes: 'none' if every high byte is 0, 'all' if
    all are 0xff, else 'some' (spice-server's rgb32_data_has_alpha)."""
    if pixels.size == 0:
        return "none"
    alpha = pixels.reshape(pixels.shape[0], -1, 4)[:, :, 3]
    if not alpha.any():
        return "none"
    return "all" if (alpha == 0xFF).all() else "some"

"""What a local display (or a screendump) reads from a red worker.

The host embedding the server may show the guest's screen itself, the way
QEMU's SDL/GTK windows do next to spice-server.  It asks through
:meth:`spice.server.SpiceServer.screendump`,
:meth:`~spice.server.SpiceServer.cursor_state` or
:meth:`~spice.server.SpiceServer.request_frame`; the worker renders the
primary surface's pending drawables and answers with copies made here, so
nothing the worker owns is shared with another thread.

Pixels come back as ``(height, width)`` uint32 arrays, top row first:

* the primary surface as x8r8g8b8 (``0x00RRGGBB``; the top byte is always
  0, whatever the surface format);
* the cursor shape as a8r8g8b8 with straight (not premultiplied) alpha.

Cursor shapes are converted as a local display shows them: ALPHA as is;
MONO with QEMU's rules (XOR bit on a clear AND bit white, off black; AND
bit set: transparent, or -- with the XOR bit too, "invert the screen" --
white with a black outline); COLOR32/16/4 as spice-gtk reads them (the AND
mask makes a pixel transparent; an AND pixel whose colour is white, an
inverting pixel, becomes spice-gtk's grey checker).  COLOR8 and COLOR24
have no reader in spice-gtk or QEMU; they give no shape.

The cursor position and visibility are the cursor channel's: MOVE sets the
position and shows the cursor, HIDE hides it, SET takes its visibility from
the command but (as spice-server and spice-gtk) not its position.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spice import qxl
from spice.surfaces import RedSurface

log = logging.getLogger(__name__)

_GREY_CHECKER = (np.uint32(0x30505050), np.uint32(0xC0303030))  # spice-gtk's get_pix_hack


@dataclass(frozen=True, slots=True)
class CursorState:
    """The guest cursor as a local display draws it.

    ``shape`` is None when the guest set no shape (or one that cannot be
    shown); ``serial`` changes whenever ``shape`` is a different picture,
    so a display converts or scales it once.  ``x``/``y`` is where the hot
    spot is, in primary-surface pixels.
    """

    shape: np.ndarray | None
    hot_x: int
    hot_y: int
    x: int
    y: int
    visible: bool
    serial: int


NO_CURSOR = CursorState(None, 0, 0, 0, 0, False, 0)


def _expand5(v: np.ndarray) -> np.ndarray:
    return (v << 3) | (v >> 2)


def surface_xrgb(surface: RedSurface) -> np.ndarray:
    """A copy of ``surface`` as (height, width) uint32 0x00RRGGBB, top row first."""
    w = surface.width
    rows = surface.rows()
    fmt = surface.format
    if fmt in (qxl.SPICE_SURFACE_FMT_32_xRGB, qxl.SPICE_SURFACE_FMT_32_ARGB):
        return rows[:, : 4 * w].view("<u4") & np.uint32(0x00FFFFFF)
    if fmt in (qxl.SPICE_SURFACE_FMT_16_555, qxl.SPICE_SURFACE_FMT_16_565):
        p = rows[:, : 2 * w].view("<u2").astype(np.uint32)
        if fmt == qxl.SPICE_SURFACE_FMT_16_555:
            r, g = _expand5((p >> 10) & 31), _expand5((p >> 5) & 31)
        else:
            g6 = (p >> 5) & 63
            r, g = _expand5((p >> 11) & 31), (g6 << 2) | (g6 >> 4)
        return (r << 16) | (g << 8) | _expand5(p & 31)
    if fmt == qxl.SPICE_SURFACE_FMT_8_A:
        return rows[:, :w].astype(np.uint32) * np.uint32(0x010101)
    if fmt == qxl.SPICE_SURFACE_FMT_1_A:
        # pixman's a1 on a little-endian host: the leftmost pixel is bit 0
        bits = np.unpackbits(rows[:, : (w + 7) // 8], axis=1, bitorder="little")[:, :w]
        return bits.astype(np.uint32) * np.uint32(0xFFFFFF)
    raise ValueError(f"surface format {fmt} has no pixel reader")


def _mask_bits(data: np.ndarray, offset: int, w: int, h: int) -> np.ndarray | None:
    """A 1-bit-per-pixel mask (rows padded to bytes, MSB = leftmost) as bools."""
    bpl = (w + 7) // 8
    raw = data[offset: offset + bpl * h]
    if raw.size < bpl * h:
        return None
    return np.unpackbits(raw.reshape(h, bpl), axis=1)[:, :w].astype(bool)


def _mono(data: np.ndarray, w: int, h: int) -> np.ndarray | None:
    and_mask = _mask_bits(data, 0, w, h)
    xor_mask = _mask_bits(data, (w + 7) // 8 * h, w, h)
    if and_mask is None or xor_mask is None:
        return None
    white, black = np.uint32(0xFFFFFFFF), np.uint32(0xFF000000)
    out = np.where(xor_mask, white, black).astype(np.uint32)
    out[and_mask] = 0
    inverted = and_mask & xor_mask
    if inverted.any():
        # an outline keeps inverting pixels visible on a white background
        near = np.zeros_like(inverted)
        near[1:, :] |= inverted[:-1, :]
        near[:-1, :] |= inverted[1:, :]
        near[:, 1:] |= inverted[:, :-1]
        near[:, :-1] |= inverted[:, 1:]
        out[near & (out == 0)] = black
        out[inverted] = white
    return out


def _with_and_mask(color: np.ndarray, white: np.ndarray, data: np.ndarray, offset: int,
                   w: int, h: int) -> np.ndarray | None:
    """spice-gtk's colour cursors: opaque where the AND bit is clear,
    transparent where it is set, a grey checker where it is set on white."""
    and_mask = _mask_bits(data, offset, w, h)
    if and_mask is None:
        return None
    out = np.where(and_mask, np.uint32(0), (color & np.uint32(0xFFFFFF)) | np.uint32(0xFF000000))
    hack = and_mask & white
    if hack.any():
        yy, xx = np.indices((h, w))
        checker = np.where((xx ^ yy) & 1, _GREY_CHECKER[1], _GREY_CHECKER[0])
        out[hack] = checker[hack]
    return out.astype(np.uint32)


def cursor_argb(shape: qxl.Cursor) -> np.ndarray | None:
    """The shape as (height, width) uint32 ARGB, or None if it cannot be shown."""
    w, h, data = shape.width, shape.height, shape.data.reshape(-1)
    if w <= 0 or h <= 0:
        return None
    n = w * h
    t = shape.type
    if t == qxl.SPICE_CURSOR_TYPE_ALPHA:
        if data.size < 4 * n:
            return None
        return data[: 4 * n].view("<u4").reshape(h, w).copy()
    if t == qxl.SPICE_CURSOR_TYPE_MONO:
        return _mono(data, w, h)
    if t == qxl.SPICE_CURSOR_TYPE_COLOR32:
        if data.size < 4 * n:
            return None
        c = data[: 4 * n].view("<u4").reshape(h, w)
        return _with_and_mask(c, (c & 0xFFFFFF) == 0xFFFFFF, data, 4 * n, w, h)
    if t == qxl.SPICE_CURSOR_TYPE_COLOR16:
        if data.size < 2 * n:
            return None
        p = data[: 2 * n].view("<u2").reshape(h, w).astype(np.uint32)
        c = ((p & 0x1F) << 3) | ((p & 0x3E0) << 6) | ((p & 0x7C00) << 9)
        return _with_and_mask(c, p == 0x7FFF, data, 2 * n, w, h)
    if t == qxl.SPICE_CURSOR_TYPE_COLOR4:
        size = (w + 1) // 2 * h
        if data.size < size + 64:
            return None
        palette = data[size: size + 64].view("<u4")
        packed = data[:size].reshape(h, (w + 1) // 2)
        idx = np.empty((h, 2 * packed.shape[1]), np.uint8)
        idx[:, 0::2], idx[:, 1::2] = packed >> 4, packed & 0x0F
        c = palette[idx[:, :w]]
        return _with_and_mask(c, (c & 0xFFFFFF) == 0xFFFFFF, data, size + 64, w, h)
    return None


class LocalView:
    """Worker-side helper answering a local display: keeps the last cursor
    shape it converted so a 30 ms refresh does not convert it again."""

    def __init__(self) -> None:
        self._shape_of: object | None = None  # the CursorRef the cached shape came from
        self._shape: np.ndarray | None = None
        self._serial = 0
        self._warned_types: set[int] = set()

    def cursor_state(self, cursor_channel) -> CursorState:
        ref = cursor_channel.current
        if ref is not self._shape_of:
            self._shape_of = ref
            self._serial += 1
            self._shape = None
            shape = ref.cursor.shape if ref is not None else None
            if shape is not None:
                try:
                    self._shape = cursor_argb(shape)
                except Exception:
                    log.exception("cursor shape type %d could not be converted", shape.type)
                if self._shape is None and shape.type not in self._warned_types:
                    self._warned_types.add(shape.type)
                    log.info("cursor shape type %d is not shown by the local display",
                             shape.type)
        shape = ref.cursor.shape if ref is not None else None
        x, y = cursor_channel.position
        return CursorState(self._shape, shape.hot_spot_x if shape is not None else 0,
                           shape.hot_spot_y if shape is not None else 0, int(x), int(y),
                           bool(cursor_channel.visible), self._serial)

    def primary(self, display_channel) -> np.ndarray | None:
        """Render the primary's pending drawables and copy its pixels."""
        surface = display_channel.surfaces.get(0)
        if surface is None:
            return None
        display_channel.current.flush_surface(0)
        return surface_xrgb(surface)

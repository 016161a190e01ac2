"""VGA mode as SPICE draw commands, the way QEMU's spice-display does it.

Each refresh compares the rendered legacy picture with a mirror of what
the server has already been sent, scan line by scan line in 32-pixel
columns.  A column that differs starts a run; the run ends at the first
line where the column matches again, and becomes one QXL_DRAW_COPY of
that rectangle: effect OPAQUE, ROP PUT, a top-down 32-bit DIRECT bitmap in
image group DEVICE with a running unique id.  Runs still open at the last
line are emitted after the scan, left to right.  The mirror starts black,
like the freshly created host primary.

One difference from QEMU: the columns are always aligned to x = 0 and the
whole picture is compared, because the device has no dirty-rectangle
tracking of the legacy framebuffer; QEMU aligns them to the left edge of
its dirty rectangle.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from devices.qxl import layout as L
from devices.qxl.release import HostRelease
from spice import qxl as Q

BLOCK = 32
_NO_RECT = Q.Rect(0, 0, 0, 0)


@njit(cache=True, nogil=True)
def dirty_runs(guest: np.ndarray, mirror: np.ndarray, out: np.ndarray) -> int:
    """Fill ``out`` (n, 4) with (top, left, bottom, right) runs; returns n."""
    height, width = guest.shape
    blocks = (width + BLOCK - 1) // BLOCK
    top = np.full(blocks, -1, np.int64)
    n = 0
    for y in range(height):
        for blk in range(blocks):
            x0 = blk * BLOCK
            x1 = min(x0 + BLOCK, width)
            same = True
            for x in range(x0, x1):
                if guest[y, x] != mirror[y, x]:
                    same = False
                    break
            if same:
                if top[blk] != -1:
                    out[n, 0], out[n, 1], out[n, 2], out[n, 3] = top[blk], x0, y, x1
                    n += 1
                    top[blk] = -1
            elif top[blk] == -1:
                top[blk] = y
    for blk in range(blocks):
        if top[blk] != -1:
            x0 = blk * BLOCK
            out[n, 0], out[n, 1], out[n, 2], out[n, 3] = top[blk], x0, height, \
                min(x0 + BLOCK, width)
            n += 1
    return n


class VGADisplay:
    """The mirror and the image ids.  Used from the refresh timer only."""

    def __init__(self) -> None:
        self.mirror = np.zeros((0, 0), np.uint32)
        self.unique = 0

    def resize(self, width: int, height: int) -> None:
        self.mirror = np.zeros((height, width), np.uint32)

    def diff(self, frame: np.ndarray) -> list[Q.Command]:
        """Commands bringing the server's picture up to ``frame``."""
        if frame.shape != self.mirror.shape:
            return []
        height, width = frame.shape
        blocks = (width + BLOCK - 1) // BLOCK
        out = np.empty((blocks * (height // 2 + 2), 4), np.int32)
        n = dirty_runs(frame, self.mirror, out)
        mm_time = int(time.monotonic() * 1000) & 0xFFFFFFFF
        commands = []
        for top, left, bottom, right in out[:n].tolist():
            self.mirror[top:bottom, left:right] = frame[top:bottom, left:right]
            commands.append(self._copy_command(top, left, bottom, right, mm_time))
        return commands

    def _copy_command(self, top: int, left: int, bottom: int, right: int,
                      mm_time: int) -> Q.Command:
        bw, bh = right - left, bottom - top
        pixels = np.ascontiguousarray(self.mirror[top:bottom, left:right])
        unique = self.unique
        self.unique = (self.unique + 1) & 0xFFFFFFFF
        image = Q.BitmapImage(
            Q.ImageDescriptor((unique << 32) | Q.QXL_IMAGE_GROUP_DEVICE,
                              Q.SPICE_IMAGE_TYPE_BITMAP, 0, bw, bh),
            Q.SPICE_BITMAP_FMT_32BIT, Q.QXL_BITMAP_DIRECT | Q.QXL_BITMAP_TOP_DOWN,
            bw, bh, bw * 4, None, pixels.view(np.uint8).reshape(-1))
        drawable = Q.Drawable(
            surface_id=0, effect=Q.QXL_EFFECT_OPAQUE, type=Q.QXL_DRAW_COPY, self_bitmap=0,
            self_bitmap_area=_NO_RECT, bbox=Q.Rect(top, left, bottom, right), clip=None,
            mm_time=mm_time, surfaces_dest=(-1, -1, -1),
            surfaces_rects=(_NO_RECT, _NO_RECT, _NO_RECT),
            u=Q.Copy(image, Q.Rect(0, 0, bh, bw), Q.SPICE_ROPD_OP_PUT, 0, Q.NO_MASK))
        return Q.Command(Q.QXL_CMD_DRAW, 0, L.MEMSLOT_GROUP_HOST, drawable,
                         HostRelease(unique))

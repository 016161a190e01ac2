"""A drawable as the display channel holds it, and what it covers.

A :class:`DrawableItem` is shared by the current tree
(:mod:`spice.current_tree`, which renders it lazily into the server's
canvas or culls it) and by every client pipe that queued it; the guest
gets its resource back (``release_resource``) when the last of them lets
go.

:func:`covers_destination` is the occlusion tree's notion of an opaque
draw.  spice-server trusts the guest's ``effect`` field; here a draw must
also be one whose result, everywhere in its area, does not depend on what
was there before (no mask, no ROP that reads the destination), so a guest
that marks a blend "opaque" cannot make the server drop drawing that still
shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from spice import qxl, region
from spice.qxl import BitmapImage, Command, Drawable, Rect

log = logging.getLogger(__name__)

NUM_DRAWABLES = 1000  # spice-server's drawable pool

_READS_DEST = (qxl.SPICE_ROPD_OP_OR | qxl.SPICE_ROPD_OP_AND | qxl.SPICE_ROPD_OP_XOR
               | qxl.SPICE_ROPD_OP_INVERS | qxl.SPICE_ROPD_INVERS_DEST)
_WRITES = qxl.SPICE_ROPD_OP_PUT | qxl.SPICE_ROPD_OP_BLACKNESS | qxl.SPICE_ROPD_OP_WHITENESS


def covers_destination(d: Drawable) -> bool:
    """Whether every pixel the draw touches ends up independent of the
    destination's previous value."""
    # (asked of every drawable: the rules are written out, not split into
    # helper calls)
    t = d.type
    u = d.u
    if t in (qxl.QXL_DRAW_FILL, qxl.QXL_DRAW_OPAQUE, qxl.QXL_DRAW_COPY):
        rop = u.rop_descriptor
        return bool(rop & _WRITES) and not rop & _READS_DEST and u.mask.bitmap is None
    if t in (qxl.QXL_DRAW_BLACKNESS, qxl.QXL_DRAW_WHITENESS):
        return u.mask.bitmap is None
    if t == qxl.QXL_DRAW_ROP3:
        # a ternary ROP ignores the destination when flipping its bit (0xAA)
        # never changes the result
        return ((u.rop3 >> 1) & 0x55) == (u.rop3 & 0x55) and u.mask.bitmap is None
    return t == qxl.QXL_COPY_BITS


def drawable_region(d: Drawable) -> np.ndarray:
    """The pixels a drawable may touch: its bbox, clipped."""
    b = d.bbox
    box = region.rect(b.top, b.left, b.bottom, b.right)
    if d.clip is None:
        return box
    return region.intersect(box, region.from_rects(d.clip))


class DrawableItem:
    """One QXL_CMD_DRAW held by the server."""

    __slots__ = ("cmd", "drawable", "surface_id", "deps", "area", "region", "opaque",
                 "self_image", "refs", "_release", "released", "rendered", "culled",
                 "mm_time", "seq", "vis", "vis_ext", "shadows", "pipe_items", "graduality",
                 "stream", "frames_count", "gradual_frames_count", "last_gradual_frame",
                 "first_frame_time", "creation_time", "streamable", "generation")

    def __init__(self, cmd: Command, drawable: Drawable, area: Rect,
                 release: Callable[[Command], None], rgn: np.ndarray | None = None) -> None:
        self.cmd = cmd
        self.drawable = drawable
        self.surface_id = drawable.surface_id
        dests = drawable.surfaces_dest
        self.deps = () if dests == qxl.NO_DEPS else tuple(s for s in dests if s != -1)
        self.area = area  # bbox clipped to the clip rectangles' extent
        if rgn is None:
            rgn = drawable_region(drawable)
        self.region = rgn
        self.opaque = (drawable.effect == qxl.QXL_EFFECT_OPAQUE
                       and covers_destination(drawable))
        self.self_image: BitmapImage | None = None
        self.refs = 1
        self._release = release
        self.released = False
        self.rendered = False
        self.culled = False
        self.mm_time = drawable.mm_time
        self.seq = 0  # command order, set by the current tree
        self.vis = rgn  # what later opaque draws have not covered yet
        self.vis_ext = region.extents(rgn)
        self.shadows: list = []  # areas this pending drawable reads (current_tree)
        self.pipe_items: list = []  # (client, pipe item) still able to be unqueued
        self.graduality: int | None = None  # of the DRAW_COPY source, once computed
        self.stream = None  # the video stream this drawable is a frame of
        self.streamable = False
        self.frames_count = 0
        self.gradual_frames_count = 0
        self.last_gradual_frame = 0
        self.first_frame_time = 0
        self.creation_time = 0
        self.generation = 0  # the worker round that pulled it

    def ref(self) -> DrawableItem:
        self.refs += 1
        return self

    def unref(self) -> None:
        self.refs -= 1
        if self.refs == 0 and not self.released:
            self.released = True
            self._release(self.cmd)

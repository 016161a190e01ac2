"""The typed commands the QXL device hands to the server, and (re-exported
from :mod:`spice.qxl_constants`) the spice-protocol constants they carry.

The dataclasses are the *validated, host-side* form of guest commands: the
QXL device (devices/qxl) reads a command out of guest memory once, checks
every pointer, size and chunk chain, and builds these objects; the server
never touches guest addresses.  Pixel data is exposed as numpy views of
guest memory where it is contiguous, and as one gathered copy where the
guest split it into chunks.

Rectangles use the QXL/SPICE field order (top, left, bottom, right);
bottom/right are exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

# Every constant is part of this module's interface: callers write
# ``from spice import qxl`` and ``qxl.QXL_CMD_DRAW``.
from spice.qxl_constants import *  # noqa: F403
from spice.qxl_constants import QXL_BITMAP_TOP_DOWN

# -- geometry -----------------------------------------------------------------


class Rect(NamedTuple):
    top: int
    left: int
    bottom: int
    right: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def is_empty(self) -> bool:
        return self.right <= self.left or self.bottom <= self.top


class Point(NamedTuple):
    x: int
    y: int


# -- images -------------------------------------------------------------------


@dataclass(slots=True)
class ImageDescriptor:
    id: int  # (unique << 32) | group
    type: int  # SPICE_IMAGE_TYPE_*
    flags: int  # QXL_IMAGE_* (CACHE, HIGH_BITS_SET)
    width: int
    height: int


@dataclass(slots=True)
class Palette:
    unique: int
    ents: np.ndarray  # uint32 xRGB, len = num_ents (16-bit COMPAT entries already expanded)


@dataclass(slots=True)
class BitmapImage:
    """An uncompressed bitmap.  ``data`` holds ``y * stride`` bytes exactly as
    the guest laid them out; row 0 in memory is the top row when
    ``flags & QXL_BITMAP_TOP_DOWN``, else the bottom row."""

    descriptor: ImageDescriptor
    format: int  # SPICE_BITMAP_FMT_*
    flags: int  # QXL_BITMAP_* (DIRECT, UNSTABLE, TOP_DOWN)
    x: int  # width in pixels
    y: int  # height in pixels
    stride: int
    palette: Palette | None
    data: np.ndarray  # uint8, y * stride bytes

    @property
    def top_down(self) -> bool:
        return bool(self.flags & QXL_BITMAP_TOP_DOWN)


@dataclass(slots=True)
class QuicImage:
    """A guest-compressed QUIC image; ``data`` is the QUIC stream."""

    descriptor: ImageDescriptor
    data: np.ndarray  # uint8


@dataclass(slots=True)
class SurfaceImage:
    """Another surface used as the source image."""

    descriptor: ImageDescriptor
    surface_id: int


Image = BitmapImage | QuicImage | SurfaceImage


@dataclass(slots=True)
class Brush:
    type: int  # SPICE_BRUSH_TYPE_*
    color: int = 0  # SOLID: pixel value in the destination surface's format
    pattern: Image | None = None  # PATTERN
    pos: Point = Point(0, 0)  # PATTERN origin


@dataclass(slots=True)
class QMask:
    flags: int  # SPICE_MASK_FLAGS_INVERS
    pos: Point
    bitmap: Image | None  # None = no mask


NO_MASK = QMask(0, Point(0, 0), None)
NO_DEPS = (-1, -1, -1)  # Drawable.surfaces_dest of a draw that reads no other surface


# -- draw payloads (QXLDrawable.u) ---------------------------------------------


@dataclass(slots=True)
class Fill:
    brush: Brush
    rop_descriptor: int
    mask: QMask


@dataclass(slots=True)
class Opaque:
    src_bitmap: Image
    src_area: Rect
    brush: Brush
    rop_descriptor: int
    scale_mode: int
    mask: QMask


@dataclass(slots=True)
class Copy:
    src_bitmap: Image
    src_area: Rect
    rop_descriptor: int
    scale_mode: int
    mask: QMask


@dataclass(slots=True)
class Blend(Copy):
    pass


@dataclass(slots=True)
class Transparent:
    src_bitmap: Image
    src_area: Rect
    src_color: int
    true_color: int


@dataclass(slots=True)
class AlphaBlend:
    alpha_flags: int  # SPICE_ALPHA_FLAGS_*
    alpha: int
    src_bitmap: Image
    src_area: Rect


@dataclass(slots=True)
class CopyBits:
    src_pos: Point


@dataclass(slots=True)
class Rop3:
    src_bitmap: Image
    src_area: Rect
    brush: Brush
    rop3: int
    scale_mode: int
    mask: QMask


@dataclass(slots=True)
class PathSeg:
    flags: int  # QXL_PATH_*
    points: np.ndarray  # int32 (n, 2): x, y in 28.4 fixed point


@dataclass(slots=True)
class LineAttr:
    flags: int  # SPICE_LINE_FLAGS_*
    style: np.ndarray | None  # int32 28.4 dash lengths when STYLED


@dataclass(slots=True)
class Stroke:
    path: list[PathSeg]
    attr: LineAttr
    brush: Brush
    fore_mode: int  # rop descriptor
    back_mode: int


@dataclass(slots=True)
class RasterGlyph:
    render_pos: Point
    glyph_origin: Point
    width: int
    height: int
    data: np.ndarray  # uint8, rows of ceil(width * bpp / 8) bytes


@dataclass(slots=True)
class GlyphString:
    flags: int  # SPICE_STRING_FLAGS_* (raster bpp and TOP_DOWN)
    glyphs: list[RasterGlyph]


@dataclass(slots=True)
class Text:
    string: GlyphString
    back_area: Rect
    fore_brush: Brush
    back_brush: Brush
    fore_mode: int
    back_mode: int


@dataclass(slots=True)
class Blackness:
    mask: QMask


@dataclass(slots=True)
class Whiteness:
    mask: QMask


@dataclass(slots=True)
class Invers:
    mask: QMask


@dataclass(slots=True)
class Transform:
    """A 2x3 matrix of 16.16 fixed-point values (pixman convention)."""

    t00: int
    t01: int
    t02: int
    t10: int
    t11: int
    t12: int


@dataclass(slots=True)
class Composite:
    flags: int  # operator, filters, repeats, component alpha (COMPOSITE_*)
    src: Image
    src_transform: Transform | None
    mask: Image | None
    mask_transform: Transform | None
    src_origin: Point
    mask_origin: Point


DrawPayload = (Fill | Opaque | Copy | Blend | Transparent | AlphaBlend | CopyBits | Rop3
               | Stroke | Text | Blackness | Whiteness | Invers | Composite | None)


@dataclass(slots=True)
class Drawable:
    """A QXL_CMD_DRAW.  ``clip`` is None for no clipping, else an int32 array
    of shape (n, 4) of (top, left, bottom, right) rectangles (n may be 0:
    nothing is drawn).  ``surfaces_dest[i] == -1`` means unused."""

    surface_id: int
    effect: int
    type: int  # QXL_DRAW_*
    self_bitmap: int
    self_bitmap_area: Rect
    bbox: Rect
    clip: np.ndarray | None
    mm_time: int
    surfaces_dest: tuple[int, int, int]
    surfaces_rects: tuple[Rect, Rect, Rect]
    u: DrawPayload


@dataclass(slots=True)
class UpdateCmd:
    area: Rect
    update_id: int
    surface_id: int


@dataclass(slots=True)
class Message:
    text: bytes


@dataclass(slots=True)
class SurfaceCmd:
    """QXL_CMD_SURFACE.  For CREATE, ``data`` views the whole
    ``height * abs(stride)`` block from its lowest address; with a negative
    stride the top row is the *last* row of the block."""

    surface_id: int
    type: int  # QXL_SURFACE_CMD_*
    flags: int
    format: int = 0  # SPICE_SURFACE_FMT_*
    width: int = 0
    height: int = 0
    stride: int = 0
    data: np.ndarray | None = None


@dataclass(slots=True)
class Cursor:
    unique: int
    type: int  # SPICE_CURSOR_TYPE_*
    width: int
    height: int
    hot_spot_x: int
    hot_spot_y: int
    data: np.ndarray  # uint8, the shape bytes (gathered)


@dataclass(slots=True)
class CursorCmd:
    type: int  # QXL_CURSOR_*
    position: Point = Point(0, 0)  # SET and MOVE
    visible: bool = True  # SET
    shape: Cursor | None = None  # SET
    trail_length: int = 0  # TRAIL
    trail_frequency: int = 0


CommandPayload = Drawable | UpdateCmd | Message | SurfaceCmd | CursorCmd


@dataclass(slots=True)
class Command:
    """One command popped from a ring.  ``release`` is an opaque token the
    server gives back through ``QXLInterface.release_resource`` when it no
    longer needs the command (and every view inside it)."""

    type: int  # QXL_CMD_*
    flags: int  # QXL_COMMAND_FLAG_*
    group_id: int
    payload: CommandPayload
    release: object = field(repr=False, default=None)


# -- surfaces and monitors ----------------------------------------------------


@dataclass(slots=True)
class SurfaceCreate:
    """The primary surface (QXLSurfaceCreate, translated).  ``data`` views
    the whole ``height * abs(stride)`` block from its lowest address."""

    width: int
    height: int
    stride: int
    format: int
    position: int
    mouse_mode: int
    flags: int
    type: int
    data: np.ndarray


@dataclass(slots=True)
class Head:
    id: int
    surface_id: int
    width: int
    height: int
    x: int
    y: int
    flags: int


@dataclass(slots=True)
class MonitorsConfig:
    """QXLMonitorsConfig as read once from guest memory (count already
    clamped to max_allowed and the device's limit)."""

    max_allowed: int
    heads: list[Head]


@dataclass(slots=True)
class ClientMonitor:
    width: int
    height: int
    depth: int
    x: int
    y: int


@dataclass(slots=True)
class ClientMonitorsConfig:
    """VD_AGENT_MONITORS_CONFIG as sent by a client."""

    flags: int
    monitors: list[ClientMonitor]

"""QXL constants and the typed commands the device hands to the server.

The constants are those of spice-protocol's ``spice/qxl_dev.h`` and
``spice/enums.h``.  The dataclasses are the *validated, host-side* form of
guest commands: the QXL device (devices/qxl) reads a command out of guest
memory once, checks every pointer, size and chunk chain, and builds these
objects; the server never touches guest addresses.  Pixel data is exposed
as numpy views of guest memory where it is contiguous, and as one gathered
copy where the guest split it into chunks.

Rectangles use the QXL/SPICE field order (top, left, bottom, right);
bottom/right are exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

# -- I/O ports (BAR3 offsets) ------------------------------------------------
QXL_IO_NOTIFY_CMD = 0
QXL_IO_NOTIFY_CURSOR = 1
QXL_IO_UPDATE_AREA = 2
QXL_IO_UPDATE_IRQ = 3
QXL_IO_NOTIFY_OOM = 4
QXL_IO_RESET = 5
QXL_IO_SET_MODE = 6
QXL_IO_LOG = 7
QXL_IO_MEMSLOT_ADD = 8
QXL_IO_MEMSLOT_DEL = 9
QXL_IO_DETACH_PRIMARY = 10
QXL_IO_ATTACH_PRIMARY = 11
QXL_IO_CREATE_PRIMARY = 12
QXL_IO_DESTROY_PRIMARY = 13
QXL_IO_DESTROY_SURFACE_WAIT = 14
QXL_IO_DESTROY_ALL_SURFACES = 15
QXL_IO_UPDATE_AREA_ASYNC = 16
QXL_IO_MEMSLOT_ADD_ASYNC = 17
QXL_IO_CREATE_PRIMARY_ASYNC = 18
QXL_IO_DESTROY_PRIMARY_ASYNC = 19
QXL_IO_DESTROY_SURFACE_ASYNC = 20
QXL_IO_DESTROY_ALL_SURFACES_ASYNC = 21
QXL_IO_FLUSH_SURFACES_ASYNC = 22
QXL_IO_FLUSH_RELEASE = 23
QXL_IO_MONITORS_CONFIG_ASYNC = 24
QXL_IO_RANGE_SIZE = 25

# -- interrupts ---------------------------------------------------------------
QXL_INTERRUPT_DISPLAY = 1 << 0
QXL_INTERRUPT_CURSOR = 1 << 1
QXL_INTERRUPT_IO_CMD = 1 << 2
QXL_INTERRUPT_ERROR = 1 << 3
QXL_INTERRUPT_CLIENT = 1 << 4
QXL_INTERRUPT_CLIENT_MONITORS_CONFIG = 1 << 5

QXL_ROM_MAGIC = 0x4F525851  # "QXRO"
QXL_RAM_MAGIC = 0x41525851  # "QXRA"

# -- commands -----------------------------------------------------------------
QXL_CMD_NOP = 0
QXL_CMD_DRAW = 1
QXL_CMD_UPDATE = 2
QXL_CMD_CURSOR = 3
QXL_CMD_MESSAGE = 4
QXL_CMD_SURFACE = 5

QXL_COMMAND_FLAG_COMPAT = 1
QXL_COMMAND_FLAG_COMPAT_16BPP = 2

QXL_DRAW_NOP = 0
QXL_DRAW_FILL = 1
QXL_DRAW_OPAQUE = 2
QXL_DRAW_COPY = 3
QXL_COPY_BITS = 4
QXL_DRAW_BLEND = 5
QXL_DRAW_BLACKNESS = 6
QXL_DRAW_WHITENESS = 7
QXL_DRAW_INVERS = 8
QXL_DRAW_ROP3 = 9
QXL_DRAW_STROKE = 10
QXL_DRAW_TEXT = 11
QXL_DRAW_TRANSPARENT = 12
QXL_DRAW_ALPHA_BLEND = 13
QXL_DRAW_COMPOSITE = 14

QXL_EFFECT_BLEND = 0
QXL_EFFECT_OPAQUE = 1
QXL_EFFECT_REVERT_ON_DUP = 2
QXL_EFFECT_BLACKNESS_ON_DUP = 3
QXL_EFFECT_WHITENESS_ON_DUP = 4
QXL_EFFECT_NOP_ON_DUP = 5
QXL_EFFECT_NOP = 6
QXL_EFFECT_OPAQUE_BRUSH = 7

QXL_SURFACE_CMD_CREATE = 0
QXL_SURFACE_CMD_DESTROY = 1
QXL_SURF_TYPE_PRIMARY = 0
QXL_SURF_FLAG_KEEP_DATA = 1

QXL_CURSOR_SET = 0
QXL_CURSOR_MOVE = 1
QXL_CURSOR_HIDE = 2
QXL_CURSOR_TRAIL = 3

QXL_IMAGE_GROUP_DRIVER = 0
QXL_IMAGE_GROUP_DEVICE = 1
QXL_IMAGE_GROUP_RED = 2
QXL_IMAGE_GROUP_DRIVER_DONT_CACHE = 3
QXL_IMAGE_CACHE = 1
QXL_IMAGE_HIGH_BITS_SET = 2
QXL_BITMAP_DIRECT = 1
QXL_BITMAP_UNSTABLE = 2
QXL_BITMAP_TOP_DOWN = 4

QXL_PATH_BEGIN = 1 << 0
QXL_PATH_END = 1 << 1
QXL_PATH_CLOSE = 1 << 3
QXL_PATH_BEZIER = 1 << 4

# -- spice/enums.h values the commands carry ---------------------------------
SPICE_CLIP_TYPE_NONE = 0
SPICE_CLIP_TYPE_RECTS = 1

SPICE_BRUSH_TYPE_NONE = 0
SPICE_BRUSH_TYPE_SOLID = 1
SPICE_BRUSH_TYPE_PATTERN = 2

SPICE_MASK_FLAGS_INVERS = 1

SPICE_IMAGE_TYPE_BITMAP = 0
SPICE_IMAGE_TYPE_QUIC = 1
SPICE_IMAGE_TYPE_LZ_PLT = 100
SPICE_IMAGE_TYPE_LZ_RGB = 101
SPICE_IMAGE_TYPE_GLZ_RGB = 102
SPICE_IMAGE_TYPE_FROM_CACHE = 103
SPICE_IMAGE_TYPE_SURFACE = 104
SPICE_IMAGE_TYPE_JPEG = 105
SPICE_IMAGE_TYPE_FROM_CACHE_LOSSLESS = 106
SPICE_IMAGE_TYPE_ZLIB_GLZ_RGB = 107
SPICE_IMAGE_TYPE_JPEG_ALPHA = 108
SPICE_IMAGE_TYPE_LZ4 = 109

SPICE_BITMAP_FMT_INVALID = 0
SPICE_BITMAP_FMT_1BIT_LE = 1
SPICE_BITMAP_FMT_1BIT_BE = 2
SPICE_BITMAP_FMT_4BIT_LE = 3
SPICE_BITMAP_FMT_4BIT_BE = 4
SPICE_BITMAP_FMT_8BIT = 5
SPICE_BITMAP_FMT_16BIT = 6
SPICE_BITMAP_FMT_24BIT = 7
SPICE_BITMAP_FMT_32BIT = 8
SPICE_BITMAP_FMT_RGBA = 9
SPICE_BITMAP_FMT_8BIT_A = 10

# Bits per pixel of each bitmap format (index = format).
BITMAP_FMT_BPP = (0, 1, 1, 4, 4, 8, 16, 24, 32, 32, 8)
# Formats whose pixels are palette indices.
BITMAP_FMT_HAS_PALETTE = frozenset({1, 2, 3, 4, 5})

SPICE_BITMAP_FLAGS_PAL_CACHE_ME = 1
SPICE_BITMAP_FLAGS_PAL_FROM_CACHE = 2
SPICE_BITMAP_FLAGS_TOP_DOWN = 4

SPICE_IMAGE_FLAGS_CACHE_ME = 1
SPICE_IMAGE_FLAGS_HIGH_BITS_SET = 2
SPICE_IMAGE_FLAGS_CACHE_REPLACE_ME = 4

SPICE_IMAGE_SCALE_MODE_INTERPOLATE = 0
SPICE_IMAGE_SCALE_MODE_NEAREST = 1

SPICE_ROPD_INVERS_SRC = 1 << 0
SPICE_ROPD_INVERS_BRUSH = 1 << 1
SPICE_ROPD_INVERS_DEST = 1 << 2
SPICE_ROPD_OP_PUT = 1 << 3
SPICE_ROPD_OP_OR = 1 << 4
SPICE_ROPD_OP_AND = 1 << 5
SPICE_ROPD_OP_XOR = 1 << 6
SPICE_ROPD_OP_BLACKNESS = 1 << 7
SPICE_ROPD_OP_WHITENESS = 1 << 8
SPICE_ROPD_OP_INVERS = 1 << 9
SPICE_ROPD_INVERS_RES = 1 << 10

SPICE_LINE_FLAGS_START_WITH_GAP = 1 << 2
SPICE_LINE_FLAGS_STYLED = 1 << 3

SPICE_STRING_FLAGS_RASTER_A1 = 1 << 0
SPICE_STRING_FLAGS_RASTER_A4 = 1 << 1
SPICE_STRING_FLAGS_RASTER_A8 = 1 << 2
SPICE_STRING_FLAGS_RASTER_TOP_DOWN = 1 << 3

SPICE_ALPHA_FLAGS_DEST_HAS_ALPHA = 1 << 0
SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA = 1 << 1

SPICE_SURFACE_FMT_INVALID = 0
SPICE_SURFACE_FMT_1_A = 1
SPICE_SURFACE_FMT_8_A = 8
SPICE_SURFACE_FMT_16_555 = 16
SPICE_SURFACE_FMT_32_xRGB = 32
SPICE_SURFACE_FMT_16_565 = 80
SPICE_SURFACE_FMT_32_ARGB = 96
# Bits per pixel of a surface format (the low bits of the enum value).
SURFACE_FMT_BPP = {1: 1, 8: 8, 16: 16, 32: 32, 80: 16, 96: 32}

SPICE_CURSOR_TYPE_ALPHA = 0
SPICE_CURSOR_TYPE_MONO = 1
SPICE_CURSOR_TYPE_COLOR4 = 2
SPICE_CURSOR_TYPE_COLOR8 = 3
SPICE_CURSOR_TYPE_COLOR16 = 4
SPICE_CURSOR_TYPE_COLOR24 = 5
SPICE_CURSOR_TYPE_COLOR32 = 6

# Composite flags layout (QXLComposite.flags).
COMPOSITE_OP_MASK = 0xFF
COMPOSITE_SRC_FILTER_SHIFT = 8
COMPOSITE_MASK_FILTER_SHIFT = 11
COMPOSITE_SRC_REPEAT_SHIFT = 14
COMPOSITE_MASK_REPEAT_SHIFT = 16
COMPOSITE_COMPONENT_ALPHA = 1 << 18


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

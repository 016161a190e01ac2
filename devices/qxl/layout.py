"""Byte layouts of the QXL device: ROM, RAM header, rings and every guest
structure the device reads, as packed little-endian numpy dtypes.

The layouts are those of spice-protocol's ``spice/qxl_dev.h`` and
``spice/ipc_ring.h`` (all structures packed).  The sizes are asserted at
import time against the sizes the C headers give, so a typo here fails
loudly instead of misreading guest memory.

Also here: the mode list the ROM offers (QEMU's table), and the CRC the
ROM's client monitors config carries.
"""

from __future__ import annotations

import zlib
from enum import IntEnum

import numpy as np

U8, U16, U32, U64 = "<u1", "<u2", "<u4", "<u8"
I16, I32 = "<i2", "<i4"

PAGE_SIZE = 4096
NUM_MEMSLOTS = 8
MEMSLOT_GENERATION_BITS = 8
MEMSLOT_SLOT_BITS = 8
MEMSLOT_GROUP_HOST = 0
MEMSLOT_GROUP_GUEST = 1

COMMAND_RING_SIZE = 32
CURSOR_RING_SIZE = 32
RELEASE_RING_SIZE = 8
LOG_BUF_SIZE = 4096
ROM_SIZE = 8192
CLIENT_CAPS_SIZE = 58
CLIENT_MONITORS_MAX = 64

# spice-server's limits on chunked data (red-parse-qxl.cpp).
MAX_DATA_CHUNK = 0x7FFFFFFF



class QXLMode(IntEnum):
    """What the device is showing: nothing, the legacy VGA/VBE framebuffer,
    a qxl-1 SET_MODE primary, or a primary the driver created."""

    UNDEFINED = 0
    VGA = 1
    COMPAT = 2
    NATIVE = 3


# --------------------------------------------------------------------------
# geometry

RECT = np.dtype([("top", I32), ("left", I32), ("bottom", I32), ("right", I32)])
URECT = np.dtype([("top", U32), ("left", U32), ("bottom", U32), ("right", U32)])
POINT = np.dtype([("x", I32), ("y", I32)])
POINT16 = np.dtype([("x", I16), ("y", I16)])

# --------------------------------------------------------------------------
# ROM (BAR2)

CLIENT_MONITORS_CONFIG = np.dtype([
    ("count", U16),
    ("padding", U16),
    ("heads", URECT, (CLIENT_MONITORS_MAX,)),
])

ROM = np.dtype([
    ("magic", U32),
    ("id", U32),
    ("update_id", U32),
    ("compression_level", U32),
    ("log_level", U32),
    ("mode", U32),
    ("modes_offset", U32),
    ("num_pages", U32),
    ("pages_offset", U32),
    ("draw_area_offset", U32),
    ("surface0_area_size", U32),
    ("ram_header_offset", U32),
    ("mm_clock", U32),
    ("n_surfaces", U32),
    ("flags", U64),
    ("slots_start", U8),
    ("slots_end", U8),
    ("slot_gen_bits", U8),
    ("slot_id_bits", U8),
    ("slot_generation", U8),
    ("client_present", U8),
    ("client_capabilities", U8, (CLIENT_CAPS_SIZE,)),
    ("client_monitors_config_crc", U32),
    ("client_monitors_config", CLIENT_MONITORS_CONFIG),
])

MODE = np.dtype([
    ("id", U32),
    ("x_res", U32),
    ("y_res", U32),
    ("bits", U32),
    ("stride", U32),
    ("x_mili", U32),
    ("y_mili", U32),
    ("orientation", U32),
])

# --------------------------------------------------------------------------
# RAM header (end of BAR0) and its rings


def _pow2_align(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


def ring_dtype(element: np.dtype, size: int) -> np.dtype:
    """SPICE_RING_DECLARE: a header of five u32 then ``size`` (rounded up to a
    power of two) items, each padded to a power-of-two size."""
    item = np.dtype({"names": ["el"], "formats": [element],
                     "itemsize": _pow2_align(element.itemsize)})
    return np.dtype([
        ("num_items", U32),
        ("prod", U32),
        ("notify_on_prod", U32),
        ("cons", U32),
        ("notify_on_cons", U32),
        ("items", item, (_pow2_align(size),)),
    ])


RING_HEADER_SIZE = 20  # the five u32 before the items

COMMAND = np.dtype([("data", U64), ("type", U32), ("padding", U32)])
COMMAND_RING = ring_dtype(COMMAND, COMMAND_RING_SIZE)
CURSOR_RING = ring_dtype(COMMAND, CURSOR_RING_SIZE)
RELEASE_RING = ring_dtype(np.dtype(U64), RELEASE_RING_SIZE)

MEM_SLOT = np.dtype([("mem_start", U64), ("mem_end", U64)])

SURFACE_CREATE = np.dtype([
    ("width", U32),
    ("height", U32),
    ("stride", I32),
    ("format", U32),
    ("position", U32),
    ("mouse_mode", U32),
    ("flags", U32),
    ("type", U32),
    ("mem", U64),
])

RAM = np.dtype([
    ("magic", U32),
    ("int_pending", U32),
    ("int_mask", U32),
    ("log_buf", U8, (LOG_BUF_SIZE,)),
    ("cmd_ring", COMMAND_RING),
    ("cursor_ring", CURSOR_RING),
    ("release_ring", RELEASE_RING),
    ("update_area", RECT),
    ("update_surface", U32),
    ("mem_slot", MEM_SLOT),
    ("create_surface", SURFACE_CREATE),
    ("flags", U64),
    ("monitors_config", U64),
])

RAM_HEADER_SIZE = (RAM.itemsize + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE

# --------------------------------------------------------------------------
# guest resources (every one starts with a QXLReleaseInfo u64)

DATA_CHUNK = np.dtype([("data_size", U32), ("prev_chunk", U64), ("next_chunk", U64)])

CLIP = np.dtype([("type", U32), ("data", U64)])
PATTERN = np.dtype([("pat", U64), ("pos", POINT)])
BRUSH = np.dtype({"names": ["type", "color", "pattern"],
                  "formats": [U32, U32, PATTERN],
                  "offsets": [0, 4, 4], "itemsize": 20})
QMASK = np.dtype([("flags", U8), ("pos", POINT), ("bitmap", U64)])

FILL = np.dtype([("brush", BRUSH), ("rop_descriptor", U16), ("mask", QMASK)])
OPAQUE = np.dtype([("src_bitmap", U64), ("src_area", RECT), ("brush", BRUSH),
                   ("rop_descriptor", U16), ("scale_mode", U8), ("mask", QMASK)])
COPY = np.dtype([("src_bitmap", U64), ("src_area", RECT), ("rop_descriptor", U16),
                 ("scale_mode", U8), ("mask", QMASK)])
TRANSPARENT = np.dtype([("src_bitmap", U64), ("src_area", RECT), ("src_color", U32),
                        ("true_color", U32)])
ALPHA_BLEND = np.dtype([("alpha_flags", U16), ("alpha", U8), ("src_bitmap", U64),
                        ("src_area", RECT)])
COMPAT_ALPHA_BLEND = np.dtype([("alpha", U8), ("src_bitmap", U64), ("src_area", RECT)])
COPY_BITS = np.dtype([("src_pos", POINT)])
ROP3 = np.dtype([("src_bitmap", U64), ("src_area", RECT), ("brush", BRUSH), ("rop3", U8),
                 ("scale_mode", U8), ("mask", QMASK)])
LINE_ATTR = np.dtype([("flags", U8), ("join_style", U8), ("end_style", U8),
                      ("style_nseg", U8), ("width", I32), ("miter_limit", I32),
                      ("style", U64)])
STROKE = np.dtype([("path", U64), ("attr", LINE_ATTR), ("brush", BRUSH),
                   ("fore_mode", U16), ("back_mode", U16)])
TEXT = np.dtype([("str", U64), ("back_area", RECT), ("fore_brush", BRUSH),
                 ("back_brush", BRUSH), ("fore_mode", U16), ("back_mode", U16)])
MASK_ONLY = np.dtype([("mask", QMASK)])  # blackness, whiteness, invers
COMPOSITE = np.dtype([("flags", U32), ("src", U64), ("src_transform", U64), ("mask", U64),
                      ("mask_transform", U64), ("src_origin", POINT16),
                      ("mask_origin", POINT16)])
TRANSFORM = np.dtype([("t00", I32), ("t01", I32), ("t02", I32),
                      ("t10", I32), ("t11", I32), ("t12", I32)])

DRAW_UNION_SIZE = max(d.itemsize for d in (FILL, OPAQUE, COPY, TRANSPARENT, ALPHA_BLEND,
                                           COPY_BITS, ROP3, STROKE, TEXT, MASK_ONLY,
                                           COMPOSITE))

DRAWABLE_HEAD = np.dtype([
    ("release_info", U64),
    ("surface_id", U32),
    ("effect", U8),
    ("type", U8),
    ("self_bitmap", U8),
    ("self_bitmap_area", RECT),
    ("bbox", RECT),
    ("clip", CLIP),
    ("mm_time", U32),
    ("surfaces_dest", I32, (3,)),
    ("surfaces_rects", RECT, (3,)),
])
DRAWABLE_SIZE = DRAWABLE_HEAD.itemsize + DRAW_UNION_SIZE

COMPAT_DRAWABLE_HEAD = np.dtype([
    ("release_info", U64),
    ("effect", U8),
    ("type", U8),
    ("bitmap_offset", U16),
    ("bitmap_area", RECT),
    ("bbox", RECT),
    ("clip", CLIP),
    ("mm_time", U32),
])
COMPAT_DRAWABLE_SIZE = COMPAT_DRAWABLE_HEAD.itemsize + DRAW_UNION_SIZE

CLIP_RECTS = np.dtype([("num_rects", U32), ("chunk", DATA_CHUNK)])
PATH = np.dtype([("data_size", U32), ("chunk", DATA_CHUNK)])
PATH_SEG_HEAD = np.dtype([("flags", U32), ("count", U32)])
STRING = np.dtype([("data_size", U32), ("length", U16), ("flags", U16),
                   ("chunk", DATA_CHUNK)])
RASTER_GLYPH_HEAD = np.dtype([("render_pos", POINT), ("glyph_origin", POINT),
                              ("width", U16), ("height", U16)])

IMAGE_DESCRIPTOR = np.dtype([("id", U64), ("type", U8), ("flags", U8), ("width", U32),
                             ("height", U32)])
BITMAP = np.dtype([("format", U8), ("flags", U8), ("x", U32), ("y", U32), ("stride", U32),
                   ("palette", U64), ("data", U64)])
# QXLImage is the descriptor plus a union of bitmap (30 bytes), quic data size
# (4 bytes, the first QXLDataChunk follows) and surface id (4 bytes).
IMAGE = np.dtype({"names": ["descriptor", "bitmap", "quic_data_size", "quic_chunk",
                            "surface_id"],
                  "formats": [IMAGE_DESCRIPTOR, BITMAP, U32, DATA_CHUNK, U32],
                  "offsets": [0, 18, 18, 22, 18],
                  "itemsize": 18 + BITMAP.itemsize})
IMAGE_QUIC_DATA_OFFSET = 22 + DATA_CHUNK.itemsize
PALETTE_HEAD = np.dtype([("unique", U64), ("num_ents", U16)])

CURSOR_HEADER = np.dtype([("unique", U64), ("type", U16), ("width", U16), ("height", U16),
                          ("hot_spot_x", U16), ("hot_spot_y", U16)])
CURSOR = np.dtype([("header", CURSOR_HEADER), ("data_size", U32), ("chunk", DATA_CHUNK)])
CURSOR_CMD = np.dtype({
    "names": ["release_info", "type", "set_position", "set_visible", "set_shape",
              "trail_length", "trail_frequency", "position"],
    "formats": [U64, U8, POINT16, U8, U64, U16, U16, POINT16],
    "offsets": [0, 8, 9, 13, 14, 9, 11, 9],
    "itemsize": 8 + 1 + 13 + 128,
})

SURFACE = np.dtype([("format", U32), ("width", U32), ("height", U32), ("stride", I32),
                    ("data", U64)])
SURFACE_CMD = np.dtype([("release_info", U64), ("surface_id", U32), ("type", U8),
                        ("flags", U32), ("surface_create", SURFACE)])
UPDATE_CMD = np.dtype([("release_info", U64), ("area", RECT), ("update_id", U32),
                       ("surface_id", U32)])
MESSAGE_HEAD = np.dtype([("release_info", U64)])

HEAD = np.dtype([("id", U32), ("surface_id", U32), ("width", U32), ("height", U32),
                 ("x", U32), ("y", U32), ("flags", U32)])
MONITORS_CONFIG_HEAD = np.dtype([("count", U16), ("max_allowed", U16)])

# The C header sizes (computed from the packed spice-protocol structs).
_EXPECTED = {
    "ROM": (ROM, 1160), "MODE": (MODE, 32), "RAM": (RAM, 5348),
    "COMMAND_RING": (COMMAND_RING, 532), "RELEASE_RING": (RELEASE_RING, 84),
    "SURFACE_CREATE": (SURFACE_CREATE, 40), "DATA_CHUNK": (DATA_CHUNK, 20),
    "BRUSH": (BRUSH, 20), "QMASK": (QMASK, 17), "STROKE": (STROKE, 52), "TEXT": (TEXT, 68),
    "DRAWABLE_HEAD": (DRAWABLE_HEAD, 123), "COMPAT_DRAWABLE_HEAD": (COMPAT_DRAWABLE_HEAD, 60),
    "IMAGE": (IMAGE, 48), "CURSOR": (CURSOR, 42), "CURSOR_CMD": (CURSOR_CMD, 150),
    "SURFACE_CMD": (SURFACE_CMD, 41), "UPDATE_CMD": (UPDATE_CMD, 32), "HEAD": (HEAD, 28),
    "COMPOSITE": (COMPOSITE, 44), "STRING": (STRING, 28), "CLIP_RECTS": (CLIP_RECTS, 24),
}
for _name, (_dt, _size) in _EXPECTED.items():
    if _dt.itemsize != _size:  # pragma: no cover - a layout typo
        raise AssertionError(f"{_name} is {_dt.itemsize} bytes, qxl_dev.h says {_size}")
if DRAWABLE_SIZE != 191 or COMPAT_DRAWABLE_SIZE != 128:  # pragma: no cover
    raise AssertionError("drawable sizes differ from qxl_dev.h")

OFF = {name: RAM.fields[name][1] for name in RAM.names}  # byte offsets inside QXLRam

# --------------------------------------------------------------------------
# modes offered in the ROM (QEMU's table: resolution x {16, 32} bpp x
# orientation {0, 1}; a mode is offered when y * stride fits in vgamem)

_RESOLUTIONS = (
    (640, 480), (800, 480), (800, 600), (832, 624), (960, 640), (1024, 600),
    (1024, 768), (1152, 864), (1152, 870), (1280, 720), (1280, 760), (1280, 768),
    (1280, 800), (1280, 960), (1280, 1024), (1360, 768), (1366, 768), (1400, 1050),
    (1440, 900), (1600, 900), (1600, 1200), (1680, 1050), (1920, 1080), (1920, 1200),
    (1920, 1440), (2000, 2000), (2048, 1536), (2048, 2048), (2560, 1440), (2560, 1600),
    (2560, 2048), (2800, 2100), (3200, 2400), (3840, 2160), (4096, 2160), (7680, 4320),
    (8192, 4320),
)
PIXEL_SIZE_MM = 0.2936875  # 1280x1024 is 14.8" x 11.9"


def all_modes() -> np.ndarray:
    """The unfiltered mode table; a mode's ``id`` is its index here."""
    rows = []
    for x, y in _RESOLUTIONS:
        for orientation in (0, 1):
            for bits in (16, 32):
                rows.append((len(rows), x, y, bits, x * bits // 8, int(PIXEL_SIZE_MM * x),
                             int(PIXEL_SIZE_MM * y), orientation))
    return np.array(rows, dtype=MODE)


def offered_modes(vgamem_size: int) -> np.ndarray:
    modes = all_modes()
    fits = modes["y_res"].astype(np.uint64) * modes["stride"] <= vgamem_size
    return modes[fits]


def monitors_config_crc(block: np.ndarray) -> int:
    """CRC-32 as Linux computes it (zlib's without the final inversions
    undone twice): seed 0xffffffff, no final xor."""
    return zlib.crc32(block.tobytes(), 0xFFFFFFFF) ^ 0xFFFFFFFF

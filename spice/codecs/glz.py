"""GLZ image encoder (SPICE_IMAGE_TYPE_GLZ_RGB, ZLIB_GLZ_RGB) and the
per-client dictionary it codes against.

A GLZ image may copy pixels from earlier images the client still holds.  The
client keeps every GLZ image it decodes in a window and frees the oldest
ones as each new image tells it where the window now starts, so the server
mirrors that window here: ``GlzDictionary``, one per client and dictionary
id (from the client's DISPLAY_INIT), shared by that client's display
channels.

Stream = 33-byte big-endian header, then the coded pixels (glz_kernels):

    u32 magic "  ZL"   u32 version 1.1
    u8  LZ image type | 0x10 when row 0 is the top row
    u32 width          u32 height         u32 stride (width * bytes per pixel)
    u64 image id       u32 window-head distance (id - oldest id still needed)

Retention: the dictionary *copies* each image's pixels into host memory
(4 bytes per pixel, at most ``window_size`` pixels live, memory committed as
the window fills), so the caller may release the guest's bitmap as soon as
``glz_encode`` returns; no guest memory is pinned by the client's window.

Delivery: ids are consecutive and the client frees its window only up to
the first id it has not received, so every byte string ``glz_encode``
returns must be sent to the client (in order on its channel).  Encode at
send time; never drop an encoded image.

Marshalling: GLZ_RGB carries SpiceLZRGBData (u32 data_size, the bytes).
ZLIB_GLZ_RGB carries SpiceZlibGlzRGBData: u32 glz_data_size (length of the
GLZ stream), u32 data_size (length of the zlib stream), the zlib stream.
"""

from __future__ import annotations

import struct
import threading
import zlib

import numpy as np

from spice.codecs.glz_kernels import glz_compress
from spice.codecs.lz_layout import (
    LZ_MAGIC,
    LZ_VERSION,
    LzImageType,
    check_size,
    header_stride,
    load_values,
    lz_type_for_format,
    passes_for,
)

GLZ_HEADER = struct.Struct(">IIBIIIQI")
GLZ_HEADER_SIZE = GLZ_HEADER.size  # 33
LZ_MAX_WINDOW_SIZE = 1 << 25  # pixels
GLZ_TYPES = frozenset({LzImageType.RGB16, LzImageType.RGB24, LzImageType.RGB32,
                       LzImageType.RGBA})
# Hash table: 2**HASH_BITS buckets of WAYS (position, id) pairs, a bucket per
# 64-byte cache line, keyed by enough pixels (GLZ_HASH_N, by bytes per literal
# pixel) that common short sequences do not crowd out the long matches into
# older images that GLZ is for.
HASH_BITS = 16
WAYS = 4
GLZ_HASH_N = {3: 6, 2: 8, 1: 16}
SIBLING_SEARCH = 64  # images looked back for one of the same width
MIN_GLZ_SIZE_FOR_ZLIB = 100
ZLIB_GLZ_LEVEL = 3


def _aligned_table(entries: int) -> np.ndarray:
    """int64 entries, all -1, starting on a 64-byte boundary so that each
    hash bucket is one cache line."""
    raw = np.full(entries + 8, -1, np.int64)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip : skip + entries]


class GlzDictionary:
    """The server's copy of one client's GLZ window.

    ``window_size``: the client's glz_dictionary_window_size in pixels (from
    SpiceMsgcDisplayInit), 1 .. 2**25.  ``first_image_id``: the id the next
    image gets (0 for a new client; a migrated client's last id).

    Thread-safe: encodes against one dictionary are serialised by its lock
    (the compression kernel itself runs without the GIL)."""

    def __init__(self, window_size: int, *, first_image_id: int = 0) -> None:
        if not 0 < window_size <= LZ_MAX_WINDOW_SIZE:
            raise ValueError(f"GLZ window of {window_size} pixels (1 .. {LZ_MAX_WINDOW_SIZE})")
        if not 0 <= first_image_id < 1 << 63:
            raise ValueError(f"bad first GLZ image id {first_image_id}")
        self._lock = threading.Lock()
        self._window_size = window_size
        self._next_id = first_image_id
        self._head_id = first_image_id  # oldest image still in the window
        self._window_pixels = 0  # pixels of images head .. next - 1
        self._tail = 0  # absolute ring position of the next image
        ring_size = 1 << (window_size - 1).bit_length()
        # np.empty leaves the pages uncommitted until the window reaches them.
        self._ring = np.empty(ring_size, np.uint32)
        self._meta_start = np.zeros(256, np.int64)
        self._meta_npix = np.zeros(256, np.int64)
        self._meta_type = np.zeros(256, np.int32)
        self._meta_width = np.zeros(256, np.int64)
        self._htab = _aligned_table((1 << HASH_BITS) * 2 * WAYS)

    @property
    def window_size(self) -> int:
        return self._window_size

    @property
    def next_image_id(self) -> int:
        """Id the next encoded image gets (what migration would carry over)."""
        with self._lock:
            return self._next_id

    @property
    def window_image_ids(self) -> range:
        """Ids of the images later ones may still reference."""
        with self._lock:
            return range(self._head_id, self._next_id)

    def reset(self) -> None:
        """Forget every image: later images reference none of them, and the
        next one tells the client it may free them all.  Ids keep counting
        (the client's window is keyed by id).  For INVAL_ALL-style resets;
        a new client connection gets a new dictionary instead."""
        with self._lock:
            self._head_id = self._next_id
            self._window_pixels = 0

    # -- used by glz_encode, under the lock --------------------------------------

    def _admit(self, width: int, lz_type: LzImageType,
               values: np.ndarray) -> tuple[int, int, int]:
        """Copy an image's pixel values into the window, evicting the oldest
        images FIFO until it fits, exactly as the client will.  Returns
        (image_id, head_id, ring start)."""
        npix = values.size
        while self._window_pixels + npix > self._window_size:
            self._window_pixels -= int(self._meta_npix[self._head_id & (self._meta_npix.size - 1)])
            self._head_id += 1
        image_id = self._next_id
        if image_id + 1 - self._head_id > self._meta_npix.size:
            self._grow_meta(image_id + 1 - self._head_id)
        slot = image_id & (self._meta_npix.size - 1)
        start = self._tail
        self._meta_start[slot] = start
        self._meta_npix[slot] = npix
        self._meta_type[slot] = int(lz_type)
        self._meta_width[slot] = width
        ring = self._ring
        first = start & (ring.size - 1)
        head_part = min(npix, ring.size - first)
        ring[first : first + head_part] = values[:head_part]
        ring[: npix - head_part] = values[head_part:]
        self._tail += npix
        self._window_pixels += npix
        self._next_id += 1
        return image_id, self._head_id, start

    def _sibling(self, image_id: int, width: int, lz_type: LzImageType) -> tuple[int, int]:
        """The newest earlier image of the same width and type, and the
        displacement from this image to it: a redraw of the same area
        matches there from its first pixel on (-1, 0 when there is none)."""
        mask = self._meta_npix.size - 1
        for other in range(image_id - 1, max(self._head_id, image_id - SIBLING_SEARCH) - 1, -1):
            slot = other & mask
            if self._meta_width[slot] == width and self._meta_type[slot] == lz_type:
                return other, int(self._meta_start[slot] - self._meta_start[image_id & mask])
        return -1, 0

    def _grow_meta(self, needed: int) -> None:
        size = self._meta_npix.size
        while size < needed:
            size *= 2
        ids = np.arange(self._head_id, self._next_id, dtype=np.int64)
        old_slots = ids & (self._meta_npix.size - 1)
        new_slots = ids & (size - 1)
        for name, dtype in (("_meta_start", np.int64), ("_meta_npix", np.int64),
                            ("_meta_type", np.int32), ("_meta_width", np.int64)):
            old = getattr(self, name)
            new = np.zeros(size, dtype)
            new[new_slots] = old[old_slots]
            setattr(self, name, new)


def glz_encode(dictionary: GlzDictionary, pixels: np.ndarray, width: int, height: int,
               stride: int, fmt: int, top_down: bool) -> bytes | None:
    """GLZ-encode a guest bitmap against ``dictionary`` and add it to the
    window.  Returns the GLZ stream, or None when the image has as many
    pixels as the window or more (send it as LZ instead, as spice-server
    does).  Arguments as ``lz_encode``; formats 16BIT, 24BIT, 32BIT, RGBA.
    Raises ValueError for bad input, leaving the dictionary untouched.
    Every stream returned must be sent to the client (module docstring).
    Thread-safe; the pixels are copied before it returns."""
    check_size(fmt, width, height)
    lz_type = lz_type_for_format(fmt)
    if lz_type not in GLZ_TYPES:
        raise ValueError(f"GLZ does not code bitmap format {fmt}")
    npix = width * height
    if npix >= dictionary.window_size:
        return None
    values = load_values(pixels, width, height, stride, lz_type)
    passes = passes_for(lz_type)
    out = np.empty(GLZ_HEADER_SIZE + sum(npix * (p.pb + 1) + 16 for p in passes), np.uint8)
    d = dictionary
    with d._lock:
        image_id, head_id, start = d._admit(width, lz_type, values)
        rep_id, rep_delta = d._sibling(image_id, width, lz_type)
        GLZ_HEADER.pack_into(out, 0, LZ_MAGIC, LZ_VERSION,
                             int(lz_type) | (0x10 if top_down else 0), width, height,
                             header_stride(lz_type, width), image_id, image_id - head_id)
        op = GLZ_HEADER_SIZE
        for p in passes:
            op = glz_compress(d._ring, d._ring.size - 1, start, npix, width, image_id,
                              head_id, int(lz_type), d._meta_start, d._meta_npix,
                              d._meta_type, d._meta_npix.size - 1, d._htab, HASH_BITS, WAYS,
                              p.shift, p.kmask, p.pb, p.fmt_min, GLZ_HASH_N[p.pb], rep_id,
                              rep_delta, out, op)
    return out[:op].tobytes()


def zlib_glz_encode(glz_bytes: bytes) -> bytes | None:
    """zlib (level 3) over a GLZ stream, for ZLIB_GLZ_RGB: returns the zlib
    stream when the GLZ stream is at least 100 bytes and zlib makes it
    smaller, else None (send GLZ_RGB).  glz_data_size = len(glz_bytes),
    data_size = len(result)."""
    if len(glz_bytes) < MIN_GLZ_SIZE_FOR_ZLIB:
        return None
    packed = zlib.compress(glz_bytes, ZLIB_GLZ_LEVEL)
    return packed if len(packed) < len(glz_bytes) else None

"""Reference GLZ decoder: a model of the client's GLZ window.

It behaves as spice-gtk's GLZ decoder does: images are kept in a slot array
indexed by ``id % size`` (doubled when a slot is taken), decoded to 32-bit
pixels (16-bit colours widened the client's way), and after each image the
client frees every image older than ``id - window_head_distance`` of the
newest image it holds without a gap before it.  Where the client would read
outside an image, wait for an image it will never get, or loop on a bad
header, this model raises ValueError instead.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from spice.codecs.glz import GLZ_HEADER, GLZ_HEADER_SIZE, GLZ_TYPES
from spice.codecs.glz_kernels import glz_decompress
from spice.codecs.lz_kernels import DECODE_ERRORS
from spice.codecs.lz_layout import (
    LZ_MAGIC,
    LZ_VERSION,
    MAX_IMAGE_BYTES,
    RGB_BYTES_PER_PIXEL,
    LzImageType,
    passes_for,
)

_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class GlzDecodedImage:
    """A decoded GLZ image as the client holds it: ``pixels`` is (height,
    width * 4) uint8, bytes b, g, r, x (or alpha for RGBA), rows in stream
    order (the top row first only if ``top_down``)."""

    lz_type: LzImageType
    width: int
    height: int
    top_down: bool
    image_id: int
    window_head_distance: int
    pixels: np.ndarray

    @property
    def values(self) -> np.ndarray:
        """(height, width) uint32 0xAARRGGBB view of ``pixels``."""
        return self.pixels.view("<u4")


@dataclass
class _Held:
    image_id: int
    head_dist: int
    values: np.ndarray  # uint32, width * height


def parse_glz_header(buf: np.ndarray) -> tuple[LzImageType, bool, int, int, int, int, int]:
    """Returns (type, top_down, width, height, stride, image_id, head_dist)."""
    if buf.size < GLZ_HEADER_SIZE:
        raise ValueError("GLZ stream shorter than its header")
    magic, version, type_byte, width, height, stride, image_id, head_dist = (
        GLZ_HEADER.unpack_from(buf, 0)
    )
    if magic != LZ_MAGIC:
        raise ValueError(f"bad GLZ magic {magic:#x}")
    if version != LZ_VERSION:
        raise ValueError(f"bad GLZ version {version:#x}")
    type_ = type_byte & 0x0F
    if type_ not in GLZ_TYPES:
        raise ValueError(f"GLZ image type {type_} is not one clients decode")
    lz_type = LzImageType(type_)
    if width == 0 or height == 0 or width * height * 4 > MAX_IMAGE_BYTES:
        raise ValueError(f"bad GLZ image size {width}x{height}")
    if stride != width * RGB_BYTES_PER_PIXEL[lz_type]:
        raise ValueError(f"GLZ stride {stride} != width {width} * bytes per pixel")
    if image_id >= 1 << 63:  # a server would need centuries of images to get here
        raise ValueError(f"GLZ image id {image_id} out of range")
    if head_dist > image_id:
        raise ValueError(f"GLZ window head distance {head_dist} exceeds image id {image_id}")
    return lz_type, bool(type_byte >> 4), width, height, stride, image_id, head_dist


class GlzDecoderWindow:
    """The client's GLZ window (one per session, shared by its display
    channels).  Not thread-safe: decode one image at a time."""

    def __init__(self) -> None:
        self._slots: list[_Held | None] = [None] * 16
        self._tail_gap = 0
        self._oldest = 0

    def clear(self) -> None:
        """What the client does on (re)connection: drop every image and the
        gap tracking.  Like the client, the release position is kept."""
        self._slots = [None] * 16
        self._tail_gap = 0

    @property
    def image_ids(self) -> list[int]:
        """Ids of the images held, ascending."""
        return sorted(h.image_id for h in self._slots if h is not None)

    @property
    def held_pixels(self) -> int:
        return sum(h.values.size for h in self._slots if h is not None)

    def decode(self, data: bytes | np.ndarray) -> GlzDecodedImage:
        buf = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
        buf = np.ascontiguousarray(buf, dtype=np.uint8).reshape(-1)
        lz_type, top_down, width, height, _, image_id, head_dist = parse_glz_header(buf)
        n = width * height
        if n > 256 * buf.size + 64:
            raise ValueError(f"GLZ header claims {n} pixels, more than the stream can code")
        held = sorted((h for h in self._slots if h is not None), key=lambda h: h.image_id)
        ids = np.array([h.image_id for h in held], np.int64)
        npix = np.array([h.values.size for h in held], np.int64)
        starts = np.zeros(len(held), np.int64)
        if len(held) > 1:
            starts[1:] = np.cumsum(npix)[:-1]
        store = (np.concatenate([h.values for h in held]) if held
                 else np.zeros(1, np.uint32))
        values = np.zeros(n, np.uint32)
        ip = GLZ_HEADER_SIZE
        for p in passes_for(lz_type):
            ip = glz_decompress(buf, ip, values, n, p.pb, p.fmt_min, p.shift == 24,
                                lz_type == LzImageType.RGB16, image_id, ids, starts, npix,
                                store)
            if ip < 0:
                raise ValueError(f"bad GLZ stream: {DECODE_ERRORS[ip]}")
        if ip != buf.size:
            raise ValueError(f"{buf.size - ip} bytes left over after the GLZ image")
        self._add(_Held(image_id, head_dist, values))
        self._release()
        pixels = values.view(np.uint8).reshape(height, width * 4)
        return GlzDecodedImage(lz_type, width, height, top_down, image_id, head_dist, pixels)

    def _add(self, image: _Held) -> None:
        size = len(self._slots)
        if self._slots[image.image_id % size] is not None:
            size *= 2
            slots: list[_Held | None] = [None] * size
            for h in self._slots:
                if h is not None:
                    slots[h.image_id % size] = h
            self._slots = slots
        self._slots[image.image_id % size] = image
        while self._tail_gap <= image.image_id and self._slots[self._tail_gap % size] is not None:
            self._tail_gap += 1

    def _release(self) -> None:
        size = len(self._slots)
        newest = self._slots[((self._tail_gap - 1) & _U64) % size]
        if newest is None:
            return
        oldest = newest.image_id - newest.head_dist
        if oldest - self._oldest >= size:
            self._slots = [None] * size
            self._oldest = oldest
        while self._oldest < oldest:
            self._slots[self._oldest % size] = None
            self._oldest += 1


def glz_decode(window: GlzDecoderWindow, data: bytes | np.ndarray) -> GlzDecodedImage:
    """Decode one GLZ_RGB payload into ``window`` (see GlzDecoderWindow)."""
    return window.decode(data)


def zlib_glz_decode(window: GlzDecoderWindow, data: bytes, glz_data_size: int) -> GlzDecodedImage:
    """Decode one ZLIB_GLZ_RGB payload: inflate to exactly ``glz_data_size``
    bytes, then GLZ-decode."""
    inflater = zlib.decompressobj()
    try:
        glz = inflater.decompress(data, glz_data_size + 1)
    except zlib.error as e:
        raise ValueError(f"bad zlib stream: {e}") from None
    if len(glz) != glz_data_size or not inflater.eof or inflater.unused_data:
        raise ValueError(f"zlib stream does not inflate to exactly {glz_data_size} bytes")
    return window.decode(glz)

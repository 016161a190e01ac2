"""Which codec an image goes out with, and the encoding itself.

The policy is spice-server's (``get_compression_for_bitmap`` and
``dcc_compress_image``), applied per client at send time:

========================  ====================================================
setting                   bitmap goes out as
========================  ====================================================
any                       BITMAP if ``height * stride < 54`` bytes
``off``                   BITMAP
``quic``                  QUIC unless palettized or smaller than 3x3 (BITMAP)
``auto_glz`` / ``auto_lz``  QUIC when QUIC can code it and it is photo-like
                          (graduality HIGH) or LZ cannot code it (padded rows,
                          unstable data); otherwise GLZ / LZ
``glz``                   GLZ for RGB images of drawables, else LZ; an image
                          as big as the client's GLZ window goes LZ
``lz``                    LZ (LZ_RGB, or LZ_PLT with the palette cache)
``lz4``                   LZ4 for RGB images when the client has the LZ4 cap,
                          else LZ
========================  ====================================================

LZ, GLZ and LZ4 need rows without padding and stable data, else BITMAP.  A
QUIC choice becomes JPEG (quality 85; JPEG_ALPHA for RGBA) when JPEG is
enabled for the channel and the draw may be lossy.  GLZ output of 100 bytes
or more is wrapped in zlib (ZLIB_GLZ_RGB) when zlib-glz is enabled and that
is smaller.  QUIC, LZ, LZ4 and JPEG output larger than the raw bitmap is
dropped in favour of BITMAP.  JPEG and zlib-glz are enabled per channel
from jpeg-wan-compression / zlib-glz-wan-compression: ``always``, ``never``,
or ``auto``: on for a client the main channel's network test found slow.

Deviations: an 8BIT_A bitmap set to LZ4 goes out as LZ (clients decode LZ4
only for 16/24/32-bit and RGBA), a palettized bitmap without a palette goes
out as BITMAP, and the GLZ window is at most 2**25 pixels whatever the
client announced.

GLZ dictionaries are shared by a client's display channels that announced
the same dictionary id (:func:`glz_dictionary_for`); encoding happens when
the message is marshalled, so every GLZ image produced is sent.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from spice import qxl
from spice.codecs import (
    BITMAP_GRADUAL_HIGH,
    GlzDictionary,
    bitmap_graduality,
    glz_encode,
    jpeg_alpha_encode,
    jpeg_encode_bitmap,
    lz4_encode,
    lz_encode,
    quic_encode,
    zlib_glz_encode,
)
from spice.codecs.glz import LZ_MAX_WINDOW_SIZE
from spice.protocol import ImageCompression
from spice.wire import Block, Buffer

if TYPE_CHECKING:
    from spice.display_client import DisplayChannelClient

log = logging.getLogger(__name__)

MIN_SIZE_TO_COMPRESS = 54  # bytes of bitmap below which nothing is compressed
MIN_DIMENSION_TO_QUIC = 3
JPEG_QUALITY = 85
_DESC = struct.Struct("<QBBII")
_U32 = struct.Struct("<I")

PLT_FORMATS = frozenset({qxl.SPICE_BITMAP_FMT_1BIT_LE, qxl.SPICE_BITMAP_FMT_1BIT_BE,
                         qxl.SPICE_BITMAP_FMT_4BIT_LE, qxl.SPICE_BITMAP_FMT_4BIT_BE,
                         qxl.SPICE_BITMAP_FMT_8BIT})
RGB_BYTES = {qxl.SPICE_BITMAP_FMT_16BIT: 2, qxl.SPICE_BITMAP_FMT_24BIT: 3,
             qxl.SPICE_BITMAP_FMT_32BIT: 4, qxl.SPICE_BITMAP_FMT_RGBA: 4,
             qxl.SPICE_BITMAP_FMT_8BIT_A: 1}
# formats with a graduality (spice-server's bitmap_fmt_has_graduality)
GRADUAL_FORMATS = frozenset(RGB_BYTES) - {qxl.SPICE_BITMAP_FMT_8BIT_A}
LZ4_FORMATS = GRADUAL_FORMATS


def put_palette(block: Block, pal: qxl.Palette) -> None:
    ents = np.ascontiguousarray(pal.ents, dtype="<u4")
    block.u64(pal.unique)
    block.u16(len(ents))
    block.raw(ents.view(np.uint8))


@dataclass
class EncodedImage:
    """One bitmap as an encoder produced it.  ``header`` holds the image
    type's fields between the descriptor and the data (spice.proto's
    BinaryData ``data_size``, ZlibGlzRGBData's two sizes, ...); for LZ_PLT
    give ``palette`` and the palette reference is written between the
    header's flags byte and its data size, with the client's palette cache
    honoured."""

    type: int  # SPICE_IMAGE_TYPE_*
    header: bytes
    data: Buffer | np.ndarray
    lossy: bool = False
    palette: qxl.Palette | None = None

    def write(self, dcc: DisplayChannelClient, block: Block, desc: qxl.ImageDescriptor,
              flags_out: int) -> None:
        block.fmt(_DESC, desc.id, self.type, flags_out, desc.width, desc.height)
        if self.type == qxl.SPICE_IMAGE_TYPE_LZ_PLT:
            pflags = self.header[0] | dcc.palette_flags(self.palette)
            block.u8(pflags)
            block.raw(self.header[1:])
            if pflags & qxl.SPICE_BITMAP_FLAGS_PAL_FROM_CACHE:
                block.u64(self.palette.unique)
                block.raw(self.data)
            else:
                pal_block = block.ptr()
                block.raw(self.data)
                if self.palette is not None:
                    put_palette(pal_block, self.palette)
            return
        block.raw(self.header)
        block.raw(self.data)

    @property
    def size(self) -> int:
        return len(self.header) + len(self.data)


# -- GLZ dictionaries, one per (client session, dictionary id) --------------------

_glz_lock = threading.Lock()
_glz_dicts: weakref.WeakKeyDictionary[object, dict[int, GlzDictionary]] = \
    weakref.WeakKeyDictionary()


def glz_dictionary_for(session: object, dictionary_id: int,
                       window_size: int) -> GlzDictionary | None:
    """The GLZ dictionary a client's display channels share (spice-server's
    dcc_get_glz_dictionary): created by the first channel announcing
    ``dictionary_id``, found by the others.  None for an unusable window."""
    if window_size <= 0:
        return None
    with _glz_lock:
        per_session = _glz_dicts.setdefault(session, {})
        d = per_session.get(dictionary_id)
        if d is None:
            d = GlzDictionary(min(window_size, LZ_MAX_WINDOW_SIZE))
            per_session[dictionary_id] = d
        return d


# -- statistics ---------------------------------------------------------------------


@dataclass
class CodecStat:
    count: int = 0
    raw_bytes: int = 0
    sent_bytes: int = 0
    seconds: float = 0.0


@dataclass
class EncoderStats:
    """Images per encoding of one display channel (all its clients)."""

    by_type: dict[str, CodecStat] = field(default_factory=dict)

    def add(self, name: str, raw: int, sent: int, seconds: float) -> None:
        s = self.by_type.get(name)
        if s is None:
            s = self.by_type[name] = CodecStat()
        s.count += 1
        s.raw_bytes += raw
        s.sent_bytes += sent
        s.seconds += seconds

    def as_dict(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, s in sorted(self.by_type.items()):
            out[f"images_{name}"] = s.count
            out[f"images_{name}_raw_bytes"] = s.raw_bytes
            out[f"images_{name}_bytes"] = s.sent_bytes
            out[f"images_{name}_us"] = int(s.seconds * 1e6)
        return out


# -- the policy ------------------------------------------------------------------------


def has_extra_stride(bm: qxl.BitmapImage) -> bool:
    """Whether rows carry padding (spice-server's bitmap_has_extra_stride)."""
    fmt = bm.format
    if fmt in RGB_BYTES:
        row = bm.x * RGB_BYTES[fmt]
    elif fmt == qxl.SPICE_BITMAP_FMT_8BIT:
        row = bm.x
    elif fmt in (qxl.SPICE_BITMAP_FMT_4BIT_LE, qxl.SPICE_BITMAP_FMT_4BIT_BE):
        row = (bm.x + 1) // 2
    else:
        row = (bm.x + 7) // 8
    return row < bm.stride


def can_quic(bm: qxl.BitmapImage) -> bool:
    return (bm.format not in PLT_FORMATS and bm.x >= MIN_DIMENSION_TO_QUIC
            and bm.y >= MIN_DIMENSION_TO_QUIC)


def can_lz(bm: qxl.BitmapImage) -> bool:
    return not has_extra_stride(bm) and not bm.flags & qxl.QXL_BITMAP_UNSTABLE


def graduality_of(bm: qxl.BitmapImage) -> int:
    return bitmap_graduality(bm.data, bm.x, bm.y, bm.stride, bm.format)


def choose(bm: qxl.BitmapImage, preferred: ImageCompression, from_drawable: bool,
           graduality: int | None = None) -> ImageCompression:
    """The compression spice-server's get_compression_for_bitmap picks:
    OFF, QUIC, GLZ, LZ or LZ4.  ``graduality`` is a value already computed
    for this bitmap (the stream detector's), else it is computed here when
    needed."""
    if bm.y * bm.stride < MIN_SIZE_TO_COMPRESS or preferred == ImageCompression.OFF:
        return ImageCompression.OFF
    if preferred == ImageCompression.QUIC:
        return ImageCompression.QUIC if can_quic(bm) else ImageCompression.OFF
    if preferred in (ImageCompression.AUTO_GLZ, ImageCompression.AUTO_LZ):
        if can_quic(bm):
            if not graduality and bm.format in GRADUAL_FORMATS:  # None or INVALID
                graduality = graduality_of(bm)
            if graduality == BITMAP_GRADUAL_HIGH or not can_lz(bm):
                return ImageCompression.QUIC
        preferred = (ImageCompression.LZ if preferred == ImageCompression.AUTO_LZ
                     else ImageCompression.GLZ)
    if preferred == ImageCompression.GLZ and (
            not from_drawable or bm.format not in GRADUAL_FORMATS):
        preferred = ImageCompression.LZ
    if preferred == ImageCompression.LZ4 and bm.format not in LZ4_FORMATS:
        preferred = ImageCompression.LZ
    if preferred in (ImageCompression.LZ, ImageCompression.LZ4, ImageCompression.GLZ):
        return preferred if can_lz(bm) else ImageCompression.OFF
    return ImageCompression.OFF


def would_be_lossy(bm: qxl.BitmapImage, preferred: ImageCompression, from_drawable: bool,
                   graduality: int | None = None) -> bool:
    """Whether, with JPEG enabled and lossy allowed, ``bm`` goes out as JPEG
    (it may still go out lossless if the JPEG is bigger than the bitmap)."""
    if bm.format not in GRADUAL_FORMATS:
        return False
    if bm.format == qxl.SPICE_BITMAP_FMT_RGBA and has_extra_stride(bm):
        return False
    return choose(bm, preferred, from_drawable, graduality) == ImageCompression.QUIC


@dataclass
class EncoderSettings:
    """What one client's encoders consult."""

    compression: ImageCompression
    enable_jpeg: bool = False
    enable_zlib_glz: bool = False
    lz4: bool = False  # the client has SPICE_DISPLAY_CAP_LZ4_COMPRESSION
    glz: GlzDictionary | None = None


class ImageEncoders:
    """Encodes bitmaps for one display channel client (spice-server's
    ImageEncoders of a DisplayChannelClient)."""

    def __init__(self, stats: EncoderStats | None = None) -> None:
        self.stats = stats or EncoderStats()

    def compress(self, bm: qxl.BitmapImage, settings: EncoderSettings, can_lossy: bool,
                 from_drawable: bool = True,
                 graduality: int | None = None) -> EncodedImage | None:
        """The encoded image, or None to send ``bm`` as BITMAP."""
        t0 = time.perf_counter()
        raw = bm.y * bm.stride
        kind = choose(bm, settings.compression, from_drawable, graduality)
        out: EncodedImage | None = None
        try:
            if kind == ImageCompression.QUIC:
                if (can_lossy and settings.enable_jpeg
                        and (bm.format != qxl.SPICE_BITMAP_FMT_RGBA or not has_extra_stride(bm))):
                    out = self._jpeg(bm)
                else:
                    out = self._quic(bm)
            elif kind == ImageCompression.GLZ:
                out = self._glz(bm, settings)
                if out is None:
                    out = self._lz(bm)
            elif kind == ImageCompression.LZ4 and settings.lz4:
                out = self._lz4(bm)
            elif kind in (ImageCompression.LZ, ImageCompression.LZ4):
                out = self._lz(bm)
        except ValueError as exc:
            # a bitmap the codec refuses (bad palette indices, geometry) is
            # still drawable as BITMAP, which the client validates itself
            log.debug("image %#x not compressed: %s", bm.descriptor.id, exc)
            out = None
        name = _TYPE_NAMES.get(out.type, "other") if out is not None else "bitmap"
        self.stats.add(name, raw, out.size if out is not None else raw,
                       time.perf_counter() - t0)
        return out

    # -- the codecs ------------------------------------------------------------------

    @staticmethod
    def _quic(bm: qxl.BitmapImage) -> EncodedImage | None:
        data = quic_encode(bm.data, bm.x, bm.y, bm.stride, bm.format, bm.top_down)
        if len(data) > bm.y * bm.stride:
            return None
        return EncodedImage(qxl.SPICE_IMAGE_TYPE_QUIC, _U32.pack(len(data)), data)

    @staticmethod
    def _lz(bm: qxl.BitmapImage) -> EncodedImage | None:
        if bm.format in PLT_FORMATS:
            if bm.palette is None:
                return None
            data = lz_encode(bm.data, bm.x, bm.y, bm.stride, bm.format, bm.top_down,
                             bm.palette.ents)
        else:
            data = lz_encode(bm.data, bm.x, bm.y, bm.stride, bm.format, bm.top_down)
        if len(data) > bm.y * bm.stride:
            return None
        if bm.format in PLT_FORMATS:
            flags = qxl.SPICE_BITMAP_FLAGS_TOP_DOWN if bm.top_down else 0
            return EncodedImage(qxl.SPICE_IMAGE_TYPE_LZ_PLT, bytes((flags,)) + _U32.pack(len(data)),
                                data, palette=bm.palette)
        return EncodedImage(qxl.SPICE_IMAGE_TYPE_LZ_RGB, _U32.pack(len(data)), data)

    @staticmethod
    def _glz(bm: qxl.BitmapImage, settings: EncoderSettings) -> EncodedImage | None:
        if settings.glz is None:
            return None
        data = glz_encode(settings.glz, bm.data, bm.x, bm.y, bm.stride, bm.format, bm.top_down)
        if data is None:
            return None
        if settings.enable_zlib_glz:
            packed = zlib_glz_encode(data)
            if packed is not None:
                return EncodedImage(qxl.SPICE_IMAGE_TYPE_ZLIB_GLZ_RGB,
                                    _U32.pack(len(data)) + _U32.pack(len(packed)), packed)
        return EncodedImage(qxl.SPICE_IMAGE_TYPE_GLZ_RGB, _U32.pack(len(data)), data)

    @staticmethod
    def _lz4(bm: qxl.BitmapImage) -> EncodedImage | None:
        data = lz4_encode(bm.data, bm.x, bm.y, bm.stride, bm.format, bm.top_down)
        if len(data) > bm.y * bm.stride:
            return None
        return EncodedImage(qxl.SPICE_IMAGE_TYPE_LZ4, _U32.pack(len(data)), data)

    @staticmethod
    def _jpeg(bm: qxl.BitmapImage) -> EncodedImage | None:
        raw = bm.y * bm.stride
        if bm.format == qxl.SPICE_BITMAP_FMT_RGBA:
            ja = jpeg_alpha_encode(bm.data, bm.x, bm.y, bm.stride, bm.top_down, JPEG_QUALITY)
            if len(ja.data) > raw:
                return None
            header = struct.pack("<BII", ja.flags, ja.jpeg_size, len(ja.data))
            return EncodedImage(qxl.SPICE_IMAGE_TYPE_JPEG_ALPHA, header, ja.data, lossy=True)
        data = jpeg_encode_bitmap(bm.data, bm.x, bm.y, bm.stride, bm.format, bm.top_down,
                                  JPEG_QUALITY)
        if len(data) > raw:
            return None
        return EncodedImage(qxl.SPICE_IMAGE_TYPE_JPEG, _U32.pack(len(data)), data, lossy=True)


_TYPE_NAMES = {
    qxl.SPICE_IMAGE_TYPE_QUIC: "quic",
    qxl.SPICE_IMAGE_TYPE_LZ_RGB: "lz",
    qxl.SPICE_IMAGE_TYPE_LZ_PLT: "lz_plt",
    qxl.SPICE_IMAGE_TYPE_GLZ_RGB: "glz",
    qxl.SPICE_IMAGE_TYPE_ZLIB_GLZ_RGB: "zlib_glz",
    qxl.SPICE_IMAGE_TYPE_LZ4: "lz4",
    qxl.SPICE_IMAGE_TYPE_JPEG: "jpeg",
    qxl.SPICE_IMAGE_TYPE_JPEG_ALPHA: "jpeg_alpha",
}

"""Reading the shared building blocks of QXL commands out of guest memory:
chunk chains, images (bitmaps with palettes, guest QUIC streams, surface
references), brushes and masks.

Rules applied everywhere (the classes of CVE-2015-5261 and CVE-2022-4144):

* a structure is read once, for its full size, into a private copy and
  only the copy is examined;
* a chunk chain is walked with a cap on the number of links and a set of
  visited addresses (a loop is a guest bug, not a hang), each chunk's
  data is translated for its full length, and the total must stay within
  spice-server's 2^31-1 limit, within the device memory the slots cover
  (overlapping chunks would otherwise make the host gather gigabytes from
  a few megabytes) and match the size the command declares;
* size arithmetic is done in Python integers, so nothing wraps.

Pixel data is handed out as a zero-copy view of the BAR when it is one
flat block (QXL_BITMAP_DIRECT or a single chunk) and as one gathered copy
otherwise.  Data that is later parsed (QUIC headers, glyphs, paths, clip
rectangles) is always copied.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from devices.qxl import layout as L
from devices.qxl.memslots import GuestBug, MemSlots, add_offset
from spice import qxl as Q

# spice-server allows 0x7fffffff / 1024 links; walking two million links in
# Python would stall the worker for seconds, and no driver comes close.
MAX_CHUNKS = 1 << 17

# QUIC stream header: magic, version, type, width, height (u32 each).
QUIC_MAGIC = 0x43495551
QUIC_VERSION = 0
QUIC_TYPES = range(1, 6)  # GRAY, RGB16, RGB24, RGB32, RGBA
QUIC_HEADER_SIZE = 20

# spice-bitmap-utils' bitmap_fmt_is_rgb: formats that need no palette.
_RGB_FORMATS = frozenset({Q.SPICE_BITMAP_FMT_16BIT, Q.SPICE_BITMAP_FMT_24BIT,
                          Q.SPICE_BITMAP_FMT_32BIT, Q.SPICE_BITMAP_FMT_RGBA,
                          Q.SPICE_BITMAP_FMT_8BIT_A})


def color_16_to_32(color: np.ndarray | int) -> np.ndarray | int:
    """x1r5g5b5 -> x8r8g8b8, replicating the top bits into the low ones
    (spice-server's color_16_to_32, used for COMPAT_16BPP commands)."""
    c = color
    return (((c & 0x001F) << 3) | ((c & 0x001C) >> 2)
            | ((c & 0x03E0) << 6) | ((c & 0x0380) << 1)
            | ((c & 0x7C00) << 9) | ((c & 0x7000) << 4))


_STRUCT_CODES = {"<u1": "B", "<u2": "H", "<u4": "I", "<u8": "Q",
                 "|u1": "B", "|i1": "b", "<i2": "h", "<i4": "i", "<i8": "q"}


def flat_struct(*dtypes: np.dtype) -> tuple[struct.Struct, dict[str, int]]:
    """A ``struct.Struct`` that reads the packed layouts ``dtypes`` (laid
    end to end) in one call, and the position in its result of every
    field, by dotted name (``"bbox.top"``, ``"surfaces_dest[1]"``; a
    sub-array or structure names its first value).

    One ``unpack_from`` returns plain ints, where every access to a field of
    a numpy record builds a numpy scalar: this is how the hot commands are
    read.  Layouts with overlapping fields (unions) are refused."""
    codes: list[str] = []
    index: dict[str, int] = {}
    pos = 0

    def walk(dt: np.dtype, name: str, offset: int) -> None:
        nonlocal pos
        if name:
            index.setdefault(name, len(codes))
        if dt.names is not None:
            for field in dt.names:
                fdt, foff = dt.fields[field][:2]
                walk(fdt, f"{name}.{field}" if name else field, offset + foff)
            return
        if dt.subdtype is not None:
            sub, shape = dt.subdtype
            for i in range(math.prod(shape)):
                walk(sub, f"{name}[{i}]", offset + i * sub.itemsize)
            return
        if offset != pos:
            raise ValueError(f"{name or 'field'} at {offset}, expected {pos}: not a flat layout")
        codes.append(_STRUCT_CODES[dt.str])
        pos += dt.itemsize

    for dt in dtypes:
        walk(dt, "", pos)
    return struct.Struct("<" + "".join(codes)), index


# QXLImage read as a bitmap (the union's other members are read from a copy)
_IMAGE_BITMAP = flat_struct(L.IMAGE_DESCRIPTOR, L.BITMAP)[0]
assert _IMAGE_BITMAP.size == L.IMAGE.itemsize == L.IMAGE.fields["bitmap"][1] + L.BITMAP.itemsize
_IMAGE_FLAGS = Q.QXL_IMAGE_CACHE | Q.QXL_IMAGE_HIGH_BITS_SET


def rect(rec: np.void) -> Q.Rect:
    return Q.Rect(int(rec["top"]), int(rec["left"]), int(rec["bottom"]), int(rec["right"]))


def point(rec: np.void) -> Q.Point:
    return Q.Point(int(rec["x"]), int(rec["y"]))


class ResourceReader:
    """Translates and validates guest structures through ``slots``."""

    def __init__(self, slots: MemSlots, n_surfaces: int) -> None:
        self.slots = slots
        self.n_surfaces = n_surfaces

    # -- surfaces
    def surface_id(self, sid: int, what: str) -> int:
        if not 0 <= sid < self.n_surfaces:
            raise GuestBug(f"{what}: surface id {sid} outside 0..{self.n_surfaces - 1}")
        return sid

    # -- chunk chains
    def chunks(self, first: np.void, first_phys: int, expected: int | None,
               what: str, copy: bool = False) -> np.ndarray:
        """The data of the chain whose first QXLDataChunk header ``first`` (as
        already read, inside its parent's copy) sits at ``first_phys``."""
        pieces: list[np.ndarray] = []
        total = 0
        phys = first_phys
        header = first
        seen = {first_phys}
        links = 0
        limit = min(L.MAX_DATA_CHUNK, self.slots.backing_bytes())
        while True:
            size = int(header["data_size"])
            if size or phys == first_phys:
                total += size
                if expected is not None and total > expected:
                    raise GuestBug(f"{what}: chunks hold more than the {expected} bytes "
                                   "declared")
                if total > limit:
                    raise GuestBug(f"{what}: chunks hold more than the {limit} bytes of "
                                   "device memory they can come from (overlapping chunks)")
                view = self.slots.view(add_offset(phys, L.DATA_CHUNK.itemsize), size)
                if size:
                    pieces.append(view)
            phys = int(header["next_chunk"])
            if not phys:
                break
            links += 1
            if links >= MAX_CHUNKS:
                raise GuestBug(f"{what}: more than {MAX_CHUNKS} chunks")
            if phys in seen:
                raise GuestBug(f"{what}: chunk list loops back to {phys:#x}")
            seen.add(phys)
            header = self.slots.read(phys, L.DATA_CHUNK)
        if expected is not None and total != expected:
            raise GuestBug(f"{what}: chunks hold {total} bytes, {expected} declared")
        if not pieces:
            return np.zeros(0, np.uint8)
        if len(pieces) == 1:
            return pieces[0].copy() if copy else pieces[0]
        return np.concatenate(pieces)

    # -- images
    def image(self, phys: int, flags: int, is_mask: bool = False) -> Q.Image | None:
        """The QXLImage at ``phys`` (None for a null pointer)."""
        if phys == 0:
            return None
        array, offset = self.slots.translate(phys, L.IMAGE.itemsize)
        (image_id, itype, iflags, width, height,
         fmt, bflags, x, y, stride, pal_phys, data_phys) = _IMAGE_BITMAP.unpack_from(array, offset)
        desc = Q.ImageDescriptor(image_id, itype, iflags & _IMAGE_FLAGS, width, height)
        if itype == Q.SPICE_IMAGE_TYPE_BITMAP:
            return self._bitmap(fmt, bflags, x, y, stride, pal_phys, data_phys, desc, flags,
                                is_mask)
        rec = array[offset:offset + L.IMAGE.itemsize].copy().view(L.IMAGE)[0]
        if itype == Q.SPICE_IMAGE_TYPE_SURFACE:
            sid = self.surface_id(int(rec["surface_id"]), "surface image")
            return Q.SurfaceImage(desc, sid)
        if itype == Q.SPICE_IMAGE_TYPE_QUIC:
            return self._quic(rec, phys, desc)
        raise GuestBug(f"image at {phys:#x}: type {itype} cannot come from a guest")

    def _bitmap(self, fmt: int, bflags: int, x: int, y: int, stride: int, pal_phys: int,
                data_phys: int, desc: Q.ImageDescriptor, flags: int,
                is_mask: bool) -> Q.BitmapImage:
        if not Q.SPICE_BITMAP_FMT_1BIT_LE <= fmt <= Q.SPICE_BITMAP_FMT_8BIT_A:
            raise GuestBug(f"bitmap: invalid format {fmt}")
        if fmt not in _RGB_FORMATS and not pal_phys and not is_mask:
            raise GuestBug(f"bitmap: format {fmt} needs a palette")
        if x == 0 or y == 0:
            raise GuestBug(f"bitmap: zero area {x}x{y}")
        min_stride = (x * Q.BITMAP_FMT_BPP[fmt] + 7) // 8
        if stride < min_stride:
            raise GuestBug(f"bitmap: stride {stride} < {min_stride} for width {x} "
                           f"format {fmt}")
        size = y * stride
        if size > L.MAX_DATA_CHUNK:
            raise GuestBug(f"bitmap: {y} x {stride} bytes is too large")
        palette = self.palette(pal_phys, flags) if pal_phys else None
        if bflags & Q.QXL_BITMAP_DIRECT:
            array, start = self.slots.translate(data_phys, size)  # (slots.view, inline)
            data = array[start:start + size]
        else:
            head = self.slots.read(data_phys, L.DATA_CHUNK)
            data = self.chunks(head, data_phys, size, "bitmap")
        return Q.BitmapImage(desc, fmt, bflags, x, y, stride, palette, data)

    def palette(self, phys: int, flags: int) -> Q.Palette:
        head = self.slots.read(phys, L.PALETTE_HEAD)
        n = int(head["num_ents"])
        ents = self.slots.copy(add_offset(phys, L.PALETTE_HEAD.itemsize), 4 * n).view("<u4")
        if flags & Q.QXL_COMMAND_FLAG_COMPAT_16BPP:
            ents = color_16_to_32(ents.astype(np.uint32)).astype(np.uint32)
        return Q.Palette(int(head["unique"]), ents.astype(np.uint32, copy=False))

    def _quic(self, rec: np.void, phys: int, desc: Q.ImageDescriptor) -> Q.QuicImage:
        size = int(rec["quic_data_size"])
        first = add_offset(phys, L.IMAGE.fields["quic_chunk"][1])
        data = self.chunks(rec["quic_chunk"], first, size, "quic image", copy=True)
        if size < QUIC_HEADER_SIZE:
            raise GuestBug(f"quic image: {size} bytes is shorter than its header")
        magic, version, qtype, width, height = (int(v) for v in
                                                data[:QUIC_HEADER_SIZE].view("<u4"))
        if magic != QUIC_MAGIC or version != QUIC_VERSION or qtype not in QUIC_TYPES:
            raise GuestBug(f"quic image: bad header magic {magic:#x} version {version} "
                           f"type {qtype}")
        if (width, height) != (desc.width, desc.height) or not width or not height:
            raise GuestBug(f"quic image: stream is {width}x{height}, descriptor says "
                           f"{desc.width}x{desc.height}")
        return Q.QuicImage(desc, data)

    # -- brushes and masks
    def brush(self, rec: np.void, flags: int) -> Q.Brush:
        btype = int(rec["type"])
        if btype == Q.SPICE_BRUSH_TYPE_NONE:
            return Q.Brush(btype)
        if btype == Q.SPICE_BRUSH_TYPE_SOLID:
            color = int(rec["color"])
            if flags & Q.QXL_COMMAND_FLAG_COMPAT_16BPP:
                color = int(color_16_to_32(color))
            return Q.Brush(btype, color=color)
        if btype == Q.SPICE_BRUSH_TYPE_PATTERN:
            pat = self.image(int(rec["pattern"]["pat"]), flags)
            if pat is None:
                raise GuestBug("pattern brush without a pattern image")
            return Q.Brush(btype, pattern=pat, pos=point(rec["pattern"]["pos"]))
        raise GuestBug(f"brush: unknown type {btype}")

    def qmask(self, rec: np.void, flags: int) -> Q.QMask:
        return self.qmask_of(int(rec["flags"]), int(rec["pos"]["x"]), int(rec["pos"]["y"]),
                             int(rec["bitmap"]), flags)

    def qmask_of(self, mflags: int, x: int, y: int, bitmap_phys: int, flags: int) -> Q.QMask:
        """A QMask from its fields (flags, position, bitmap pointer)."""
        if not bitmap_phys:
            return Q.NO_MASK
        bitmap = self.image(bitmap_phys, flags, is_mask=True)
        return Q.QMask(mflags, Q.Point(x, y), bitmap)

    def source(self, phys: int, flags: int, what: str) -> Q.Image:
        """A source image a draw cannot do without."""
        img = self.image(phys, flags)
        if img is None:
            raise GuestBug(f"{what}: null source image")
        return img

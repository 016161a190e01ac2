"""Marshalling of display channel draw messages (spice.proto DisplayChannel).

Each QXL draw type maps to one DRAW_* message: DisplayBase (surface id,
bounding box, clip) followed by the draw's own fields.  Images, masks,
brush patterns, paths and strings are reached through pointers; their
blocks are created in the same order as spice-server's generated
marshallers create them, so the bytes match spice-server's for the same
drawable and cache state.

Image content goes through :meth:`ImageSink.fill_image`, which owns the
cache decisions (FROM_CACHE, CACHE_ME, palette cache) and the choice of
encoding.
"""

from __future__ import annotations

import struct
from typing import Protocol

from spice import qxl
from spice.protocol import MsgDisplay
from spice.wire import Block, Writer

_RECT = struct.Struct("<iiii")
_POINT = struct.Struct("<ii")
_POINT16 = struct.Struct("<hh")
_TRANSFORM = struct.Struct("<IIIIII")

COMPOSITE_HAS_MASK = 1 << 19
COMPOSITE_HAS_SRC_TRANSFORM = 1 << 20
COMPOSITE_HAS_MASK_TRANSFORM = 1 << 21

DRAW_MESSAGE = {
    qxl.QXL_DRAW_FILL: MsgDisplay.DRAW_FILL,
    qxl.QXL_DRAW_OPAQUE: MsgDisplay.DRAW_OPAQUE,
    qxl.QXL_DRAW_COPY: MsgDisplay.DRAW_COPY,
    qxl.QXL_DRAW_BLEND: MsgDisplay.DRAW_BLEND,
    qxl.QXL_DRAW_BLACKNESS: MsgDisplay.DRAW_BLACKNESS,
    qxl.QXL_DRAW_WHITENESS: MsgDisplay.DRAW_WHITENESS,
    qxl.QXL_DRAW_INVERS: MsgDisplay.DRAW_INVERS,
    qxl.QXL_DRAW_ROP3: MsgDisplay.DRAW_ROP3,
    qxl.QXL_DRAW_STROKE: MsgDisplay.DRAW_STROKE,
    qxl.QXL_DRAW_TEXT: MsgDisplay.DRAW_TEXT,
    qxl.QXL_DRAW_TRANSPARENT: MsgDisplay.DRAW_TRANSPARENT,
    qxl.QXL_DRAW_ALPHA_BLEND: MsgDisplay.DRAW_ALPHA_BLEND,
    qxl.QXL_COPY_BITS: MsgDisplay.COPY_BITS,
    qxl.QXL_DRAW_COMPOSITE: MsgDisplay.DRAW_COMPOSITE,
}


class ImageSink(Protocol):
    def fill_image(self, block: Block, image: qxl.Image | None, *, mask: bool = False) -> None:
        ...


def put_rect(block: Block, r: qxl.Rect | tuple[int, int, int, int]) -> None:
    block.fmt(_RECT, r[0], r[1], r[2], r[3])


def put_point(block: Block, p: qxl.Point | tuple[int, int]) -> None:
    block.fmt(_POINT, p[0], p[1])


def put_base(block: Block, d: qxl.Drawable) -> None:
    """DisplayBase: surface_id, box, clip (rects inline)."""
    block.u32(d.surface_id)
    put_rect(block, d.bbox)
    if d.clip is None:
        block.u8(qxl.SPICE_CLIP_TYPE_NONE)
    else:
        block.u8(qxl.SPICE_CLIP_TYPE_RECTS)
        block.u32(len(d.clip))
        for r in d.clip:
            put_rect(block, (int(r[0]), int(r[1]), int(r[2]), int(r[3])))


def put_brush(block: Block, brush: qxl.Brush) -> Block | None:
    block.u8(brush.type)
    if brush.type == qxl.SPICE_BRUSH_TYPE_SOLID:
        block.u32(brush.color)
    elif brush.type == qxl.SPICE_BRUSH_TYPE_PATTERN:
        pat = block.ptr()
        put_point(block, brush.pos)
        return pat
    return None


def put_qmask(block: Block, mask: qxl.QMask) -> Block:
    block.u8(mask.flags)
    put_point(block, mask.pos)
    return block.ptr()


def _fill_pattern(sink: ImageSink, out: Block | None, brush: qxl.Brush) -> None:
    if out is not None:
        sink.fill_image(out, brush.pattern)


def _fill_mask(sink: ImageSink, out: Block, mask: qxl.QMask) -> None:
    if mask.bitmap is not None:
        sink.fill_image(out, mask.bitmap, mask=True)


def put_path(block: Block, path: list[qxl.PathSeg]) -> None:
    block.u32(len(path))
    for seg in path:
        block.u8(seg.flags)
        pts = seg.points.reshape(-1, 2) if seg.points.size else seg.points.reshape(0, 2)
        block.u32(len(pts))
        for x, y in pts:
            block.fmt(_POINT, int(x), int(y))


def glyph_bytes(flags: int, width: int, height: int) -> int:
    if flags & qxl.SPICE_STRING_FLAGS_RASTER_A1:
        bpp = 1
    elif flags & qxl.SPICE_STRING_FLAGS_RASTER_A4:
        bpp = 4
    else:
        bpp = 8
    return (width * bpp + 7) // 8 * height


def put_string(block: Block, s: qxl.GlyphString) -> None:
    block.u16(len(s.glyphs))
    block.u8(s.flags)
    if not s.flags & (qxl.SPICE_STRING_FLAGS_RASTER_A1 | qxl.SPICE_STRING_FLAGS_RASTER_A4
                      | qxl.SPICE_STRING_FLAGS_RASTER_A8):
        return
    for g in s.glyphs:
        put_point(block, g.render_pos)
        put_point(block, g.glyph_origin)
        block.u16(g.width)
        block.u16(g.height)
        n = glyph_bytes(s.flags, g.width, g.height)
        data = g.data.reshape(-1)[:n]
        block.raw(data.tobytes() if len(data) == n else data.tobytes().ljust(n, b"\0"))


def marshal_draw(sink: ImageSink, d: qxl.Drawable) -> tuple[int, Writer]:
    """The message for drawable ``d``; images are filled through ``sink``."""
    msg_type = DRAW_MESSAGE[d.type]
    w = Writer()
    root = w.root
    put_base(root, d)
    u = d.u
    t = d.type
    if t == qxl.QXL_DRAW_FILL:
        pat = put_brush(root, u.brush)
        root.u16(u.rop_descriptor)
        mask = put_qmask(root, u.mask)
        _fill_pattern(sink, pat, u.brush)
        _fill_mask(sink, mask, u.mask)
    elif t == qxl.QXL_DRAW_OPAQUE:
        src = root.ptr()
        put_rect(root, u.src_area)
        pat = put_brush(root, u.brush)
        root.u16(u.rop_descriptor)
        root.u8(u.scale_mode)
        mask = put_qmask(root, u.mask)
        sink.fill_image(src, u.src_bitmap)
        _fill_pattern(sink, pat, u.brush)
        _fill_mask(sink, mask, u.mask)
    elif t in (qxl.QXL_DRAW_COPY, qxl.QXL_DRAW_BLEND):
        src = root.ptr()
        put_rect(root, u.src_area)
        root.u16(u.rop_descriptor)
        root.u8(u.scale_mode)
        mask = put_qmask(root, u.mask)
        sink.fill_image(src, u.src_bitmap)
        _fill_mask(sink, mask, u.mask)
    elif t in (qxl.QXL_DRAW_BLACKNESS, qxl.QXL_DRAW_WHITENESS, qxl.QXL_DRAW_INVERS):
        mask = put_qmask(root, u.mask)
        _fill_mask(sink, mask, u.mask)
    elif t == qxl.QXL_DRAW_ROP3:
        src = root.ptr()
        put_rect(root, u.src_area)
        pat = put_brush(root, u.brush)
        root.u8(u.rop3)
        root.u8(u.scale_mode)
        mask = put_qmask(root, u.mask)
        sink.fill_image(src, u.src_bitmap)
        _fill_pattern(sink, pat, u.brush)
        _fill_mask(sink, mask, u.mask)
    elif t == qxl.QXL_DRAW_STROKE:
        put_path(root.ptr(), u.path)
        root.u8(u.attr.flags)
        style = None
        styled = u.attr.flags & qxl.SPICE_LINE_FLAGS_STYLED
        nseg = 0 if u.attr.style is None else len(u.attr.style)
        if styled:
            root.u8(nseg)
            style = root.ptr()
        pat = put_brush(root, u.brush)
        root.u16(u.fore_mode)
        root.u16(u.back_mode)
        if style is not None and nseg:
            for v in u.attr.style:
                style.i32(int(v))
        _fill_pattern(sink, pat, u.brush)
    elif t == qxl.QXL_DRAW_TEXT:
        put_string(root.ptr(), u.string)
        put_rect(root, u.back_area)
        fore = put_brush(root, u.fore_brush)
        back = put_brush(root, u.back_brush)
        root.u16(u.fore_mode)
        root.u16(u.back_mode)
        _fill_pattern(sink, fore, u.fore_brush)
        _fill_pattern(sink, back, u.back_brush)
    elif t == qxl.QXL_DRAW_TRANSPARENT:
        src = root.ptr()
        put_rect(root, u.src_area)
        root.u32(u.src_color)
        root.u32(u.true_color)
        sink.fill_image(src, u.src_bitmap)
    elif t == qxl.QXL_DRAW_ALPHA_BLEND:
        root.u8(u.alpha_flags)
        root.u8(u.alpha)
        src = root.ptr()
        put_rect(root, u.src_area)
        sink.fill_image(src, u.src_bitmap)
    elif t == qxl.QXL_COPY_BITS:
        put_point(root, u.src_pos)
    elif t == qxl.QXL_DRAW_COMPOSITE:
        flags = u.flags & 0x7FFFF
        if u.mask is not None:
            flags |= COMPOSITE_HAS_MASK
        if u.src_transform is not None:
            flags |= COMPOSITE_HAS_SRC_TRANSFORM
        if u.mask is not None and u.mask_transform is not None:
            flags |= COMPOSITE_HAS_MASK_TRANSFORM
        root.u32(flags)
        src = root.ptr()
        mask = root.ptr() if flags & COMPOSITE_HAS_MASK else None
        for tr in ((u.src_transform if flags & COMPOSITE_HAS_SRC_TRANSFORM else None),
                   (u.mask_transform if flags & COMPOSITE_HAS_MASK_TRANSFORM else None)):
            if tr is not None:
                root.fmt(_TRANSFORM, tr.t00 & 0xFFFFFFFF, tr.t01 & 0xFFFFFFFF,
                         tr.t02 & 0xFFFFFFFF, tr.t10 & 0xFFFFFFFF, tr.t11 & 0xFFFFFFFF,
                         tr.t12 & 0xFFFFFFFF)
        root.fmt(_POINT16, u.src_origin[0], u.src_origin[1])
        root.fmt(_POINT16, u.mask_origin[0], u.mask_origin[1])
        sink.fill_image(src, u.src)
        if mask is not None:
            sink.fill_image(mask, u.mask)
    else:
        raise ValueError(f"no message for draw type {t}")
    return msg_type, w


def marshal_image_copy(surface_id: int, left: int, top: int, width: int, height: int,
                       image_writer) -> Writer:
    """DRAW_COPY of an image at (left, top): the surface-content message sent
    to a client that connects mid-session.  ``image_writer(block)`` fills
    the source image."""
    w = Writer()
    root = w.root
    root.u32(surface_id)
    put_rect(root, (top, left, top + height, left + width))
    root.u8(qxl.SPICE_CLIP_TYPE_NONE)
    src = root.ptr()
    put_rect(root, (0, 0, height, width))
    root.u16(qxl.SPICE_ROPD_OP_PUT)
    root.u8(0)
    put_qmask(root, qxl.NO_MASK)
    image_writer(src)
    return w

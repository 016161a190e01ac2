"""One function per QXL draw type, following spice-common's canvas_draw_*.

Each builds the destination region, picks the raster operation the rop
descriptor stands for, resolves its images (a live surface is used in place,
anything else is decoded to the canvas format) and hands the boxes to the
kernels of :mod:`.raster` and :mod:`.compose`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spice import qxl
from spice.canvas import compose, lines, raster, text
from spice.canvas import region as rg
from spice.canvas.images import ImageError
from spice.canvas.pixfmt import PF_A1, PF_A8, PF_A8R8G8B8, PF_BPP, PF_X8R8G8B8, Pix
from spice.canvas.surface import DrawContext, DrawError, _mask_region, check_temp_size

if TYPE_CHECKING:
    from spice.canvas.surface import SurfaceCanvas

# Which operand a rop descriptor's INVERS_SRC / INVERS_BRUSH / INVERS_DEST
# bit applies to, per draw type.
IN_SRC, IN_BRUSH, IN_DEST = 0, 1, 2
_INVERS_BITS = (qxl.SPICE_ROPD_INVERS_SRC, qxl.SPICE_ROPD_INVERS_BRUSH,
                qxl.SPICE_ROPD_INVERS_DEST)


def rop_from_descriptor(desc: int, src_input: int, dest_input: int) -> int:
    """ropd_descriptor_to_rop: a rop descriptor as one of the 16 binary raster
    operations, with ``src_input`` / ``dest_input`` naming the operands."""
    inv_s = bool(desc & _INVERS_BITS[src_input])
    inv_d = bool(desc & _INVERS_BITS[dest_input])
    inv_r = bool(desc & qxl.SPICE_ROPD_INVERS_RES)
    if desc & qxl.SPICE_ROPD_OP_PUT:
        op = lambda s, d: s  # noqa: E731
    elif desc & qxl.SPICE_ROPD_OP_OR:
        op = lambda s, d: s | d  # noqa: E731
    elif desc & qxl.SPICE_ROPD_OP_AND:
        op = lambda s, d: s & d  # noqa: E731
    elif desc & qxl.SPICE_ROPD_OP_XOR:
        op = lambda s, d: s ^ d  # noqa: E731
    elif desc & qxl.SPICE_ROPD_OP_BLACKNESS:
        return raster.ROP_CLEAR
    elif desc & qxl.SPICE_ROPD_OP_WHITENESS:
        return raster.ROP_SET
    elif desc & qxl.SPICE_ROPD_OP_INVERS:
        return raster.ROP_INVERT
    else:
        return raster.ROP_COPY
    code = 0
    for s in (0, 1):
        for d in (0, 1):
            bit = op(s ^ inv_s, d ^ inv_d) ^ inv_r
            code |= bit << (3 - (2 * s + d))
    return code


def localize(ctx: DrawContext, d: qxl.Drawable) -> None:
    """The image-cache look-ups drawable_draw makes, in its order."""
    u, t = d.u, d.type

    def brush(b: qxl.Brush) -> None:
        if b.type == qxl.SPICE_BRUSH_TYPE_PATTERN:
            ctx.localize(b.pattern)

    if t == qxl.QXL_DRAW_FILL:
        brush(u.brush)
        ctx.localize(u.mask.bitmap)
    elif t in (qxl.QXL_DRAW_OPAQUE, qxl.QXL_DRAW_ROP3):
        brush(u.brush)
        ctx.localize(u.src_bitmap)
        ctx.localize(u.mask.bitmap)
    elif t in (qxl.QXL_DRAW_COPY, qxl.QXL_DRAW_BLEND):
        ctx.localize(u.src_bitmap)
        ctx.localize(u.mask.bitmap)
    elif t in (qxl.QXL_DRAW_TRANSPARENT, qxl.QXL_DRAW_ALPHA_BLEND):
        ctx.localize(u.src_bitmap)
    elif t in (qxl.QXL_DRAW_BLACKNESS, qxl.QXL_DRAW_WHITENESS, qxl.QXL_DRAW_INVERS):
        ctx.localize(u.mask.bitmap)
    elif t == qxl.QXL_DRAW_COMPOSITE:
        ctx.localize(u.src)
        ctx.localize(u.mask)
    elif t == qxl.QXL_DRAW_STROKE:
        brush(u.brush)
    elif t == qxl.QXL_DRAW_TEXT:
        brush(u.fore_brush)
        brush(u.back_brush)


def dest_region(canvas: SurfaceCanvas, bbox: qxl.Rect, clip: np.ndarray | None) -> np.ndarray:
    """The bounding box clipped to the surface and to the clip rectangles."""
    r = rg.intersect(rg.rect_region(bbox.left, bbox.top, bbox.width, bbox.height),
                     canvas.region)
    if clip is not None:
        boxes = np.asarray(clip, np.int32).reshape(-1, 4)[:, [1, 0, 3, 2]]
        r = rg.intersect(r, rg.from_boxes(boxes))
    return r


def _same_size(a: qxl.Rect, b: qxl.Rect) -> bool:
    return a.width == b.width and a.height == b.height


def _check_depth(canvas: SurfaceCanvas, pix: Pix) -> None:
    if PF_BPP[pix.fmt] != PF_BPP[canvas.pix.fmt]:
        raise DrawError(f"{PF_BPP[pix.fmt]}-bit source on a {PF_BPP[canvas.pix.fmt]}-bit surface")


def fill_solid(canvas: SurfaceCanvas, region: np.ndarray, color: int, rop: int) -> None:
    if region.shape[0] == 0:
        return
    pix = canvas.pix
    value = color & ((1 << PF_BPP[pix.fmt]) - 1)
    raster.fill_rects(pix.data, pix.top, pix.stride, region, value, rop)


def fill_tiled(canvas: SurfaceCanvas, region: np.ndarray, tile: Pix, ox: int, oy: int,
               rop: int) -> None:
    _check_depth(canvas, tile)
    if region.shape[0] == 0:
        return
    pix = canvas.pix
    raster.tile_rects(pix.data, pix.top, pix.stride, region, tile.data, tile.top, tile.stride,
                      tile.w, tile.h, ox, oy, rop)


def brush_tile(canvas: SurfaceCanvas, ctx: DrawContext, brush: qxl.Brush) -> Pix:
    return ctx.source(brush.pattern, False, canvas.pix.fmt)


def draw_brush(canvas: SurfaceCanvas, ctx: DrawContext, region: np.ndarray, brush: qxl.Brush,
               rop: int) -> None:
    if brush.type == qxl.SPICE_BRUSH_TYPE_SOLID:
        fill_solid(canvas, region, brush.color, rop)
    elif brush.type == qxl.SPICE_BRUSH_TYPE_PATTERN:
        fill_tiled(canvas, region, brush_tile(canvas, ctx, brush), brush.pos.x, brush.pos.y, rop)
    elif brush.type == qxl.SPICE_BRUSH_TYPE_NONE:
        fill_solid(canvas, region, 0, rop)


def blit(canvas: SurfaceCanvas, region: np.ndarray, src: Pix, offx: int, offy: int,
         rop: int) -> None:
    """blit_image(_rop): source pixel (x - offx, y - offy)."""
    _check_depth(canvas, src)
    pix = canvas.pix
    raster.blit_rects(pix.data, pix.top, pix.stride, region, src.data, src.top, src.stride,
                      src.w, src.h, offx, offy, rop)


def _put_source(canvas: SurfaceCanvas, ctx: DrawContext, region: np.ndarray,
                image: qxl.Image, area: qxl.Rect, bbox: qxl.Rect, scale_mode: int,
                rop: int) -> None:
    surf = ctx.surface(image)
    src = surf.pix if surf is not None else ctx.image(image, False, canvas.pix.fmt)
    if _same_size(bbox, area):
        blit(canvas, region, src, bbox.left - area.left, bbox.top - area.top, rop)
    elif rop == raster.ROP_COPY:
        compose.scale_image(canvas, region, src, area, bbox, scale_mode, surf)
    else:
        compose.scale_image_rop(canvas, region, src, area, bbox, scale_mode, rop, surf)


def _masked_region(canvas, ctx, d, mask):
    r = dest_region(canvas, d.bbox, d.clip)
    return _mask_region(ctx, canvas, r, mask, d.bbox.left, d.bbox.top)


def draw_fill(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    u: qxl.Fill = d.u
    region = _masked_region(canvas, ctx, d, u.mask)
    rop = rop_from_descriptor(u.rop_descriptor, IN_BRUSH, IN_DEST)
    if rop == raster.ROP_NOOP or region.shape[0] == 0:
        ctx.touch_brush(u.brush, canvas.pix.fmt)
        return
    draw_brush(canvas, ctx, region, u.brush, rop)


def draw_copy(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    u: qxl.Copy = d.u
    region = _masked_region(canvas, ctx, d, u.mask)
    rop = rop_from_descriptor(u.rop_descriptor, IN_SRC, IN_DEST)
    if rop == raster.ROP_NOOP or region.shape[0] == 0:
        ctx.touch(u.src_bitmap, canvas.pix.fmt)
        return
    _put_source(canvas, ctx, region, u.src_bitmap, u.src_area, d.bbox, u.scale_mode, rop)


def draw_opaque(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    u: qxl.Opaque = d.u
    region = _masked_region(canvas, ctx, d, u.mask)
    rop = rop_from_descriptor(u.rop_descriptor, IN_BRUSH, IN_SRC)
    if rop == raster.ROP_NOOP or region.shape[0] == 0:
        ctx.touch(u.src_bitmap, canvas.pix.fmt)
        ctx.touch_brush(u.brush, canvas.pix.fmt)
        return
    _put_source(canvas, ctx, region, u.src_bitmap, u.src_area, d.bbox, u.scale_mode,
                raster.ROP_COPY)
    draw_brush(canvas, ctx, region, u.brush, rop)


def _draw_solid_op(canvas, ctx, d, color, rop):
    region = _masked_region(canvas, ctx, d, d.u.mask)
    fill_solid(canvas, region, color, rop)


def draw_blackness(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    _draw_solid_op(canvas, ctx, d, 0, raster.ROP_COPY)


def draw_whiteness(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    _draw_solid_op(canvas, ctx, d, 0xFFFFFFFF, raster.ROP_COPY)


def draw_invers(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    _draw_solid_op(canvas, ctx, d, 0, raster.ROP_INVERT)


def _rgb_to_555(c: int) -> int:
    return ((c >> 3) & 0x001F) | ((c >> 6) & 0x03E0) | ((c >> 9) & 0x7C00)


def _rgb_to_565(c: int) -> int:
    return ((c >> 3) & 0x001F) | ((c >> 5) & 0x07E0) | ((c >> 8) & 0xF800)


def draw_transparent(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    u: qxl.Transparent = d.u
    region = dest_region(canvas, d.bbox, d.clip)
    if region.shape[0] == 0:
        ctx.touch(u.src_bitmap, canvas.pix.fmt)
        return
    fmt = canvas.format
    if fmt in (qxl.SPICE_SURFACE_FMT_32_xRGB, qxl.SPICE_SURFACE_FMT_32_ARGB):
        key, keymask = u.true_color & 0xFFFFFFFF, 0xFFFFFF
    elif fmt == qxl.SPICE_SURFACE_FMT_16_555:
        key, keymask = _rgb_to_555(u.true_color), 0xFFFF
    elif fmt == qxl.SPICE_SURFACE_FMT_16_565:
        key, keymask = _rgb_to_565(u.true_color), 0xFFFF
    else:
        key, keymask = 0, 0xFF
    surf = ctx.surface(u.src_bitmap)
    src = surf.pix if surf is not None else ctx.image(u.src_bitmap, False, canvas.pix.fmt)
    _check_depth(canvas, src)
    if _same_size(d.bbox, u.src_area):
        offx, offy = d.bbox.left - u.src_area.left, d.bbox.top - u.src_area.top
        scaled = src
    else:
        scaled, offx, offy = compose.scaled_copy(src, region, u.src_area, d.bbox,
                                                 qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, surf)
    pix = canvas.pix
    raster.colorkey_rects(pix.data, pix.top, pix.stride, region, scaled.data, scaled.top,
                          scaled.stride, scaled.w, scaled.h, offx, offy, key, keymask)


def draw_alpha_blend(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    u: qxl.AlphaBlend = d.u
    region = dest_region(canvas, d.bbox, d.clip)
    if u.alpha == 0 or region.shape[0] == 0:
        ctx.touch(u.src_bitmap, canvas.pix.fmt)
        return
    surf = ctx.surface(u.src_bitmap)
    if surf is not None:
        src = surf.pix
        if u.alpha_flags & qxl.SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA and src.fmt == PF_X8R8G8B8:
            # a fresh a8r8g8b8 view of the surface, with none of its image's state
            src = src.with_format(PF_A8R8G8B8)
            surf = None
    else:
        src = ctx.image(u.src_bitmap, True, canvas.pix.fmt)
    dest_alpha = bool(u.alpha_flags & qxl.SPICE_ALPHA_FLAGS_DEST_HAS_ALPHA)
    compose.blend_image(canvas, region, dest_alpha, src, u.src_area, d.bbox, u.alpha, surf)


def draw_copy_bits(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    u: qxl.CopyBits = d.u
    region = dest_region(canvas, d.bbox, d.clip)
    dx = d.bbox.left - u.src_pos.x
    dy = d.bbox.top - u.src_pos.y
    if dx == 0 and dy == 0:
        return
    region = rg.intersect(region, rg.rect_region(dx, dy, canvas.width, canvas.height))
    if region.shape[0]:
        pix = canvas.pix
        raster.copy_region(pix.data, pix.top, pix.stride, region, dx, dy)


def read_area(canvas: SurfaceCanvas, x: int, y: int, w: int, h: int) -> Pix:
    """canvas_get_image_from_self: a copy of an area of the surface (parts
    outside the surface read as zero)."""
    out = Pix.new(canvas.pix.fmt, w, h)
    x1, y1 = max(x, 0), max(y, 0)
    x2, y2 = min(x + w, canvas.width), min(y + h, canvas.height)
    if x1 < x2 and y1 < y2:
        rows = out.data[:w * h].reshape(h, w)
        rows[y1 - y:y2 - y, x1 - x:x2 - x] = canvas.pix.rows()[y1:y2, x1:x2]
    return out


def draw_rop3(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    u: qxl.Rop3 = d.u
    region = _masked_region(canvas, ctx, d, u.mask)
    width, height = d.bbox.width, d.bbox.height
    if canvas.pix.fmt == PF_A8:
        raise DrawError("ROP3 on an 8-bit surface")
    if width <= 0 or height <= 0:
        raise DrawError("ROP3 with an empty bounding box")
    check_temp_size(width, height)
    dst = read_area(canvas, d.bbox.left, d.bbox.top, width, height)
    surf = ctx.surface(u.src_bitmap)
    src = surf.pix if surf is not None else ctx.image(u.src_bitmap, False, canvas.pix.fmt)
    if not _same_size(d.bbox, u.src_area):
        src = compose.scale_surface(src, u.src_area, width, height, u.scale_mode, surf)
        sx = sy = 0
    else:
        sx, sy = u.src_area.left, u.src_area.top
    if sx < 0 or sy < 0 or src.w - sx < width or src.h - sy < height:
        raise DrawError("ROP3 source area outside its image")
    _check_depth(canvas, src)
    if u.brush.type == qxl.SPICE_BRUSH_TYPE_PATTERN:
        pat = brush_tile(canvas, ctx, u.brush)
        _check_depth(canvas, pat)
        px = (d.bbox.left - u.brush.pos.x) % pat.w
        py = (d.bbox.top - u.brush.pos.y) % pat.h
        raster.rop3_kernel(u.rop3 & 0xFF, dst.data, dst.top, dst.stride, width, height,
                           src.data, src.top, src.stride, sx, sy,
                           pat.data, pat.top, pat.stride, pat.w, pat.h, px, py, 0, True)
    else:
        color = u.brush.color if u.brush.type == qxl.SPICE_BRUSH_TYPE_SOLID else 0
        raster.rop3_kernel(u.rop3 & 0xFF, dst.data, dst.top, dst.stride, width, height,
                           src.data, src.top, src.stride, sx, sy,
                           dst.data, 0, 0, 1, 1, 0, 0, color & 0xFFFFFFFF, False)
    if region.shape[0]:
        blit(canvas, region, dst, d.bbox.left, d.bbox.top, raster.ROP_COPY)


def draw_stroke(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    lines.draw_stroke(canvas, ctx, d, dest_region(canvas, d.bbox, d.clip))


def draw_text(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    text.draw_text(canvas, ctx, d, dest_region(canvas, d.bbox, d.clip))


def draw_composite(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    compose.draw_composite(canvas, ctx, d, dest_region(canvas, d.bbox, d.clip))


_DRAWS = {
    qxl.QXL_DRAW_FILL: draw_fill,
    qxl.QXL_DRAW_OPAQUE: draw_opaque,
    qxl.QXL_DRAW_COPY: draw_copy,
    qxl.QXL_COPY_BITS: draw_copy_bits,
    qxl.QXL_DRAW_BLEND: draw_copy,  # the reference draws BLEND exactly like COPY
    qxl.QXL_DRAW_BLACKNESS: draw_blackness,
    qxl.QXL_DRAW_WHITENESS: draw_whiteness,
    qxl.QXL_DRAW_INVERS: draw_invers,
    qxl.QXL_DRAW_ROP3: draw_rop3,
    qxl.QXL_DRAW_STROKE: draw_stroke,
    qxl.QXL_DRAW_TEXT: draw_text,
    qxl.QXL_DRAW_TRANSPARENT: draw_transparent,
    qxl.QXL_DRAW_ALPHA_BLEND: draw_alpha_blend,
    qxl.QXL_DRAW_COMPOSITE: draw_composite,
}


def dispatch(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable) -> None:
    fn = _DRAWS.get(d.type)
    if fn is None:
        raise DrawError(f"unknown draw type {d.type}")
    if canvas.pix.fmt == PF_A1:
        raise DrawError("drawing on a 1-bit surface")
    if d.u is None:
        raise DrawError("drawable without payload")
    try:
        fn(canvas, ctx, d)
    except ImageError:
        raise
    except (AttributeError, TypeError, IndexError, ZeroDivisionError) as exc:
        raise DrawError(f"malformed drawable: {exc!r}") from exc

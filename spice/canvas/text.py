"""DRAW_TEXT: glyph strings rasterised into one 1-bit or 8-bit coverage mask,
then the fore brush composited OVER through it (sw_canvas canvas_draw_text).

Glyph rows are read bottom-up whatever the string's TOP_DOWN flag says, as
the reference does.  4-bit coverage v becomes v << 4 and 8-bit coverage is
read one row off (the reference's first mask row reads past the glyph; that
row is taken as empty here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from spice import qxl
from spice.canvas import compose
from spice.canvas import pixman as px
from spice.canvas import region as rg
from spice.canvas.pixfmt import PF_A1, PF_A8, PF_BPP, Pix

if TYPE_CHECKING:
    from spice.canvas.surface import DrawContext, SurfaceCanvas


@njit(cache=True, nogil=True)
def _put_glyph(bpp, data, gw, gh, dest, dstride, gx, gy):
    """canvas_put_glyph_bits for one glyph at (gx, gy) of the mask."""
    if bpp == 1:
        sstride = (gw + 7) >> 3
        for i in range(gh):
            src = (gh - 1 - i) * sstride
            row = (gy + i) * dstride
            for x in range(gw):
                if (data[src + (x >> 3)] >> (7 - (x & 7))) & 1:
                    bx = gx + x
                    dest[row + (bx >> 3)] |= np.uint8(1 << (bx & 7))
    elif bpp == 4:
        sstride = (gw * 4 + 7) >> 3
        for i in range(gh):
            src = (gh - 1 - i) * sstride
            row = (gy + i) * dstride + gx
            for x in range(gw):
                b = np.int64(data[src + (x >> 1)])
                if x & 1:
                    v = b << 4  # can exceed 255; the store keeps the low byte
                else:
                    v = b & 0xF0
                cur = np.int64(dest[row + x])
                dest[row + x] = (v if v > cur else cur) & 0xFF
    else:
        for i in range(gh):
            srow = gh - i  # one past the glyph for the first mask row
            row = (gy + i) * dstride + gx
            if srow >= gh:
                continue
            for x in range(gw):
                v = data[srow * gw + x]
                if v > dest[row + x]:
                    dest[row + x] = v


def string_mask(string: qxl.GlyphString, bpp: int) -> tuple[Pix, int, int]:
    """canvas_get_str_mask: (mask, left, top)."""
    boxes = []
    for g in string.glyphs:
        left = g.render_pos.x + g.glyph_origin.x
        top = g.render_pos.y + g.glyph_origin.y
        boxes.append((left, top, left + g.width, top + g.height))
    left = min(b[0] for b in boxes)
    top = min(b[1] for b in boxes)
    right = max(b[2] for b in boxes)
    bottom = max(b[3] for b in boxes)
    from spice.canvas.surface import check_temp_size

    check_temp_size(right - left, bottom - top)
    mask = Pix.new(PF_A1 if bpp == 1 else PF_A8, right - left, bottom - top)
    for g, b in zip(string.glyphs, boxes, strict=True):
        if g.width == 0 or g.height == 0:
            continue
        data = np.ascontiguousarray(g.data, dtype=np.uint8).reshape(-1)
        need = g.height * ((g.width * bpp + 7) // 8)
        if data.size < need:
            data = np.concatenate([data, np.zeros(need - data.size, np.uint8)])
        _put_glyph(bpp, data, g.width, g.height, mask.data, mask.stride,
                   b[0] - left, b[1] - top)
    return mask, left, top


def brush_color(canvas: SurfaceCanvas, color: int) -> int:
    """canvas_get_pixman_brush for a solid brush: the pixel value read as
    channels of the surface depth (5 bits each on both 16-bit formats),
    widened to 16 bits and narrowed again as pixman's solid fill does."""
    if PF_BPP[canvas.pix.fmt] == 16:
        shift, mask = 5, 0x1F
    else:
        shift, mask = 8, 0xFF
    b = ((color & mask) * 0xFFFF) // mask
    color >>= shift
    g = ((color & mask) * 0xFFFF) // mask
    color >>= shift
    r = ((color & mask) * 0xFFFF) // mask
    return 0xFF000000 | ((r >> 8) << 16) | (g & 0xFF00) | (b >> 8)


def fore_picture(canvas: SurfaceCanvas, ctx: DrawContext,
                 brush: qxl.Brush) -> compose.Picture | None:
    if brush.type == qxl.SPICE_BRUSH_TYPE_SOLID:
        return compose.Picture.solid(brush_color(canvas, brush.color))
    if brush.type == qxl.SPICE_BRUSH_TYPE_PATTERN:
        transform = (1 << 16, 0, -brush.pos.x << 16, 0, 1 << 16, -brush.pos.y << 16)
        surf = ctx.surface(brush.pattern)
        if surf is not None:
            # the surface's own image: its filter is whatever was left on it,
            # and the translation stays on it afterwards
            pic = compose.Picture.image(surf.pix, px.REPEAT_NORMAL, surf.pm_filter, transform)
            surf.pm_transform = transform
            return pic
        tile = ctx.image(brush.pattern, False, canvas.pix.fmt)
        return compose.Picture.image(tile, px.REPEAT_NORMAL, px.FILTER_NEAREST, transform)
    return None


def draw_text(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable,
              region: np.ndarray) -> None:
    from spice.canvas.draws import draw_brush
    from spice.canvas.raster import ROP_COPY

    u: qxl.Text = d.u
    pf = canvas.pix.fmt
    if region.shape[0] == 0:
        ctx.touch_brush(u.fore_brush, pf)
        ctx.touch_brush(u.back_brush, pf)
        return
    back = u.back_area
    if not back.is_empty():
        if u.fore_mode != qxl.SPICE_ROPD_OP_PUT:
            return
        back_region = rg.intersect(rg.rect_region(back.left, back.top, back.width, back.height),
                                   region)
        if back_region.shape[0]:
            draw_brush(canvas, ctx, back_region, u.back_brush, ROP_COPY)
    flags = u.string.flags
    if flags & qxl.SPICE_STRING_FLAGS_RASTER_A1:
        bpp = 1
    elif flags & qxl.SPICE_STRING_FLAGS_RASTER_A4:
        bpp = 4
    elif flags & qxl.SPICE_STRING_FLAGS_RASTER_A8:
        bpp = 8
    else:
        return
    brush = fore_picture(canvas, ctx, u.fore_brush)
    if not u.string.glyphs:
        from spice.canvas.surface import DrawError

        raise DrawError("text without glyphs")
    mask, left, top = string_mask(u.string, bpp)
    if brush is None:
        return
    mpic = compose.Picture.image(mask)
    compose.composite(px.OP_OVER, brush, mpic, canvas.pix, region, 0, 0, 0, 0, left, top,
                      mask.w, mask.h)
    if canvas.format == qxl.SPICE_SURFACE_FMT_32_xRGB:
        compose.clear_dest_alpha(canvas.pix, left, top, mask.w, mask.h)

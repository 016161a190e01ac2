"""Scaling, alpha blending, put_image and DRAW_COMPOSITE: the canvas
operations spice-common performs with pixman_image_composite32.

:class:`Picture` is a pixman source or mask (solid colour or image, with
transform, filter and repeat); :func:`composite` runs one composite over a
destination region.  The helpers mirror sw_canvas's __scale_image,
__scale_image_rop, __blend_image, __blend_scale_image, the colour-key
scaling and canvas_scale_surface, including where they round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from spice import qxl
from spice.canvas import fastpaths, raster
from spice.canvas import pixman as px
from spice.canvas import region as rg
from spice.canvas.pixfmt import (
    PF_A1,
    PF_A8,
    PF_A8R8G8B8,
    PF_BPP,
    PF_X8R8G8B8,
    Pix,
    convert,
)
from spice.canvas.surface import DrawError

if TYPE_CHECKING:
    from spice.canvas.surface import DrawContext, SurfaceCanvas

_NO_T = np.zeros(6, np.int64)
_NO_DATA = np.zeros(1, np.uint32)
_NO_COV = np.zeros(1, np.uint8)


@dataclass(slots=True)
class Picture:
    """A pixman source/mask picture.  ``pix`` is kept in its own format;
    ``transform`` is (t00, t01, t02, t10, t11, t12) in 16.16 or None."""

    kind: int
    color: int = 0
    pix: Pix | None = None
    repeat: int = px.REPEAT_NONE
    filter: int = px.FILTER_NEAREST
    transform: tuple[int, int, int, int, int, int] | None = None
    component_alpha: bool = False

    @staticmethod
    def solid(argb: int) -> Picture:
        return Picture(px.KIND_SOLID, color=argb & 0xFFFFFFFF)

    @staticmethod
    def image(pix: Pix, repeat: int = px.REPEAT_NONE, filter: int = px.FILTER_NEAREST,
              transform: tuple | None = None) -> Picture:
        return Picture(px.KIND_BITS, pix=pix, repeat=repeat, filter=filter, transform=transform)

    def kernel_args(self) -> tuple:
        """(kind, colour, data, top, stride, w, h, fmt, repeat, filter, t, has_t)
        with data as uint32 (images not of a 32-bit format are widened to
        a8r8g8b8 first)."""
        if self.kind != px.KIND_BITS:
            return (self.kind, self.color, _NO_DATA, 0, 0, 1, 1, 0, 0, 0, _NO_T, False)
        pix = self.pix
        if pix.fmt not in (PF_A8R8G8B8, PF_X8R8G8B8):
            pix = convert(pix, PF_A8R8G8B8)
        if self.transform is None:
            t, has_t = _NO_T, False
        else:
            t = np.array([_s32(v) for v in self.transform], np.int64)
            has_t = True
        return (self.kind, 0, pix.data, pix.top, pix.stride, pix.w, pix.h, pix.fmt,
                self.repeat, self.filter, t, has_t)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


_NO_ALPHA = (PF_X8R8G8B8, 2, 3)  # x8r8g8b8, x1r5g5b5, r5g6b5
# operators that read and write an x8r8g8b8 destination in place, top byte
# included (pixman's ITER_LOCALIZED_ALPHA destination iterator)
_LOCALIZED = frozenset({px.OP_CLEAR, px.OP_SRC, px.OP_DST, px.OP_OVER, px.OP_IN_REVERSE,
                        px.OP_OUT_REVERSE, px.OP_ADD})
# what an operator becomes when the source is opaque (pixman's operator_table)
_WITH_OPAQUE_SRC = {px.OP_OVER: px.OP_SRC, px.OP_IN_REVERSE: px.OP_DST,
                    px.OP_OUT_REVERSE: px.OP_CLEAR, px.OP_ATOP: px.OP_IN,
                    px.OP_ATOP_REVERSE: px.OP_OVER_REVERSE, px.OP_XOR: px.OP_OUT}


def _transform_point(t: tuple, x: int, y: int) -> tuple[int, int]:
    """pixman_transform_point_3d of a 16.16 point (affine rows only)."""
    def row(a, b, c):
        hi = a * (x >> 16) + b * (y >> 16) + c
        lo = a * (x & 0xFFFF) + b * (y & 0xFFFF)
        return hi + ((lo + 0x8000) >> 16)
    return row(t[0], t[1], t[2]), row(t[3], t[4], t[5])


def _analyze(pic: Picture, x1: int, y1: int, x2: int, y2: int) -> tuple[bool, bool, bool]:
    """pixman's analyze_extent for picture-space extents: (drawable,
    samples cover for nearest, samples cover for bilinear)."""
    def is16(v):
        return -0x8000 <= v <= 0x7FFF

    if not (is16(x1 - 1) and is16(y1 - 1) and is16(x2 + 1) and is16(y2 + 1)):
        return False, False, False
    if pic.kind != px.KIND_BITS:
        return True, True, True
    w, h = pic.pix.w, pic.pix.h
    if w >= 0x7FFF or h >= 0x7FFF:
        return False, False, False
    t = pic.transform
    if t is None:
        if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
            return True, True, False
        t = (1 << 16, 0, 0, 0, 1 << 16, 0)
    t = tuple(_s32(v) for v in t)

    def extents(a1, b1, a2, b2):
        pts = [_transform_point(t, (xx << 16) + k1, (yy << 16) + k2)
               for xx, k1 in ((a1, 0x8000), (a2, -0x8000))
               for yy, k2 in ((b1, 0x8000), (b2, -0x8000))]
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        return min(xs), min(ys), max(xs), max(ys)

    tx1, ty1, tx2, ty2 = extents(x1, y1, x2, y2)
    near = ((tx1 - 1) >> 16 >= 0 and (ty1 - 1) >> 16 >= 0
            and (tx2 - 1) >> 16 < w and (ty2 - 1) >> 16 < h)
    bil = ((tx1 - 0x8000) >> 16 >= 0 and (ty1 - 0x8000) >> 16 >= 0
           and (tx2 + 0x8000) >> 16 < w and (ty2 + 0x8000) >> 16 < h)
    ex = extents(x1 - 1, y1 - 1, x2 + 1, y2 + 1)
    if pic.filter == px.FILTER_BILINEAR:
        off, size = -0x8000, 0x10000
    else:
        off, size = -1, 0
    lim = (-(1 << 31), (1 << 31) - 1)
    for v in (ex[0] + off - 8, ex[1] + off - 8, ex[2] + off + 8 + size, ex[3] + off + 8 + size):
        if not lim[0] <= v <= lim[1]:
            return False, False, False
    return True, near, bil


def _nearest_equivalent(pic: Picture) -> bool:
    """Whether pixman treats the picture's filter as nearest."""
    if pic.filter == px.FILTER_NEAREST or pic.transform is None:
        return True
    t = [_s32(v) for v in pic.transform]
    if (t[0] | t[1] | t[2] | t[3] | t[4] | t[5]) & 0xFFFF:
        return False
    if (((t[0] + t[1]) & (t[3] + t[4])) >> 16) % 2 != 1:
        return False
    return all(-30000 * 65536 <= v <= 30000 * 65536 for v in (t[2], t[5]))


def _opaque(pic: Picture, cover: tuple[bool, bool, bool]) -> bool:
    if pic.kind == px.KIND_SOLID:
        return pic.color >> 24 == 0xFF
    if pic.kind != px.KIND_BITS or pic.component_alpha or pic.pix.fmt not in _NO_ALPHA:
        return False
    if pic.repeat != px.REPEAT_NONE:
        return True
    if _nearest_equivalent(pic) and cover[1]:
        return True
    return pic.filter == px.FILTER_BILINEAR and cover[2]


def _raw_copy_path(pic: Picture, dest_fmt: int, cover: tuple[bool, bool, bool]) -> bool:
    """Whether a SRC of this 32-bit picture into a 32-bit destination takes
    one of pixman's copying fast paths (which keep the source's top byte):
    memcpy / tiled copy when untransformed, the "simple" nearest and SSE2
    bilinear scalers for scale-only transforms."""
    if pic.kind != px.KIND_BITS or pic.pix.fmt not in (PF_A8R8G8B8, PF_X8R8G8B8):
        return False
    if pic.pix.fmt == PF_X8R8G8B8 and dest_fmt == PF_A8R8G8B8:
        return False
    if pic.transform is None:
        return cover[1] or pic.repeat == px.REPEAT_NORMAL
    t = [_s32(v) for v in pic.transform]
    if t[1] != 0 or t[3] != 0:
        return False
    covered = cover[2] if pic.filter == px.FILTER_BILINEAR else cover[1]
    if _nearest_equivalent(pic):
        covered = covered or cover[1]
    return covered or (t[0] > 0 and pic.repeat != px.REPEAT_REFLECT)


def _coverage(pic: Picture) -> tuple[np.ndarray, int, int] | None:
    """An untransformed a1/a8 mask as (uint8 coverage, top, stride)."""
    if (pic.kind != px.KIND_BITS or pic.transform is not None or pic.component_alpha
            or pic.repeat != px.REPEAT_NONE or pic.pix.fmt not in (PF_A1, PF_A8)):
        return None
    pix = pic.pix
    if pix.fmt == PF_A8:
        return pix.data, pix.top, pix.stride
    rows = np.lib.stride_tricks.as_strided(
        pix.data[pix.top:], shape=(pix.h, (pix.w + 7) // 8), strides=(pix.stride, 1))
    bits = np.unpackbits(rows, axis=1, bitorder="little")[:, :pix.w]
    cov = np.ascontiguousarray(bits * np.uint8(255)).reshape(-1)
    return cov, 0, pix.w


def _scale_only(pic: Picture) -> tuple[int, int, int, int] | None:
    """(x scale, x offset, y scale, y offset) of an untransformed or
    scale + translate picture, else None."""
    if pic.transform is None:
        return 1 << 16, 0, 1 << 16, 0
    t = [_s32(v) for v in pic.transform]
    if t[1] != 0 or t[3] != 0:
        return None
    return t[0], t[2], t[4], t[5]


def _fast(op: int, src: Picture, mask: Picture | None, dest: Pix, boxes: np.ndarray,
          sdx: int, sdy: int, mdx: int, mdy: int, raw_src: bool) -> bool:
    """Run a SRC/OVER into a 32-bit destination through a specialised kernel
    when it is one of the common shapes; False when it is not."""
    mask_alpha = -1
    cov, ctop, cstride = _NO_COV, 0, 0
    if mask is not None:
        if op == px.OP_SRC:
            return False
        if mask.kind == px.KIND_SOLID:
            mask_alpha = mask.color >> 24
        else:
            c = _coverage(mask)
            if c is None:
                return False
            cov, ctop, cstride = c
    if src.kind == px.KIND_SOLID:
        if op != px.OP_OVER or src.color >> 24 != 0xFF or cstride == 0:
            return False
        fastpaths.solid_over_kernel(boxes, dest.data, dest.top, dest.stride, src.color,
                                    cov, ctop, cstride, mdx, mdy)
        return True
    if src.kind != px.KIND_BITS or src.pix.fmt not in (PF_A8R8G8B8, PF_X8R8G8B8):
        return False
    axes = _scale_only(src)
    if axes is None:
        return False
    sp = src.pix
    force_alpha = sp.fmt == PF_X8R8G8B8 and not raw_src
    fastpaths.scaled_kernel(op, boxes, dest.data, dest.top, dest.stride,
                            sp.data, sp.top, sp.stride, sp.w, sp.h, force_alpha, src.repeat,
                            src.filter == px.FILTER_BILINEAR, axes[0], axes[1], axes[2],
                            axes[3], sdx, sdy, mask_alpha, cov, ctop, cstride, mdx, mdy)
    return True


def composite(op: int, src: Picture, mask: Picture | None, dest: Pix, region: np.ndarray,
              src_x: int, src_y: int, mask_x: int, mask_y: int, dest_x: int, dest_y: int,
              width: int, height: int) -> None:
    """pixman_image_composite32 with ``region`` as the destination clip."""
    if width <= 0 or height <= 0:
        return
    boxes = rg.intersect(region, rg.rect_region(dest_x, dest_y, width, height))
    boxes = rg.intersect(boxes, rg.rect_region(0, 0, dest.w, dest.h))
    if boxes.shape[0] == 0:
        return
    ex1, ey1, ex2, ey2 = rg.extents(boxes)
    sdx, sdy = src_x - dest_x, src_y - dest_y
    scover = _analyze(src, ex1 + sdx, ey1 + sdy, ex2 + sdx, ey2 + sdy)
    if not scover[0]:
        return
    if mask is not None:
        mcover = _analyze(mask, ex1 + mask_x - dest_x, ey1 + mask_y - dest_y,
                          ex2 + mask_x - dest_x, ey2 + mask_y - dest_y)
        if not mcover[0]:
            return
        # an opaque mask (pixman's static IS_OPAQUE) is no mask at all
        if mask.kind == px.KIND_SOLID and mask.color >> 24 == 0xFF:
            mask = None
        elif (mask.kind == px.KIND_BITS and not mask.component_alpha
              and mask.pix.fmt in _NO_ALPHA and mask.repeat != px.REPEAT_NONE):
            mask = None
    eff = op
    if _opaque(src, scover) and (mask is None or _opaque(mask, mcover)):
        eff = _WITH_OPAQUE_SRC.get(op, op)
    if eff == px.OP_DST:
        return
    mdx, mdy = mask_x - dest_x, mask_y - dest_y
    if _reads_dest(src, dest) or _reads_dest(mask, dest):
        # pixman fetches a row's samples before writing that row; reading
        # from the image being written, later rows see earlier rows' results
        for box in boxes:
            for y in range(box[1], box[3]):
                row = np.array([[box[0], y, box[2], y + 1]], np.int32)
                _execute(eff, _snapshot(src), _snapshot(mask), dest, row, sdx, sdy, mdx, mdy,
                         scover)
        return
    _execute(eff, src, mask, dest, boxes, sdx, sdy, mdx, mdy, scover)


def _reads_dest(pic: Picture | None, dest: Pix) -> bool:
    return (pic is not None and pic.kind == px.KIND_BITS
            and np.may_share_memory(pic.pix.data, dest.data))


def _snapshot(pic: Picture | None) -> Picture | None:
    if pic is None or pic.kind != px.KIND_BITS:
        return pic
    p = pic.pix
    return Picture(pic.kind, pic.color, Pix(p.fmt, p.w, p.h, p.data.copy(), p.top, p.stride),
                   pic.repeat, pic.filter, pic.transform, pic.component_alpha)


def _execute(eff: int, src: Picture, mask: Picture | None, dest: Pix, boxes: np.ndarray,
             sdx: int, sdy: int, mdx: int, mdy: int, scover: tuple[bool, bool, bool]) -> None:
    """Run a composite whose operator and flags are settled."""
    if (eff == px.OP_SRC and mask is None and src.kind == px.KIND_BITS
            and src.transform is None and src.pix.fmt == dest.fmt and PF_BPP[dest.fmt] < 32
            and (src.repeat == px.REPEAT_NORMAL or scover[1])):
        # pixman's memcpy / tiled copy of a 16- or 8-bit image into its own format
        sp = src.pix
        if scover[1]:
            raster.blit_rects(dest.data, dest.top, dest.stride, boxes, sp.data, sp.top,
                              sp.stride, sp.w, sp.h, -sdx, -sdy, raster.ROP_COPY)
        else:
            raster.tile_rects(dest.data, dest.top, dest.stride, boxes, sp.data, sp.top,
                              sp.stride, sp.w, sp.h, -sdx, -sdy, raster.ROP_COPY)
        return
    if PF_BPP[dest.fmt] == 32 and eff in (px.OP_SRC, px.OP_OVER) and _fast(
            eff, src, mask, dest, boxes, sdx, sdy, mdx, mdy,
            eff == px.OP_SRC and _raw_copy_path(src, dest.fmt, scover)):
        return
    raw_dst = PF_BPP[dest.fmt] == 32 and (dest.fmt == PF_A8R8G8B8 or eff in _LOCALIZED)
    raw_src = eff == px.OP_SRC and mask is None and PF_BPP[dest.fmt] == 32 \
        and _raw_copy_path(src, dest.fmt, scover)
    s = src.kernel_args()
    m = (mask or Picture(px.KIND_NONE)).kernel_args()
    ca = bool(mask is not None and mask.component_alpha)
    px.composite_kernel(
        eff, boxes, dest.data, dest.top, dest.stride, dest.fmt, raw_dst,
        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], raw_src, s[8], s[9], s[10], s[11],
        sdx, sdy,
        m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9], m[10], m[11],
        mdx, mdy, ca)


# -- the sw_canvas operations -------------------------------------------------


def _scale_fixed(src_size: int, dest_size: int) -> int:
    """((pixman_fixed_48_16_t) src * 65536) / dest, C division."""
    q = abs(src_size) * 65536 // abs(dest_size)
    return q if (src_size >= 0) == (dest_size > 0) else -q


def _scale_picture(src: Pix, area: qxl.Rect, bbox: qxl.Rect, scale_mode: int,
                   surf: SurfaceCanvas | None) -> Picture:
    if bbox.width == 0 or bbox.height == 0:
        raise DrawError("scaling to an empty box")
    fsx = _scale_fixed(area.width, bbox.width)
    fsy = _scale_fixed(area.height, bbox.height)
    transform = (fsx, 0, area.left << 16, 0, fsy, area.top << 16)
    if scale_mode not in (qxl.SPICE_IMAGE_SCALE_MODE_INTERPOLATE,
                          qxl.SPICE_IMAGE_SCALE_MODE_NEAREST):
        if surf is not None:
            surf.pm_transform = transform  # set before the reference gives up
        raise DrawError(f"bad scale mode {scale_mode}")
    filt = (px.FILTER_NEAREST if scale_mode == qxl.SPICE_IMAGE_SCALE_MODE_NEAREST
            else px.FILTER_BILINEAR)
    return Picture.image(src, px.REPEAT_NONE, filt, transform)


def _scaled(surf: SurfaceCanvas | None, pic: Picture) -> None:
    """What a scaling leaves on a surface's image: an identity transform and
    the scaling's filter."""
    if surf is not None:
        surf.pm_transform = None
        surf.pm_filter = pic.filter


def scale_image(canvas: SurfaceCanvas, region: np.ndarray, src: Pix, area: qxl.Rect,
                bbox: qxl.Rect, scale_mode: int, surf: SurfaceCanvas | None = None) -> None:
    """__scale_image: SRC through a scale + translate transform, clipped.
    ``surf`` is the surface the source image belongs to, if any."""
    pic = _scale_picture(src, area, bbox, scale_mode, surf)
    composite(px.OP_SRC, pic, None, canvas.pix, region, 0, 0, 0, 0, bbox.left, bbox.top,
              bbox.width, bbox.height)
    _scaled(surf, pic)


def scaled_copy(src: Pix, region: np.ndarray, area: qxl.Rect, bbox: qxl.Rect,
                scale_mode: int, surf: SurfaceCanvas | None = None) -> tuple[Pix, int, int]:
    """The scaled source over the region's extents, in the source's format,
    as the temporary image of __scale_image_rop and __colorkey_scale_image.
    Returns (image, offx, offy) for a blit: image pixel (x - offx, y - offy)."""
    pic = _scale_picture(src, area, bbox, scale_mode, surf)
    x1, y1, x2, y2 = rg.extents(region)
    tmp = Pix.new(src.fmt, max(x2 - x1, 1), max(y2 - y1, 1))
    local = rg.translate(region, -x1, -y1)
    # tmp pixel (i, j) is destination pixel (x1 + i, y1 + j) of the scaling
    composite(px.OP_SRC, pic, None, tmp, local, x1 - bbox.left, y1 - bbox.top, 0, 0, 0, 0,
              tmp.w, tmp.h)
    _scaled(surf, pic)
    return tmp, x1, y1


def scale_image_rop(canvas: SurfaceCanvas, region: np.ndarray, src: Pix, area: qxl.Rect,
                    bbox: qxl.Rect, scale_mode: int, rop: int,
                    surf: SurfaceCanvas | None = None) -> None:
    """__scale_image_rop: scale into a temporary, then blit with the rop."""
    tmp, offx, offy = scaled_copy(src, region, area, bbox, scale_mode, surf)
    if PF_BPP[tmp.fmt] != PF_BPP[canvas.pix.fmt]:
        raise DrawError("scaled source of another depth than the surface")
    pix = canvas.pix
    raster.blit_rects(pix.data, pix.top, pix.stride, region, tmp.data, tmp.top, tmp.stride,
                      tmp.w, tmp.h, offx, offy, rop)


def scale_surface(src: Pix, area: qxl.Rect, width: int, height: int, scale_mode: int,
                  surf: SurfaceCanvas | None = None) -> Pix:
    """canvas_scale_surface (DRAW_ROP3): the source area scaled to
    width x height with a transform built from doubles.  A zero-sized area
    makes the reference's source offset overflow, pixman then draws
    nothing and the result stays zero."""
    out = Pix.new(src.fmt, width, height)
    sx = area.width / width
    sy = area.height / height
    fsx = int(sx * 65536.0)
    fsy = int(sy * 65536.0)
    if scale_mode not in (qxl.SPICE_IMAGE_SCALE_MODE_INTERPOLATE,
                          qxl.SPICE_IMAGE_SCALE_MODE_NEAREST):
        if surf is not None:
            surf.pm_transform = (fsx, 0, 0, 0, fsy, 0)
        raise DrawError(f"bad scale mode {scale_mode}")
    filt = (px.FILTER_NEAREST if scale_mode == qxl.SPICE_IMAGE_SCALE_MODE_NEAREST
            else px.FILTER_BILINEAR)
    pic = Picture.image(src, px.REPEAT_NONE, filt, (fsx, 0, 0, 0, fsy, 0))
    if area.width != 0 and area.height != 0:
        ox = math.floor(area.left / sx + 0.5)
        oy = math.floor(area.top / sy + 0.5)
        composite(px.OP_SRC, pic, None, out, rg.rect_region(0, 0, width, height), ox, oy,
                  0, 0, 0, 0, width, height)
    _scaled(surf, pic)
    return out


def clear_dest_alpha(pix: Pix, x: int, y: int, width: int, height: int) -> None:
    """sw_canvas clear_dest_alpha: if the first pixel of the (surface-clipped)
    box has an 0xff top byte, clear the top byte of the whole box -- the
    clip region plays no part."""
    w, h = pix.w, pix.h
    if x + width <= 0 or x >= w or y + height <= 0 or y >= h or width == 0 or height == 0:
        return
    if x < 0:
        width += x
        x = 0
    width = min(width, w - x)
    if y < 0:
        height += y
        y = 0
    height = min(height, h - y)
    if (int(pix.data[pix.top + y * pix.stride + x]) & 0xFF000000) == 0xFF000000:
        raster.fill_rects(pix.data, pix.top, pix.stride,
                          np.array([[x, y, x + width, y + height]], np.int32), 0x00FFFFFF,
                          raster.ROP_AND)


def blend_image(canvas: SurfaceCanvas, region: np.ndarray, dest_has_alpha: bool, src: Pix,
                area: qxl.Rect, bbox: qxl.Rect, alpha: int,
                surf: SurfaceCanvas | None = None) -> None:
    """__blend_image / __blend_scale_image (nearest): OVER with the overall
    alpha as a solid mask.  ``surf`` is the surface whose own image is the
    source (not a fresh alpha view of it): the unscaled blend then samples
    through whatever transform and filter earlier operations left on it."""
    dest = canvas.pix
    if dest_has_alpha and canvas.format == qxl.SPICE_SURFACE_FMT_32_xRGB:
        dest = dest.with_format(PF_A8R8G8B8)
    mask = Picture.solid((alpha & 0xFF) << 24) if alpha != 0xFF else None
    if area.width == bbox.width and area.height == bbox.height:
        if surf is not None:
            pic = Picture.image(src, px.REPEAT_NONE, surf.pm_filter, surf.pm_transform)
        else:
            pic = Picture.image(src)
        composite(px.OP_OVER, pic, mask, dest, region, area.left, area.top, 0, 0,
                  bbox.left, bbox.top, bbox.width, bbox.height)
    else:
        pic = _scale_picture(src, area, bbox, qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, surf)
        composite(px.OP_OVER, pic, mask, dest, region, 0, 0, 0, 0, bbox.left, bbox.top,
                  bbox.width, bbox.height)
        _scaled(surf, pic)
    if canvas.format == qxl.SPICE_SURFACE_FMT_32_xRGB and not dest_has_alpha:
        clear_dest_alpha(canvas.pix, bbox.left, bbox.top, bbox.width, bbox.height)


def put_image(canvas: SurfaceCanvas, src: Pix, rect: qxl.Rect, region: np.ndarray) -> None:
    """canvas_put_image: SRC of an xRGB image, nearest-scaled to ``rect``."""
    dw, dh = rect.width, rect.height
    if dw <= 0 or dh <= 0 or src.w == 0 or src.h == 0:
        return
    transform = None
    if dw != src.w or dh != src.h:
        transform = (int(src.w / dw * 65536.0), 0, 0, 0, int(src.h / dh * 65536.0), 0)
    pic = Picture.image(src, px.REPEAT_NONE, px.FILTER_NEAREST, transform)
    composite(px.OP_SRC, pic, None, canvas.pix, region, 0, 0, 0, 0, rect.left, rect.top,
              dw, dh)


def draw_composite(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable,
                   region: np.ndarray) -> None:
    from spice.canvas.compose_draw import draw_composite as _draw

    _draw(canvas, ctx, d, region)

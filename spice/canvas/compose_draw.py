"""DRAW_COMPOSITE (canvas_draw_composite): a Render-style composite into a
copy of the bounding box, which is then copied back through the clip.

Supported: the Porter-Duff operators CLEAR..ADD, nearest and bilinear
filters (pixman FAST/GOOD/BEST/NEAREST/BILINEAR), all four repeat modes,
affine transforms and component alpha.  Operators pixman computes in
floating point (SATURATE, the disjoint/conjoint families, PDF blend modes)
and convolution filters are logged and not drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spice import qxl
from spice.canvas import compose
from spice.canvas import pixman as px
from spice.canvas.pixfmt import PF_A8R8G8B8, PF_X8R8G8B8, Pix
from spice.canvas.surface import DrawError, check_temp_size

if TYPE_CHECKING:
    from spice.canvas.surface import DrawContext, SurfaceCanvas

# pixman_filter_t values a composite's flags carry
_FILTERS = {0: px.FILTER_NEAREST, 1: px.FILTER_BILINEAR, 2: px.FILTER_BILINEAR,
            3: px.FILTER_NEAREST, 4: px.FILTER_BILINEAR}

SPICE_COMPOSITE_SOURCE_OPAQUE = 1 << 22


def _picture(ctx: DrawContext, canvas: SurfaceCanvas, image: qxl.Image,
             transform: qxl.Transform | None, filt: int, repeat: int,
             force_opaque: bool) -> tuple[compose.Picture, SurfaceCanvas | None]:
    """The picture and, when it is a surface's own image, that surface (its
    image keeps the transform and filter set here; with no transform given
    the one left on it is used)."""
    if filt not in _FILTERS:
        raise DrawError(f"composite filter {filt} is not supported")
    t = None
    if transform is not None:
        t = (transform.t00, transform.t01, transform.t02,
             transform.t10, transform.t11, transform.t12)
    surf = ctx.surface(image)
    if surf is not None:
        pix: Pix = surf.pix
        if force_opaque and pix.fmt == PF_A8R8G8B8:
            pix = pix.with_format(PF_X8R8G8B8)  # a fresh image over the same pixels
            surf = None
        elif transform is None:
            t = surf.pm_transform
    else:
        pix = ctx.image(image, False, canvas.pix.fmt)
    return compose.Picture.image(pix, repeat, _FILTERS[filt], t), surf


def draw_composite(canvas: SurfaceCanvas, ctx: DrawContext, d: qxl.Drawable,
                   region: np.ndarray) -> None:
    from spice.canvas.draws import blit, read_area
    from spice.canvas.raster import ROP_COPY

    u: qxl.Composite = d.u
    flags = u.flags
    op = flags & qxl.COMPOSITE_OP_MASK
    if op not in px.SUPPORTED_OPS:
        raise DrawError(f"composite operator {op:#x} is not supported")
    width, height = d.bbox.width, d.bbox.height
    if width <= 0 or height <= 0:
        raise DrawError("composite with an empty bounding box")
    check_temp_size(width, height)
    dest = read_area(canvas, d.bbox.left, d.bbox.top, width, height)
    src_filter = (flags >> qxl.COMPOSITE_SRC_FILTER_SHIFT) & 7
    src, src_surf = _picture(ctx, canvas, u.src, u.src_transform, src_filter,
                             (flags >> qxl.COMPOSITE_SRC_REPEAT_SHIFT) & 3,
                             bool(flags & SPICE_COMPOSITE_SOURCE_OPAQUE))
    if src_surf is not None:
        src_surf.pm_transform = src.transform
        src_surf.pm_filter = _FILTERS[src_filter]
    mask = None
    if u.mask is not None:
        mask_filter = (flags >> qxl.COMPOSITE_MASK_FILTER_SHIFT) & 7
        mask, mask_surf = _picture(ctx, canvas, u.mask, u.mask_transform, mask_filter,
                                   (flags >> qxl.COMPOSITE_MASK_REPEAT_SHIFT) & 3, False)
        mask.component_alpha = bool(flags & qxl.COMPOSITE_COMPONENT_ALPHA)
        if mask_surf is not None:
            mask_surf.pm_transform = mask.transform
            mask_surf.pm_filter = _FILTERS[mask_filter]
            if mask_surf is src_surf:
                # one pixman image: the mask's settings are the source's too
                src.transform, src.filter, src.repeat = mask.transform, mask.filter, mask.repeat
    whole = np.array([[0, 0, width, height]], np.int32)
    compose.composite(op, src, mask, dest, whole, u.src_origin.x, u.src_origin.y,
                      u.mask_origin.x, u.mask_origin.y, 0, 0, width, height)
    if region.shape[0]:
        blit(canvas, region, dest, d.bbox.left, d.bbox.top, ROP_COPY)

"""Which areas of a client's surfaces hold lossy (JPEG or video) pixels.

Only matters while JPEG is enabled for the client.  spice-server keeps, per
client and surface, the region last drawn from lossy data and, before a
draw that combines its result with pixels that must be exact (logic ROPs,
BLEND, ROP3, COMPOSITE, a surface used as a pattern or a non-PUT source),
sends the lossy part of those areas again losslessly from its canvas.

This implementation makes those decisions when a drawable is queued for the
client rather than when it is marshalled: the drawable has not been rendered
yet, so the server canvas, rendered up to the drawables queued before it,
holds exactly what the client should have there.  Whether an image will be
lossy is predicted with the encoder's own choice (a JPEG candidate counts
as lossy even when it later goes out lossless because the JPEG was bigger);
the prediction errs on the lossy side, which costs an extra lossless resend
at worst.  At send time an image may only be lossy when it was predicted so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spice import qxl, region
from spice.image_encoders import would_be_lossy
from spice.protocol import ImageCompression

if TYPE_CHECKING:
    from spice.display_tree import DrawableItem

LOGIC_ROPS = qxl.SPICE_ROPD_OP_OR | qxl.SPICE_ROPD_OP_AND | qxl.SPICE_ROPD_OP_XOR
# draws whose result stays exact where they draw (no mask): the area turns lossless
_OVERWRITING = frozenset({qxl.QXL_DRAW_FILL, qxl.QXL_DRAW_OPAQUE, qxl.QXL_DRAW_COPY,
                          qxl.QXL_DRAW_BLACKNESS, qxl.QXL_DRAW_WHITENESS, qxl.QXL_DRAW_BLEND,
                          qxl.QXL_DRAW_ROP3, qxl.QXL_DRAW_COMPOSITE})


def src_may_be_lossy(d: qxl.Drawable) -> bool:
    """Whether the draw's source image may be sent lossy (spice-server's
    src_allowed_lossy / the can_lossy argument of fill_bits)."""
    if d.type in (qxl.QXL_DRAW_COPY, qxl.QXL_DRAW_ALPHA_BLEND):
        return True
    if d.type == qxl.QXL_DRAW_OPAQUE:
        return not d.u.rop_descriptor & LOGIC_ROPS
    return False


def _reads_exact_dest(d: qxl.Drawable) -> bool:
    t = d.type
    u = d.u
    if t in (qxl.QXL_DRAW_BLEND, qxl.QXL_DRAW_ROP3, qxl.QXL_DRAW_COMPOSITE):
        return True
    if t == qxl.QXL_DRAW_FILL:
        return bool(u.rop_descriptor & LOGIC_ROPS)
    if t == qxl.QXL_DRAW_STROKE:
        return u.brush.type != qxl.SPICE_BRUSH_TYPE_SOLID and bool(u.fore_mode & LOGIC_ROPS)
    if t == qxl.QXL_DRAW_TEXT:
        rop = 0
        if u.fore_brush.type != qxl.SPICE_BRUSH_TYPE_SOLID:
            rop |= u.fore_mode
        if u.back_brush.type != qxl.SPICE_BRUSH_TYPE_SOLID:
            rop |= u.back_mode
        return bool(rop & LOGIC_ROPS)
    return False


def _surface_sources(d: qxl.Drawable) -> list[tuple[int, bool]]:
    """(surface id, may stay lossy) of every surface the draw reads as an image."""
    u = d.u
    out: list[tuple[int, bool]] = []
    lossy_ok = src_may_be_lossy(d) or d.type == qxl.QXL_DRAW_TRANSPARENT
    for name in ("src_bitmap", "src"):
        img = getattr(u, name, None)
        if isinstance(img, qxl.SurfaceImage):
            out.append((img.surface_id, lossy_ok))
    for name in ("brush", "fore_brush", "back_brush"):
        b = getattr(u, name, None)
        if b is not None and isinstance(b.pattern, qxl.SurfaceImage):
            out.append((b.pattern.surface_id, False))
    for img in (getattr(getattr(u, "mask", None), "bitmap", None),
                getattr(u, "mask", None) if d.type == qxl.QXL_DRAW_COMPOSITE else None):
        if isinstance(img, qxl.SurfaceImage):
            out.append((img.surface_id, False))
    return out


def _has_mask(d: qxl.Drawable) -> bool:
    m = getattr(d.u, "mask", None)
    return isinstance(m, qxl.QMask) and m.bitmap is not None


class LossyAreas:
    """One client's lossy regions, per surface."""

    def __init__(self) -> None:
        self.regions: dict[int, object] = {}

    def get(self, surface_id: int):
        return self.regions.get(surface_id, region.EMPTY)

    def forget_surface(self, surface_id: int) -> None:
        self.regions.pop(surface_id, None)

    def clear(self) -> None:
        self.regions.clear()

    def set_area(self, surface_id: int, area, lossy: bool) -> None:
        cur = self.get(surface_id)
        new = region.union(cur, area) if lossy else region.subtract(cur, area)
        if region.is_empty(new):
            self.regions.pop(surface_id, None)
        else:
            self.regions[surface_id] = new

    def queue_draw(self, item: DrawableItem, compression: ImageCompression,
                   streamed: bool) -> tuple[list[tuple[int, tuple[int, int, int, int]]], bool]:
        """Account for ``item`` being queued.  Returns the areas (surface id,
        rectangle) to resend losslessly before it, and whether its source
        image may go out lossy."""
        d = item.drawable
        sid = item.surface_id
        resend: list[tuple[int, tuple[int, int, int, int]]] = []
        if not self.regions and not src_may_be_lossy(d) and not streamed:
            return resend, False
        drawn = item.region
        if _reads_exact_dest(d):
            hit = region.intersect(self.get(sid), drawn)
            if not region.is_empty(hit):
                resend.append((sid, region.extents(hit)))
        src_lossy = False
        for src_sid, may_stay in _surface_sources(d):
            lossy = self.get(src_sid)
            if region.is_empty(lossy):
                continue
            if may_stay:
                src_lossy = True
            else:
                resend.append((src_sid, region.extents(lossy)))
        for rsid, rect in resend:
            self.set_area(rsid, region.rect(*rect), False)
        can_lossy = src_may_be_lossy(d)
        img = getattr(d.u, "src_bitmap", None)
        if can_lossy and isinstance(img, qxl.BitmapImage):
            src_lossy = src_lossy or would_be_lossy(img, compression, True, item.graduality)
        if streamed:
            self.set_area(sid, drawn, True)
        elif d.type == qxl.QXL_COPY_BITS:
            src = region.translate(drawn, d.u.src_pos.x - d.bbox.left,
                                   d.u.src_pos.y - d.bbox.top)
            self.set_area(sid, drawn, region.intersects(self.get(sid), src))
        elif src_lossy:
            self.set_area(sid, drawn, True)
        elif d.type in _OVERWRITING and not _has_mask(d):
            self.set_area(sid, drawn, False)
        return resend, can_lossy

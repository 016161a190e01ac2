"""The software canvas of one surface: renders QXL drawables in place into the
surface's memory, pixel for pixel as spice-server's canvas does.

Every drawing starts from a destination region -- the bounding box clipped
to the surface, to the clip rectangles and, for the draws that take one, to
a 1-bit mask -- and then fills, copies or composites into each box of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spice import qxl
from spice.canvas import region as rg
from spice.canvas.images import ImageCache, ImageError, bitmap_mask, get_image, surface_pf
from spice.canvas.pixfmt import PF_A1, PF_BPP, PF_DTYPE, Pix, to_argb_array

log = logging.getLogger(__name__)


class DrawError(ValueError):
    """A drawable the reference server would reject or crash on; it is logged
    and not drawn."""


# Temporary images the size of a bounding box (ROP3, COMPOSITE, text masks)
# are refused beyond this many pixels; the reference fails to allocate them.
MAX_TEMP_PIXELS = 1 << 26


def check_temp_size(width: int, height: int) -> None:
    if width * height > MAX_TEMP_PIXELS:
        raise DrawError(f"a {width}x{height} temporary image is too large")


@dataclass(slots=True)
class DrawContext:
    """What one draw call needs besides the destination canvas."""

    surfaces: Callable[[int], SurfaceCanvas | None]
    cache: ImageCache | None
    dest: np.ndarray | None = None  # the memory being drawn into
    cached: set[int] = field(default_factory=set)  # id() of images taken from the cache
    to_cache: set[int] = field(default_factory=set)  # id() of images the server caches

    def localize(self, image: qxl.Image | None) -> None:
        """image_cache_localize: an image whose id the cache holds is drawn
        from the cache, whatever the guest sent this time; a QUIC image of
        640x480 pixels or more is put in the cache."""
        if image is None or self.cache is None:
            return
        if self.cache.hit(image.descriptor.id):
            self.cached.add(id(image))
        elif (isinstance(image, qxl.QuicImage)
              and image.descriptor.width * image.descriptor.height >= 640 * 480):
            self.to_cache.add(id(image))

    def from_cache(self, image: qxl.Image) -> bool:
        return id(image) in self.cached

    def surface(self, image: qxl.Image) -> SurfaceCanvas | None:
        """canvas_get_surface: the canvas behind a surface image."""
        if isinstance(image, qxl.SurfaceImage) and not self.from_cache(image):
            return self.surfaces(image.surface_id)
        return None

    def image(self, image: qxl.Image, want_original: bool, canvas_pf: int) -> Pix:
        """canvas_get_image for anything that is not a live surface."""
        if image is None:
            raise ImageError("drawable without its image")
        if isinstance(image, qxl.SurfaceImage) and not self.from_cache(image):
            raise ImageError(f"surface {image.surface_id} does not exist")
        return get_image(image, want_original, canvas_pf, self.cache, self.from_cache(image),
                         self.dest, id(image) in self.to_cache)

    def source(self, image: qxl.Image, want_original: bool, canvas_pf: int) -> Pix:
        """A live surface's own image, else the decoded image."""
        surf = self.surface(image)
        if surf is not None:
            return surf.pix
        return self.image(image, want_original, canvas_pf)

    def touch(self, image: qxl.Image | None, canvas_pf: int) -> None:
        """canvas_touch_image: a skipped draw still caches a QXL_IMAGE_CACHE
        image."""
        if image is None or isinstance(image, qxl.SurfaceImage) or self.from_cache(image):
            return
        forced = id(image) in self.to_cache
        if (image.descriptor.flags & qxl.QXL_IMAGE_CACHE or forced) and self.cache is not None:
            try:
                get_image(image, True, canvas_pf, self.cache, False, None, forced)
            except ImageError as exc:
                log.debug("touching image %#x: %s", image.descriptor.id, exc)

    def touch_brush(self, brush: qxl.Brush, canvas_pf: int) -> None:
        if brush.type == qxl.SPICE_BRUSH_TYPE_PATTERN:
            self.touch(brush.pattern, canvas_pf)


def _mask_region(ctx: DrawContext, canvas: SurfaceCanvas, dest: np.ndarray, mask: qxl.QMask,
                 x: int, y: int) -> np.ndarray:
    """canvas_mask_pixman: keep the part of ``dest`` where the 1-bit mask
    placed with its ``pos`` at (x, y) is set (clear, with INVERS)."""
    if mask.bitmap is None:
        return dest
    invert = bool(mask.flags & qxl.SPICE_MASK_FLAGS_INVERS)
    surf = ctx.surface(mask.bitmap)
    if surf is not None:
        pix = surf.pix  # the surface's bytes read as 1-bit pixels, as the reference does
    elif ctx.from_cache(mask.bitmap):
        pix = ctx.cache.get(mask.bitmap.descriptor.id)
    elif isinstance(mask.bitmap, qxl.BitmapImage):
        pix = bitmap_mask(mask.bitmap)
    else:
        raise ImageError("mask image is neither a bitmap nor a surface")
    data, top, stride = pix.as_bytes()
    mx, my = mask.pos.x, mask.pos.y
    ex1, ey1, ex2, ey2 = rg.extents(dest)
    # The dest extents in mask pixels, clipped to the mask, left edge rounded
    # down to 32 pixels as the reference does before building the region.
    ex1, ex2 = ex1 - (x - mx), ex2 - (x - mx)
    ey1, ey2 = ey1 - (y - my), ey2 - (y - my)
    ex1 = max(ex1, 0)
    ex2 = min(ex2, pix.w)
    ex2 = max(ex2, ex1)
    ey1 = max(ey1, 0)
    ey2 = min(ey2, pix.h)
    ey2 = max(ey2, ey1)
    ex1 &= ~0x1F
    sub_w, sub_h = ex2 - ex1, ey2 - ey1
    if sub_w > 0 and sub_h > 0:
        bits = rg.region_from_a1(data, top + ey1 * stride + ex1 // 8, stride, sub_w, sub_h)
    else:
        bits = rg.EMPTY
    if invert:
        bits = rg.subtract(rg.rect_region(0, 0, sub_w, sub_h), bits)
    bits = rg.translate(bits, -(mx - ex1) + x, -(my - ey1) + y)
    return rg.intersect(dest, bits)


class SurfaceCanvas:
    """The canvas of one surface, drawing into ``data`` (the whole
    ``height * abs(stride)`` block from its lowest address; a negative stride
    puts the top row last)."""

    def __init__(self, width: int, height: int, stride: int, format: int,
                 data: np.ndarray) -> None:
        pf = surface_pf(format)
        if width <= 0 or height <= 0:
            raise ValueError(f"bad surface size {width}x{height}")
        bpp = PF_BPP[pf]
        if abs(stride) * 8 < width * bpp:
            raise ValueError(f"stride {stride} too small for {width} pixels of {bpp} bits")
        block = np.asarray(data)
        if block.dtype != np.uint8 or block.ndim != 1:
            raise ValueError("surface data must be a 1-D uint8 array")
        if block.size < height * abs(stride):
            raise ValueError(f"surface data of {block.size} bytes, {height * abs(stride)} needed")
        block = block[:height * abs(stride)]
        itemsize = np.dtype(PF_DTYPE[pf]).itemsize
        # The reference cannot build a canvas whose rows are not whole pixels
        # (pixman wants 4-byte strides); such a surface keeps its memory but
        # is not drawn into.
        self.drawable = stride % itemsize == 0 and block.ctypes.data % itemsize == 0
        self.width = width
        self.height = height
        self.stride = stride
        self.format = format
        self.data = block
        if self.drawable:
            elems = block.view(PF_DTYPE[pf])
            estride = stride // itemsize
        else:
            elems = block
            estride = stride
        top = 0 if stride > 0 else (height - 1) * -estride
        self.pix = Pix(pf, width, height, elems, top, estride)
        self.region = rg.rect_region(0, 0, width, height)
        # The reference sets a transform and a filter on a surface's pixman
        # image when it samples it, and some later uses of that image do not
        # set them again; what was left is tracked here (None = identity,
        # 0 = nearest).
        self.pm_transform: tuple[int, int, int, int, int, int] | None = None
        self.pm_filter = 0

    # -- public API ----------------------------------------------------------

    def draw(self, drawable: qxl.Drawable, surfaces: Callable[[int], SurfaceCanvas | None],
             cache: ImageCache | None = None) -> None:
        """Render one drawable (clip = drawable.clip, bbox = drawable.bbox).
        ``surfaces`` resolves surface ids for SurfaceImage sources; ``cache``
        is the display channel's image cache (None: no caching).  Drawables
        the reference would reject or crash on are logged and skipped."""
        from spice.canvas import draws

        if not self.drawable:
            log.debug("surface %d: stride %d is not whole pixels, drawable not drawn",
                      drawable.surface_id, self.stride)
            return
        ctx = DrawContext(surfaces, cache, self.data)
        try:
            draws.localize(ctx, drawable)
            draws.dispatch(self, ctx, drawable)
        except (ImageError, DrawError) as exc:
            log.debug("drawable type %d on surface %d not drawn: %s",
                      drawable.type, drawable.surface_id, exc)
        except Exception:  # a canvas bug must not take the worker down
            log.exception("canvas failed on drawable type %d, surface %d",
                          drawable.type, drawable.surface_id)

    def read_pixels(self, rect: qxl.Rect) -> np.ndarray:
        """A top-down (h, w) uint32 copy of ``rect`` (clipped to the surface):
        32-bit surfaces as stored, 16-bit widened to xRGB by bit replication,
        8_A and 1_A as alpha << 24."""
        raw = self.read_raw(rect)
        if self.pix.fmt in (0, 1):
            return raw
        return to_argb_array(self.pix.fmt, raw, self.pix.fmt in (2, 3))

    def read_raw(self, rect: qxl.Rect) -> np.ndarray:
        """A top-down copy of ``rect`` in the surface's own pixel type (uint32,
        uint16 or uint8; 1_A surfaces as 0/1 per pixel)."""
        top, left = max(rect.top, 0), max(rect.left, 0)
        bottom, right = min(rect.bottom, self.height), min(rect.right, self.width)
        h, w = max(bottom - top, 0), max(right - left, 0)
        if not self.drawable:
            size = np.dtype(PF_DTYPE[self.pix.fmt]).itemsize
            out = np.zeros((h, w), PF_DTYPE[self.pix.fmt])
            for yy in range(h):
                off = self.pix.top + (top + yy) * self.stride + left * size
                out[yy] = self.data[off:off + w * size].copy().view(PF_DTYPE[self.pix.fmt])
            return out
        if self.pix.fmt == PF_A1:
            data, t, s = self.pix.as_bytes()
            out = np.zeros((h, w), np.uint8)
            for yy in range(h):
                row = data[t + (top + yy) * s:t + (top + yy) * s + (right + 7) // 8]
                out[yy] = np.unpackbits(row, bitorder="little")[left:right]
            return out
        return self.pix.rows()[top:top + h, left:left + w].copy()

    def fill_rect(self, rect: qxl.Rect, color: int) -> None:
        """Fill ``rect`` (clipped) with a raw pixel value, as canvas clear does."""
        from spice.canvas import raster

        if self.pix.fmt == PF_A1 or not self.drawable:
            return
        r = rg.intersect(rg.rect_region(rect.left, rect.top, rect.width, rect.height),
                         self.region)
        mask = (1 << PF_BPP[self.pix.fmt]) - 1
        raster.fill_rects(self.pix.data, self.pix.top, self.pix.stride, r, color & mask,
                          raster.ROP_COPY)

    def put_image(self, rect: qxl.Rect, pixels: np.ndarray,
                  clip: np.ndarray | None = None) -> None:
        """canvas_put_image: draw top-down xRGB ``pixels`` into ``rect``,
        scaled with nearest-neighbour sampling when the sizes differ, inside
        ``clip`` (int32 (n, 4) top, left, bottom, right) if given."""
        from spice.canvas import compose

        if self.pix.fmt == PF_A1 or not self.drawable:
            return
        src = np.ascontiguousarray(pixels, dtype=np.uint32)
        sh, sw = src.shape
        pix = Pix(1, sw, sh, src.reshape(-1), 0, sw)
        dest = self.region
        if clip is not None:
            dest = rg.intersect(dest, rg.from_boxes(np.asarray(clip, np.int32)[:, [1, 0, 3, 2]]))
        compose.put_image(self, pix, rect, dest)

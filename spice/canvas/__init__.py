"""The server's software canvas: renders QXL drawables into surface memory
exactly as spice-server's (spice-common sw_canvas + pixman) does.

Public API:

- :class:`SurfaceCanvas` ``(width, height, stride, format, data)`` with
  ``draw(drawable, surfaces, cache=None)``, ``read_pixels(rect)``,
  ``read_raw(rect)``, ``fill_rect(rect, color)`` and
  ``put_image(rect, pixels, clip=None)``;
- :class:`ImageCache`, the display channel's image cache the draws consult;
- :func:`bitmap_to_argb32` ``(image) -> (h, w) uint32``.
"""

from spice.canvas.images import ImageCache, bitmap_to_argb32
from spice.canvas.surface import SurfaceCanvas

__all__ = ["ImageCache", "SurfaceCanvas", "bitmap_to_argb32"]

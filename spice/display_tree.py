"""Drawables not yet rendered into the server's canvases ("current").

spice-server keeps a per-surface tree of pending drawables so it can drop
drawables that later ones cover before they are rendered or sent
(occlusion).  This module is that seam.  The present implementation keeps
the pending drawables in command order and renders them lazily, in that
order, when pixels are needed: before UPDATE_AREA, before a surface is
read for a client, on surface destruction and when more than
:data:`NUM_DRAWABLES` are pending.  Rendering in command order is always
correct across surfaces (a drawable reading surface B sees exactly what
earlier commands left there), at the cost of rendering drawables an
occlusion tree would have skipped.

A :class:`DrawableItem` is shared by the pending queue and every client
pipe that queued it; the guest gets its resource back (``release_resource``)
when the last of them lets go.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable

from spice.qxl import BitmapImage, Command, Drawable, Rect

log = logging.getLogger(__name__)

NUM_DRAWABLES = 1000  # spice-server's drawable pool


class DrawableItem:
    """One QXL_CMD_DRAW held by the server."""

    __slots__ = ("cmd", "drawable", "surface_id", "deps", "area", "self_image", "refs",
                 "_release", "released", "rendered", "mm_time")

    def __init__(self, cmd: Command, drawable: Drawable, area: Rect,
                 release: Callable[[Command], None]) -> None:
        self.cmd = cmd
        self.drawable = drawable
        self.surface_id = drawable.surface_id
        self.deps = tuple(s for s in drawable.surfaces_dest if s != -1)
        self.area = area  # bbox clipped to the clip rectangles' extent
        self.self_image: BitmapImage | None = None
        self.refs = 1
        self._release = release
        self.released = False
        self.rendered = False
        self.mm_time = drawable.mm_time

    def ref(self) -> DrawableItem:
        self.refs += 1
        return self

    def unref(self) -> None:
        self.refs -= 1
        if self.refs == 0 and not self.released:
            self.released = True
            self._release(self.cmd)


class CurrentDraws:
    """Pending drawables of every surface of one display channel."""

    def __init__(self, render: Callable[[DrawableItem], None]) -> None:
        self._render = render
        self._queue: deque[DrawableItem] = deque()
        self._per_surface: Counter[int] = Counter()
        self._readers: Counter[int] = Counter()

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: DrawableItem) -> None:
        """Take over the caller's reference to ``item``."""
        self._queue.append(item)
        self._per_surface[item.surface_id] += 1
        for s in item.deps:
            self._readers[s] += 1
        while len(self._queue) > NUM_DRAWABLES:
            self._render_next()

    def _pop(self) -> DrawableItem:
        item = self._queue.popleft()
        self._per_surface[item.surface_id] -= 1
        for s in item.deps:
            self._readers[s] -= 1
        return item

    def _render_next(self) -> None:
        item = self._pop()
        try:
            self._render(item)
        finally:
            item.unref()

    def pending_for(self, surface_id: int) -> int:
        return self._per_surface[surface_id]

    def flush_surface(self, surface_id: int) -> None:
        """Render until no pending drawable targets ``surface_id``."""
        while self._per_surface[surface_id] > 0:
            self._render_next()

    def flush_all(self) -> None:
        while self._queue:
            self._render_next()

    def render_oldest(self, count: int) -> int:
        n = 0
        while self._queue and n < count:
            self._render_next()
            n += 1
        return n

    def drop_surface(self, surface_id: int) -> None:
        """The surface goes away: render what reads it, forget what draws on it."""
        while self._readers[surface_id] > 0:
            self._render_next()
        if self._per_surface[surface_id] == 0:
            return
        keep: deque[DrawableItem] = deque()
        dropped = []
        for item in self._queue:
            (dropped if item.surface_id == surface_id else keep).append(item)
        self._queue = keep
        for item in dropped:
            self._per_surface[item.surface_id] -= 1
            for s in item.deps:
                self._readers[s] -= 1
            item.unref()

    def clear(self) -> None:
        """Forget everything without rendering (device reset)."""
        items = list(self._queue)
        self._queue.clear()
        self._per_surface.clear()
        self._readers.clear()
        for item in items:
            item.unref()

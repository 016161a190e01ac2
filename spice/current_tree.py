"""Pending drawables and occlusion culling ("current" in spice-server).

Drawables the worker has pulled stay pending until their pixels are
needed -- before UPDATE_AREA, before a surface is read for a client, on
surface destruction, or when more than :data:`NUM_DRAWABLES` are pending --
and are then rendered into the server's canvases in command order, which
keeps every cross-surface dependency right.

Each surface also keeps its pending drawables in an ordered list, with
*shadows*: areas of the surface that a pending drawable will read (the
source of a COPY_BITS, or the whole surface when a drawable uses it as an
image).  When an opaque drawable (:func:`~spice.display_tree.covers_destination`
and the guest's OPAQUE effect) arrives, its region is excluded from the
older drawables of its surface, newest first:

* each older drawable's visible region shrinks; one left with nothing
  visible is culled: dropped from the tree unrendered and from every client
  pipe it is still queued in, and given back to the guest;
* passing a shadow removes the shadow's area from what is being excluded,
  so older drawables keep the pixels a pending reader still needs
  (spice-server's Shadow "on hold" regions, conservatively: an area stays
  protected until its reader is rendered or culled);
* passing an opaque drawable removes its region too: everything older was
  already excluded there when it arrived.

Only pending drawables are culled: once rendered, a drawable still queued
for a client is sent, as in spice-server.  The counters in
:attr:`CurrentTree.stats` feed the server's statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from spice import qxl, region
from spice.display_tree import NUM_DRAWABLES, DrawableItem

log = logging.getLogger(__name__)


class Shadow:
    """An area of ``surface_id`` that the pending drawable ``reader`` reads."""

    __slots__ = ("surface_id", "region", "reader", "seq")

    def __init__(self, surface_id: int, rgn: np.ndarray, reader: DrawableItem, seq: int) -> None:
        self.surface_id = surface_id
        self.region = rgn
        self.reader = reader
        self.seq = seq


class TreeStats:
    def __init__(self) -> None:
        self.added = 0
        self.culled = 0  # drawables removed unrendered because later ones covered them
        self.culled_pixels = 0  # pixels those drawables would have drawn
        self.culled_unsent = 0  # client pipe items dropped with them
        self.rendered = 0

    def as_dict(self) -> dict[str, int]:
        return {"tree_added": self.added, "culled_drawables": self.culled,
                "culled_pixels": self.culled_pixels, "culled_pipe_items": self.culled_unsent,
                "tree_rendered": self.rendered}


class CurrentTree:
    """The pending drawables of every surface of one display channel.

    ``render(item)`` draws an item into its surface's canvas; ``on_cull(item)``
    drops it from the client pipes (returning how many queued messages went
    away); ``on_leave(item)`` is told about every item leaving the tree,
    rendered or culled (the stream detector's trace)."""

    def __init__(self, render: Callable[[DrawableItem], None],
                 on_cull: Callable[[DrawableItem], int] | None = None,
                 on_leave: Callable[[DrawableItem], None] | None = None,
                 surface_size: Callable[[int], tuple[int, int]] | None = None) -> None:
        self._render = render
        self._on_cull = on_cull
        self._on_leave = on_leave
        self._surface_size = surface_size
        self._queue: dict[int, DrawableItem] = {}  # seq -> item, command order
        self._entries: dict[int, dict[int, DrawableItem | Shadow]] = {}  # surface -> seq -> entry
        self._pending: dict[int, int] = {}  # surface -> pending drawables drawing on it
        self._readers: dict[int, int] = {}  # surface -> pending drawables reading it
        self._seq = 0
        self.stats = TreeStats()

    def __len__(self) -> int:
        return len(self._queue)

    def pending_for(self, surface_id: int) -> int:
        return self._pending.get(surface_id, 0)

    def is_pending(self, item: DrawableItem) -> bool:
        return self._queue.get(item.seq) is item

    # -- adding ---------------------------------------------------------------------

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, item: DrawableItem) -> None:
        """Take over the caller's reference to ``item``, culling what it covers."""
        sid = item.surface_id
        entries = self._entries.setdefault(sid, {})
        self.stats.added += 1
        for dep in item.deps:
            self._add_shadow(item, dep, self._whole_surface(dep))
        d = item.drawable
        if d.type == qxl.QXL_COPY_BITS:
            src = region.translate(item.region, d.u.src_pos.x - d.bbox.left,
                                   d.u.src_pos.y - d.bbox.top)
            self._add_shadow(item, sid, src)
        if item.opaque:
            self._exclude(entries, item.region)
        self._seq += 1
        item.seq = self._seq
        entries[item.seq] = item
        self._queue[item.seq] = item
        self._pending[sid] = self._pending.get(sid, 0) + 1
        while len(self._queue) > NUM_DRAWABLES:
            self._render_next()

    def _whole_surface(self, surface_id: int) -> np.ndarray:
        # a drawable reading another surface as an image is protected over the
        # whole of it: the read area the guest declares is not trusted
        w, h = self._surface_size(surface_id) if self._surface_size else (1 << 30, 1 << 30)
        return region.rect(0, 0, h, w)

    def _add_shadow(self, reader: DrawableItem, surface_id: int, rgn: np.ndarray) -> None:
        if region.is_empty(rgn):
            return
        sh = Shadow(surface_id, rgn, reader, self._next())
        self._entries.setdefault(surface_id, {})[sh.seq] = sh
        reader.shadows.append(sh)
        self._readers[surface_id] = self._readers.get(surface_id, 0) + 1

    def _exclude(self, entries: dict[int, DrawableItem | Shadow], rgn: np.ndarray) -> None:
        excl = rgn
        ext = region.extents(excl)
        covered: list[DrawableItem] = []
        # (the extents' overlap test is written out: this loop runs for every
        # pending entry a new drawable passes)
        for entry in reversed(entries.values()):
            if isinstance(entry, Shadow):
                e = region.extents(entry.region)
                if ext[0] < e[2] and e[0] < ext[2] and ext[1] < e[3] and e[1] < ext[3]:
                    excl = region.subtract(excl, entry.region)
                    if region.is_empty(excl):
                        break
                    ext = region.extents(excl)
                continue
            e = entry.vis_ext
            if not (ext[0] < e[2] and e[0] < ext[2] and ext[1] < e[3] and e[1] < ext[3]):
                continue
            vis = region.subtract(entry.vis, excl)
            if vis is not entry.vis:
                entry.vis = vis
                entry.vis_ext = region.extents(vis)
                if region.is_empty(vis):
                    covered.append(entry)
            if entry.opaque:
                excl = region.subtract(excl, entry.region)
                if region.is_empty(excl):
                    break
                ext = region.extents(excl)
        for item in covered:
            self._cull(item)

    def _cull(self, item: DrawableItem) -> None:
        if self._queue.get(item.seq) is not item:  # (is_pending)
            return
        self._unlink(item)
        item.culled = True
        self.stats.culled += 1
        self.stats.culled_pixels += region.area(item.region)
        if self._on_cull is not None:
            self.stats.culled_unsent += self._on_cull(item)
        if self._on_leave is not None:
            self._on_leave(item)
        item.unref()

    # -- leaving -----------------------------------------------------------------------

    def _unlink(self, item: DrawableItem) -> None:
        del self._queue[item.seq]
        sid = item.surface_id
        self._entries[sid].pop(item.seq, None)
        self._pending[sid] -= 1
        for sh in item.shadows:
            ent = self._entries.get(sh.surface_id)
            if ent is not None:
                ent.pop(sh.seq, None)
            self._readers[sh.surface_id] -= 1
        item.shadows = []

    def _render_next(self) -> None:
        item = next(iter(self._queue.values()))
        self._unlink(item)
        self.stats.rendered += 1
        try:
            self._render(item)
        finally:
            if self._on_leave is not None:
                self._on_leave(item)
            item.unref()

    def flush_surface(self, surface_id: int) -> None:
        """Render until no pending drawable targets ``surface_id``."""
        while self._pending.get(surface_id, 0) > 0:
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
        while self._readers.get(surface_id, 0) > 0:
            self._render_next()
        if not self._pending.get(surface_id, 0):
            return
        for entry in list(self._entries.get(surface_id, {}).values()):
            if isinstance(entry, DrawableItem):
                self._unlink(entry)
                entry.unref()

    def clear(self) -> None:
        """Forget everything without rendering (device reset)."""
        items = list(self._queue.values())
        self._queue.clear()
        self._entries.clear()
        self._pending.clear()
        self._readers.clear()
        for item in items:
            item.shadows = []
            item.unref()

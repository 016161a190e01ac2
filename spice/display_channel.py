"""The display channel of one QXL device: surfaces, pending drawables, clients.

Runs on the device's red worker thread.  Commands pulled from the device
arrive in :meth:`DisplayChannel.process`.  A drawable first meets the
stream detector (:mod:`spice.video_stream`), then goes to every active
client's pipe (with the lossy-area bookkeeping of
:mod:`spice.display_lossy` while JPEG is on) and to the current tree
(:mod:`spice.current_tree`), where it may cull older drawables it covers
and waits to be rendered lazily into the surfaces' canvases.  A drawable
goes back to the guest (``release_resource``) once it is rendered or
culled and every client has sent or dropped it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from spice import qxl, region
from spice.channel import ChannelStats
from spice.current_tree import CurrentTree
from spice.display_client import DisplayChannelClient, DrawPipeItem, ImagePipeItem
from spice.display_tree import DrawableItem
from spice.image_encoders import EncoderStats
from spice.main_channel import mm_time
from spice.protocol import DisplayCap, MsgDisplay
from spice.surfaces import (
    SURFACE_TO_BITMAP_FMT,
    RedSurface,
    make_image_cache,
    rgb32_alpha_state,
    valid_surface,
)
from spice.video_stream import StreamManager

if TYPE_CHECKING:
    from spice.link import LinkedStream
    from spice.worker import RedWorker

log = logging.getLogger(__name__)

# The display caps the device is told about (guest_set_client_capabilities).
_GUEST_CAPS = (DisplayCap.SIZED_STREAM, DisplayCap.MONITORS_CONFIG, DisplayCap.COMPOSITE,
               DisplayCap.A8_SURFACE)
CAPS_BYTES = 58  # SPICE_CAPABILITIES_SIZE in QXLRom/QXLRam


class DisplayStats:
    def __init__(self) -> None:
        self.commands = 0
        self.draws = 0
        self.renders = 0
        self.releases = 0
        self.guest_errors = 0


class DisplayChannel:
    def __init__(self, worker: RedWorker) -> None:
        self.worker = worker
        self.loop = worker.loop
        self.qxl = worker.qxl
        self.index = worker.index
        self.num_surfaces = worker.init_info.num_surfaces
        self.surfaces: dict[int, RedSurface] = {}
        self.current = CurrentTree(self._render, self._cull_from_pipes,
                                   surface_size=self._surface_size)
        self.encoder_stats = EncoderStats()
        self.streams = StreamManager(self, worker.server.options.streaming_video_value)
        self.clients: list[DisplayChannelClient] = []
        self.monitors_config: qxl.MonitorsConfig | None = None
        self.driver_monitors_config = False
        self.stats = DisplayStats()
        self.image_cache = make_image_cache()
        self._uid = 0
        self._generation = 0

    def next_uid(self) -> int:
        self._uid = (self._uid + 1) & 0xFFFFFFFF
        return self._uid

    # -- resources --------------------------------------------------------------------

    def release(self, cmd: qxl.Command) -> None:
        self.stats.releases += 1
        try:
            self.qxl.release_resource(cmd.release)
        except Exception:
            log.exception("display %d: release_resource failed", self.index)

    def _render(self, item: DrawableItem) -> None:
        surface = self.surfaces.get(item.surface_id)
        if surface is None:
            return
        canvas = surface.get_canvas()
        item.rendered = True
        if canvas is None:
            return
        self.stats.renders += 1
        try:
            canvas.draw(item.drawable, self._canvas_of, self.image_cache)
        except Exception:
            self.stats.guest_errors += 1
            log.exception("display %d: rendering a type %d drawable failed", self.index,
                          item.drawable.type)
        a = item.area
        surface.add_dirty((a.top, a.left, a.bottom, a.right))

    def _surface_size(self, surface_id: int) -> tuple[int, int]:
        s = self.surfaces.get(surface_id)
        return (s.width, s.height) if s is not None else (0, 0)

    def _cull_from_pipes(self, item: DrawableItem) -> int:
        """A pending drawable was covered by a later one: unqueue it."""
        n = 0
        for dcc, pi in item.pipe_items:
            if dcc.unqueue(pi):
                n += 1
        item.pipe_items = []
        return n

    def _canvas_of(self, surface_id: int):
        surface = self.surfaces.get(surface_id)
        return surface.get_canvas() if surface is not None else None

    # -- clients ------------------------------------------------------------------------

    def add_client(self, linked: LinkedStream, session, stats: ChannelStats,
                   low_bandwidth: bool = False) -> DisplayChannelClient:
        dcc = DisplayChannelClient(self, linked, session, stats, low_bandwidth)
        self.clients.append(dcc)
        self._tell_guest_caps()
        return dcc

    def client_disconnected(self, dcc: DisplayChannelClient) -> None:
        if dcc in self.clients:
            self.clients.remove(dcc)
        self._tell_guest_caps()
        self.worker.client_gone(dcc)

    def _tell_guest_caps(self) -> None:
        caps = bytearray(CAPS_BYTES)
        live = [c for c in self.clients if c.connected]
        if live:
            for cap in _GUEST_CAPS:
                if all(c.test_cap(cap) for c in live):
                    caps[cap // 8] |= 1 << (cap % 8)
        try:
            self.qxl.set_client_capabilities(bool(live), bytes(caps))
        except Exception:
            log.exception("display %d: set_client_capabilities failed", self.index)

    def start_client(self, dcc: DisplayChannelClient) -> None:
        """DISPLAY_INIT arrived: queue the current screen, then go live."""
        dcc.messages_window = 0
        primary = self.surfaces.get(0)
        if primary is not None:
            self.current.flush_surface(0)
            dcc.pipe_add_empty(MsgDisplay.INVAL_ALL_PALETTES)
            dcc.queue_surface_create(primary)
            self.queue_surface_image(dcc, primary)
            dcc.queue_monitors_config()
            dcc.pipe_add_empty(MsgDisplay.MARK)
        dcc.active = True
        self.streams.start_client(dcc)
        dcc.push()

    def catch_up(self, dcc: DisplayChannelClient) -> None:
        """A lagging client drained its socket: bring it to the present."""
        for sid, gen in list(dcc.client_surfaces.items()):
            s = self.surfaces.get(sid)
            if s is None or s.generation != gen:
                dcc.queue_surface_destroy(sid)
        order = sorted(self.surfaces, key=lambda sid: (sid != 0, sid))
        for sid in order:
            s = self.surfaces[sid]
            dirty = dcc.lag_dirty.get(sid)
            if sid not in dcc.client_surfaces:
                if sid == 0 or dirty is not None:
                    self.current.flush_surface(sid)
                    dcc.queue_surface_create(s)
                    self.queue_surface_image(dcc, s)
            elif dirty is not None:
                self.current.flush_surface(sid)
                self.queue_surface_image(dcc, s, tuple(dirty))
        dcc.queue_monitors_config()
        dcc.lag_dirty.clear()
        dcc.lagging = False
        log.info("%s: caught up", dcc.name)
        dcc.push()

    def queue_surface_image(self, dcc: DisplayChannelClient, s: RedSurface,
                            rect: tuple[int, int, int, int] | None = None) -> None:
        fmt = SURFACE_TO_BITMAP_FMT.get(s.format)
        if fmt is None:
            log.warning("display %d: surface %d format %d cannot be sent as an image",
                        self.index, s.id, s.format)
            return
        top, left, bottom, right = rect if rect is not None else (0, 0, s.height, s.width)
        top, left = max(0, top), max(0, left)
        bottom, right = min(s.height, bottom), min(s.width, right)
        if bottom <= top or right <= left:
            return
        data = s.read_area(top, left, bottom, right)
        flags = 0
        if not s.is_primary and fmt == qxl.SPICE_BITMAP_FMT_32BIT:
            state = rgb32_alpha_state(data)
            if state == "all":
                flags = qxl.SPICE_IMAGE_FLAGS_HIGH_BITS_SET
            elif state == "some":
                fmt = qxl.SPICE_BITMAP_FMT_RGBA
        dcc.pipe_add(ImagePipeItem(s.id, left, top, right - left, bottom - top, fmt, flags, data))
        if dcc.lossy.regions:
            dcc.lossy.set_area(s.id, region.rect(top, left, bottom, right), False)

    def _ensure_on_client(self, dcc: DisplayChannelClient, sid: int) -> None:
        s = self.surfaces.get(sid)
        if s is None or dcc.client_surfaces.get(sid) == s.generation:
            return
        dcc.queue_surface_create(s)
        self.current.flush_surface(sid)
        self.queue_surface_image(dcc, s)

    def _pipes_add_drawable(self, item: DrawableItem) -> None:
        for dcc in self.clients:
            if not dcc.active or not dcc.connected:
                continue
            if dcc.lagging:
                a = item.area
                dcc.mark_dirty(item.surface_id, (a.top, a.left, a.bottom, a.right))
                continue
            for dep in item.deps:
                if dep != item.surface_id:
                    self._ensure_on_client(dcc, dep)
            self._ensure_on_client(dcc, item.surface_id)
            can_lossy = False
            if dcc.enable_jpeg:
                can_lossy = self._track_lossy(dcc, item)
            pi = DrawPipeItem(item, can_lossy)
            item.pipe_items.append((dcc, pi))
            dcc.pipe_add(pi)

    def _track_lossy(self, dcc: DisplayChannelClient, item: DrawableItem) -> bool:
        """Lossy areas the drawable must not build on go out again losslessly
        first; returns whether its source image may be lossy."""
        streamed = item.stream is not None and item.stream.id in dcc.stream_agents
        resend, can_lossy = dcc.lossy.queue_draw(item, dcc.image_compression, streamed)
        for sid, rect in resend:
            s = self.surfaces.get(sid)
            if s is not None:
                self.current.flush_all()  # the canvas as it was just before this drawable
                self.queue_surface_image(dcc, s, rect)
        return can_lossy

    def active_clients(self) -> list[DisplayChannelClient]:
        return [c for c in self.clients if c.active and c.connected and not c.lagging]

    def max_pipe_size(self) -> int:
        """The longest pipe among the clients that may hold the worker back
        (asked before every command)."""
        n = 0
        for c in self.clients:
            if c.active and not c.lagging and len(c.pipe) > n:
                n = len(c.pipe)
        return n

    def push_all(self, now: float) -> None:
        for dcc in list(self.clients):
            if dcc.connected:
                dcc.check_lag(now)
                dcc.push()

    # -- surfaces ----------------------------------------------------------------------

    def _new_surface(self, sid: int, width: int, height: int, stride: int, fmt: int, data,
                     keep_data: bool, primary: bool, cmd: qxl.Command | None) -> RedSurface | None:
        if not valid_surface(width, height, stride, fmt):
            self.stats.guest_errors += 1
            log.warning("display %d: invalid surface %d (%dx%d stride %d format %d)", self.index,
                        sid, width, height, stride, fmt)
            return None
        if data is None or data.size < height * abs(stride):
            self.stats.guest_errors += 1
            log.warning("display %d: surface %d memory too small", self.index, sid)
            return None
        self._generation += 1
        s = RedSurface(sid, width, height, stride, fmt, data.reshape(-1).view("u1"),
                       is_primary=primary, create_cmd=cmd, generation=self._generation)
        if not keep_data:
            s.clear()
        self.surfaces[sid] = s
        return s

    def _destroy_surface(self, sid: int) -> None:
        s = self.surfaces.get(sid)
        if s is None:
            return
        self.current.drop_surface(sid)
        for dcc in self.clients:
            dcc.drop_surface_draws(sid)
            if not dcc.lagging:
                dcc.queue_surface_destroy(sid)
        del self.surfaces[sid]
        if s.create_cmd is not None:
            self.release(s.create_cmd)

    def create_primary(self, create: qxl.SurfaceCreate) -> bool:
        if 0 in self.surfaces:
            log.warning("display %d: primary surface created twice", self.index)
            self._destroy_surface(0)
        keep = bool(create.flags & qxl.QXL_SURF_FLAG_KEEP_DATA)
        s = self._new_surface(0, create.width, create.height, create.stride, create.format,
                              create.data, keep, True, None)
        if s is None:
            return False
        old_max = self.monitors_config.max_allowed if self.monitors_config else 1
        self.monitors_config = qxl.MonitorsConfig(
            max_allowed=old_max, heads=[qxl.Head(0, 0, s.width, s.height, 0, 0, 0)])
        for dcc in self.clients:
            if not dcc.active or dcc.lagging:
                continue
            dcc.queue_surface_create(s)
            if keep:
                self.queue_surface_image(dcc, s)
            if not self.driver_monitors_config:
                dcc.queue_monitors_config()
            dcc.pipe_add_empty(MsgDisplay.MARK)
            dcc.push()
        return True

    def destroy_surface_wait(self, sid: int) -> None:
        """spice-server's display_channel_destroy_surface_wait: afterwards
        nothing pending involves the surface (drawables reading it are
        rendered, its own pending and queued drawables are dropped), so the
        guest may reuse its memory.  The surface itself stays."""
        if sid not in self.surfaces:
            return
        self.current.drop_surface(sid)
        for dcc in self.clients:
            dcc.drop_surface_draws(sid)

    def destroy_primary(self) -> None:
        self.streams.stop_all()
        self.destroy_surface_wait(0)
        self._destroy_surface(0)

    def destroy_surfaces(self) -> None:
        self.streams.forget_all()
        for sid in sorted(self.surfaces, reverse=True):
            self._destroy_surface(sid)
        for dcc in self.clients:
            if dcc.active and not dcc.lagging:
                dcc.pipe_add_empty(MsgDisplay.INVAL_ALL_PALETTES)
                dcc.pipe_add_empty(MsgDisplay.STREAM_DESTROY_ALL)

    def flush_all_surfaces(self) -> None:
        self.current.flush_all()

    def update_area(self, sid: int, area: qxl.Rect, clear_dirty: bool) -> list[qxl.Rect]:
        s = self.surfaces.get(sid)
        if s is None:
            self.stats.guest_errors += 1
            log.warning("display %d: update_area on missing surface %d", self.index, sid)
            return []
        self.current.flush_surface(sid)
        out = []
        rest = []
        for t, left, b, r in s.dirty:
            it = (max(t, area.top), max(left, area.left), min(b, area.bottom), min(r, area.right))
            if it[0] < it[2] and it[1] < it[3]:
                out.append(qxl.Rect(*it))
                if clear_dirty and (t, left, b, r) != it:
                    rest.append((t, left, b, r))
            elif clear_dirty:
                rest.append((t, left, b, r))
        if clear_dirty:
            s.dirty = rest
            return out
        return []

    def set_monitors_config(self, config: qxl.MonitorsConfig) -> None:
        self.driver_monitors_config = True
        if not config.heads:
            log.warning("display %d: ignoring an empty monitors config", self.index)
            return
        if len(config.heads) > config.max_allowed:
            log.warning("display %d: monitors config count > max_allowed", self.index)
            return
        self.monitors_config = config
        for dcc in self.clients:
            if dcc.active and not dcc.lagging:
                dcc.queue_monitors_config()

    # -- commands --------------------------------------------------------------------------

    def process(self, cmd: qxl.Command) -> None:
        self.stats.commands += 1
        p = cmd.payload
        if cmd.type == qxl.QXL_CMD_DRAW and isinstance(p, qxl.Drawable):
            self._process_draw(cmd, p)
        elif cmd.type == qxl.QXL_CMD_UPDATE and isinstance(p, qxl.UpdateCmd):
            if p.surface_id in self.surfaces:
                self.current.flush_surface(p.surface_id)
                self.qxl.notify_update(p.update_id)
            else:
                self.stats.guest_errors += 1
                log.warning("display %d: update command for missing surface %d", self.index,
                            p.surface_id)
            self.release(cmd)
        elif cmd.type == qxl.QXL_CMD_MESSAGE and isinstance(p, qxl.Message):
            log.debug("display %d: guest message %r", self.index, p.text[:200])
            self.release(cmd)
        elif cmd.type == qxl.QXL_CMD_SURFACE and isinstance(p, qxl.SurfaceCmd):
            self._process_surface(cmd, p)
        else:
            self.stats.guest_errors += 1
            log.warning("display %d: unexpected command type %d", self.index, cmd.type)
            self.release(cmd)

    def _process_surface(self, cmd: qxl.Command, p: qxl.SurfaceCmd) -> None:
        if not 0 <= p.surface_id < self.num_surfaces:
            self.stats.guest_errors += 1
            self.release(cmd)
            return
        if p.type == qxl.QXL_SURFACE_CMD_CREATE:
            if p.surface_id in self.surfaces:
                log.warning("display %d: surface %d created twice", self.index, p.surface_id)
                self.release(cmd)
                return
            keep = bool(p.flags & qxl.QXL_SURF_FLAG_KEEP_DATA)
            s = self._new_surface(p.surface_id, p.width, p.height, p.stride, p.format, p.data,
                                  keep, False, cmd)
            if s is None:
                self.release(cmd)
                return
            if not keep:  # kept surfaces are sent when first used
                for dcc in self.clients:
                    if dcc.active and not dcc.lagging:
                        dcc.queue_surface_create(s)
        elif p.type == qxl.QXL_SURFACE_CMD_DESTROY:
            if p.surface_id not in self.surfaces:
                log.warning("display %d: surface %d destroyed twice", self.index, p.surface_id)
            else:
                self._destroy_surface(p.surface_id)
            self.release(cmd)
        else:
            self.stats.guest_errors += 1
            self.release(cmd)

    def _drawable_area(self, d: qxl.Drawable) -> qxl.Rect | None:
        """bbox clipped to the clip rectangles' extent; None if nothing is drawn."""
        b = d.bbox
        if b.is_empty():
            return None
        if d.clip is None:
            return b
        top = left = 1 << 30
        bottom = right = -(1 << 30)
        for r in d.clip:
            t, lf = max(int(r[0]), b.top), max(int(r[1]), b.left)
            bt, rt = min(int(r[2]), b.bottom), min(int(r[3]), b.right)
            if t < bt and lf < rt:
                top, left = min(top, t), min(left, lf)
                bottom, right = max(bottom, bt), max(right, rt)
        if bottom <= top:
            return None
        return qxl.Rect(top, left, bottom, right)

    def _process_draw(self, cmd: qxl.Command, d: qxl.Drawable) -> None:
        s = self.surfaces.get(d.surface_id)
        b = d.bbox
        top, left, bottom, right = b
        bad = (s is None or top < 0 or left < 0 or bottom < 0 or right < 0
               or bottom > s.height or right > s.width or d.type not in _DRAWABLE_TYPES
               or (d.surfaces_dest != qxl.NO_DEPS
                   and any(dep != -1 and dep not in self.surfaces for dep in d.surfaces_dest)))
        if bad:
            self.stats.guest_errors += 1
            log.warning("display %d: drawable type %d rejected (surface %d bbox %s)", self.index,
                        d.type, d.surface_id, tuple(b))
            self.release(cmd)
            return
        if d.clip is None:  # (the usual draw: its area is its bbox)
            area = b if top < bottom and left < right else None
        else:
            area = self._drawable_area(d)
        if area is None or d.type == qxl.QXL_DRAW_NOP:
            self.release(cmd)
            return
        self.stats.draws += 1
        item = DrawableItem(cmd, d, area, self.release)
        item.mm_time = mm_time()  # as spice-server, the server's clock stamps drawables
        item.generation = self.worker.rounds
        if d.self_bitmap:
            self._self_bitmap(item, s)
        self.streams.before_add(item)
        self._pipes_add_drawable(item)
        self.current.add(item)

    def _self_bitmap(self, item: DrawableItem, s: RedSurface) -> None:
        """The drawable reads its own destination: snapshot that area first."""
        d = item.drawable
        a = d.self_bitmap_area
        fmt = SURFACE_TO_BITMAP_FMT.get(s.format)
        if fmt is None or a.is_empty():
            return
        self.current.flush_surface(s.id)
        top, left = max(0, a.top), max(0, a.left)
        bottom, right = min(s.height, a.bottom), min(s.width, a.right)
        if bottom <= top or right <= left:
            return
        rows = s.read_area(top, left, bottom, right)
        stride = (rows.shape[1] + 3) & ~3
        data = bytearray(stride * rows.shape[0])
        out = np.frombuffer(data, dtype=np.uint8).reshape(rows.shape[0], stride)
        out[:, : rows.shape[1]] = rows
        flags = 0
        if not s.is_primary and fmt == qxl.SPICE_BITMAP_FMT_32BIT:
            state = rgb32_alpha_state(rows)
            if state == "all":
                flags = qxl.SPICE_IMAGE_FLAGS_HIGH_BITS_SET
            elif state == "some":
                fmt = qxl.SPICE_BITMAP_FMT_RGBA
        w, h = right - left, bottom - top
        uid = (self.next_uid() << 32) | qxl.QXL_IMAGE_GROUP_RED
        image = qxl.BitmapImage(qxl.ImageDescriptor(uid, qxl.SPICE_IMAGE_TYPE_BITMAP, flags, w, h),
                                fmt, qxl.QXL_BITMAP_TOP_DOWN, w, h, stride, None,
                                out.reshape(-1))
        item.self_image = image
        u = d.u
        if hasattr(u, "src_bitmap") and u.src_bitmap is None:
            u.src_bitmap = image

    # -- teardown ------------------------------------------------------------------------

    def forget_guest_memory(self) -> None:
        """Device reset of the memory slots: nothing may point into guest
        memory any more.  Pending drawables are dropped unrendered."""
        self.streams.stop_all()
        self.current.clear()
        for dcc in self.clients:
            kept = [it for it in dcc.pipe if not isinstance(it, DrawPipeItem)]
            for it in dcc.pipe:
                if isinstance(it, DrawPipeItem):
                    it.release()
            dcc.pipe.clear()
            dcc.pipe.extend(kept)

    def close(self) -> None:
        for dcc in list(self.clients):
            dcc.disconnect()
        self.streams.forget_all()
        self.current.clear()
        for sid in list(self.surfaces):
            s = self.surfaces.pop(sid)
            if s.create_cmd is not None:
                self.release(s.create_cmd)


_DRAWABLE_TYPES = frozenset({
    qxl.QXL_DRAW_NOP, qxl.QXL_DRAW_FILL, qxl.QXL_DRAW_OPAQUE, qxl.QXL_DRAW_COPY, qxl.QXL_COPY_BITS,
    qxl.QXL_DRAW_BLEND, qxl.QXL_DRAW_BLACKNESS, qxl.QXL_DRAW_WHITENESS, qxl.QXL_DRAW_INVERS,
    qxl.QXL_DRAW_ROP3, qxl.QXL_DRAW_STROKE, qxl.QXL_DRAW_TEXT, qxl.QXL_DRAW_TRANSPARENT,
    qxl.QXL_DRAW_ALPHA_BLEND, qxl.QXL_DRAW_COMPOSITE,
})

"""One client of a display channel (spice-server's DisplayChannelClient).

Lives on the red worker thread.  After the link it sends SET_ACK and waits
for the client's DISPLAY_INIT (pixmap cache and GLZ dictionary sizes); then
:meth:`DisplayChannel.start_client` queues the current screen (surface
create, a DRAW_COPY of its pixels, monitors config, MARK) and live
drawables follow.

A client that stops reading cannot hold the guest back for long: when its
pipe is over :data:`MAX_PIPE_SIZE` and nothing could be written to it for
200 ms, or its pipe stayed over the limit for a whole second, it is
switched to catch-up mode.  Its queued
drawings are dropped (their areas remembered as dirty) and new drawables
only extend the dirty areas; once the socket drains, the client gets the
surfaces' current pixels for those areas and rejoins the live stream.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

import numpy as np

from spice import qxl
from spice.channel import ChannelClient, EmptyMsgItem, PipeItem
from spice.display_lossy import LossyAreas
from spice.display_marshal import marshal_draw, marshal_image_copy
from spice.display_tree import DrawableItem
from spice.image_cache import PALETTE_CACHE_SIZE, LruCache, PixmapCache
from spice.image_encoders import (
    EncodedImage,
    EncoderSettings,
    ImageEncoders,
    glz_dictionary_for,
    put_palette,
)
from spice.protocol import (
    RES_TYPE_PIXMAP,
    ChannelType,
    DisplayCap,
    ImageCompression,
    Msg,
    MsgCDisplay,
    MsgDisplay,
    WanCompression,
)
from spice.video_stream_wire import marshal_frame, marshal_item
from spice.wire import Block, ProtocolError, Reader, Writer

if TYPE_CHECKING:
    from spice.display_channel import DisplayChannel
    from spice.link import LinkedStream

log = logging.getLogger(__name__)

MAX_PIPE_SIZE = 50  # the worker stops pulling commands above this
RECEIVE_LIMIT = 1024  # CHANNEL_RECEIVE_BUF_SIZE
_DESC = struct.Struct("<QBBII")
_BITMAP = struct.Struct("<BBIII")
_RES = struct.Struct("<BQ")
_WAIT = struct.Struct("<BBQ")
_SURFACE_CREATE = struct.Struct("<IIIII")
_HEAD = struct.Struct("<IIIIIII")
_U64 = struct.Struct("<Q")


class DrawPipeItem(PipeItem):
    """A drawable queued for one client.  ``queued`` is True while the item
    sits in the pipe (the current tree may then take it out again);
    ``can_lossy``: its source image may go out lossy (decided when queued,
    see :mod:`spice.display_lossy`)."""

    __slots__ = ("item", "queued", "can_lossy")

    def __init__(self, item: DrawableItem, can_lossy: bool = False) -> None:
        self.item = item.ref()
        self.queued = True
        self.can_lossy = can_lossy

    def release(self) -> None:
        self.queued = False
        self.item.unref()


class ImagePipeItem(PipeItem):
    """Pixels of a surface area, sent as a DRAW_COPY of a BITMAP image."""

    __slots__ = ("surface_id", "left", "top", "width", "height", "bitmap_format", "image_flags",
                 "stride", "data")

    def __init__(self, surface_id: int, left: int, top: int, width: int, height: int,
                 bitmap_format: int, image_flags: int, data: np.ndarray) -> None:
        self.surface_id = surface_id
        self.left = left
        self.top = top
        self.width = width
        self.height = height
        self.bitmap_format = bitmap_format
        self.image_flags = image_flags
        self.stride = data.shape[1] if data.ndim == 2 else width
        self.data = data


class SurfaceCreateItem(PipeItem):
    __slots__ = ("surface_id", "width", "height", "format", "flags")

    def __init__(self, surface_id: int, width: int, height: int, fmt: int, flags: int) -> None:
        self.surface_id = surface_id
        self.width = width
        self.height = height
        self.format = fmt
        self.flags = flags


class SurfaceDestroyItem(PipeItem):
    __slots__ = ("surface_id",)

    def __init__(self, surface_id: int) -> None:
        self.surface_id = surface_id


class MonitorsConfigItem(PipeItem):
    __slots__ = ("config",)

    def __init__(self, config: qxl.MonitorsConfig) -> None:
        self.config = config


class InvalPaletteItem(PipeItem):
    __slots__ = ("palette_id",)

    def __init__(self, palette_id: int) -> None:
        self.palette_id = palette_id


class DisplayChannelClient(ChannelClient):
    channel_type = ChannelType.DISPLAY
    handle_acks = True
    monitor_latency = True
    max_message_size = RECEIVE_LIMIT

    def __init__(self, dc: DisplayChannel, linked: LinkedStream, session, stats,
                 low_bandwidth: bool = False) -> None:
        super().__init__(dc.loop, linked, on_disconnect=dc.client_disconnected, stats=stats)
        self.dc = dc
        self.configure_bandwidth(low_bandwidth)
        options = dc.worker.server.options
        # what the image encoders consult (see encode_image)
        self.server_image_compression = options.image_compression_value
        self.jpeg_state = options.jpeg_wan_value
        self.zlib_glz_state = options.zlib_glz_wan_value
        self.session = session  # the server's ClientSession (pixmap caches)
        self.index = dc.index  # this channel's slot in a shared pixmap cache
        self.expect_init = True
        self.active = False  # DISPLAY_INIT received and the screen queued
        self.pixmap_cache: PixmapCache | None = None
        self.glz_dictionary_id = 0
        self.glz_window_size = 0
        self.palette_cache = LruCache(PALETTE_CACHE_SIZE)
        self.glz = None  # the GLZ dictionary shared with the client's other channels
        self.encoders = ImageEncoders(dc.encoder_stats)
        self.lossy = LossyAreas()  # used while JPEG is enabled
        self.stream_agents: dict = {}  # stream id -> StreamAgent (spice.video_stream)
        self._lossy_src: qxl.Image | None = None  # the image of the draw being marshalled
        self._graduality: int | None = None  # that draw's source graduality, if known
        self.preferred_compression: int | None = None
        self.preferred_video_codecs: tuple[int, ...] = ()
        self.client_surfaces: dict[int, int] = {}  # id -> generation, as queued
        self.lagging = False
        self.lag_dirty: dict[int, list[int]] = {}  # id -> [top, left, bottom, right]
        # per-message cache bookkeeping
        self._free_list: list[tuple[int, list[int]]] = []
        self._touched: list[int] = []
        self.push_set_ack()
        self.push()

    # -- incoming --------------------------------------------------------------------

    def handle_message(self, msg_type: int, r: Reader) -> bool:
        if msg_type == MsgCDisplay.INIT:
            cache_id, cache_size = r.u8(), r.i64()
            glz_id, glz_window = r.u8(), r.i32()
            if not self.expect_init:
                raise ProtocolError("second DISPLAY_INIT")
            self.expect_init = False
            self.pixmap_cache = self.session.pixmap_caches.get(cache_id, cache_size)
            self.glz_dictionary_id, self.glz_window_size = glz_id, glz_window
            self.glz = glz_dictionary_for(self.session, glz_id, glz_window)
            self.dc.start_client(self)
        elif msg_type == MsgCDisplay.PREFERRED_COMPRESSION:
            value = r.u8()
            if value in (ImageCompression.OFF, ImageCompression.AUTO_GLZ,
                         ImageCompression.AUTO_LZ, ImageCompression.QUIC, ImageCompression.GLZ,
                         ImageCompression.LZ, ImageCompression.LZ4):
                self.preferred_compression = value
            else:
                log.info("%s: ignoring unknown preferred compression %d", self.name, value)
        elif msg_type == MsgCDisplay.PREFERRED_VIDEO_CODEC_TYPE:
            n = r.u8()
            self.preferred_video_codecs = tuple(r.u8() for _ in range(n))
        elif msg_type == MsgCDisplay.STREAM_REPORT:
            stream_id, unique_id, start_mm, end_mm, frames, drops = (r.u32() for _ in range(6))
            last_delay = r.i32()
            audio_delay = r.u32()
            self.dc.streams.client_report(self, stream_id, unique_id, start_mm, end_mm, frames,
                                          drops, last_delay, audio_delay)
        elif msg_type == MsgCDisplay.GL_DRAW_DONE:
            pass
        else:
            return False
        return True

    # -- queueing ----------------------------------------------------------------------

    def queue_surface_create(self, surface) -> None:
        flags = 1 if surface.is_primary else 0  # SPICE_SURFACE_FLAGS_PRIMARY
        self.client_surfaces[surface.id] = surface.generation
        self.lossy.forget_surface(surface.id)
        self.pipe_add(SurfaceCreateItem(surface.id, surface.width, surface.height,
                                        surface.format, flags))

    def queue_surface_destroy(self, surface_id: int) -> None:
        self.lossy.forget_surface(surface_id)
        if self.client_surfaces.pop(surface_id, None) is not None:
            self.pipe_add(SurfaceDestroyItem(surface_id))

    def queue_monitors_config(self) -> None:
        config = self.dc.monitors_config
        if config is not None and self.test_cap(DisplayCap.MONITORS_CONFIG):
            self.pipe_add(MonitorsConfigItem(config))

    def drop_surface_draws(self, surface_id: int) -> None:
        """Drop queued drawables on a surface being destroyed, newest first,
        stopping at the newest one that reads it (it must still be sent)."""
        kept: list[PipeItem] = []
        stop = False
        for it in reversed(self.pipe):
            if not stop and isinstance(it, DrawPipeItem):
                if it.item.surface_id == surface_id:
                    it.release()
                    continue
                if surface_id in it.item.deps:
                    stop = True
            elif not stop and isinstance(it, ImagePipeItem) and it.surface_id == surface_id:
                continue
            kept.append(it)
        kept.reverse()
        self.pipe.clear()
        self.pipe.extend(kept)

    # -- catch-up mode ---------------------------------------------------------------------

    def check_lag(self, now: float) -> None:
        """Called every worker round."""
        if self.lagging:
            if not self.pipe and not self.blocked and not self.waiting_for_ack():
                self.dc.catch_up(self)
            return
        if self.active and self.is_behind(now, MAX_PIPE_SIZE):
            self.enter_lag()

    def enter_lag(self) -> None:
        log.info("%s: client is behind (%d queued): switching to catch-up", self.name,
                 len(self.pipe))
        self.lagging = True
        kept: list[PipeItem] = []
        for it in self.pipe:
            if isinstance(it, DrawPipeItem):
                a = it.item.area
                self.mark_dirty(it.item.surface_id, (a.top, a.left, a.bottom, a.right))
                it.release()
            elif isinstance(it, ImagePipeItem):
                self.mark_dirty(it.surface_id, (it.top, it.left, it.top + it.height,
                                                it.left + it.width))
            else:
                kept.append(it)
        self.pipe.clear()
        self.pipe.extend(kept)

    def mark_dirty(self, surface_id: int, rect: tuple[int, int, int, int]) -> None:
        cur = self.lag_dirty.get(surface_id)
        if cur is None:
            self.lag_dirty[surface_id] = list(rect)
        else:
            cur[0] = min(cur[0], rect[0])
            cur[1] = min(cur[1], rect[1])
            cur[2] = max(cur[2], rect[2])
            cur[3] = max(cur[3], rect[3])

    @property
    def counts_for_flow(self) -> bool:
        """Whether this client's pipe may hold the worker back."""
        return self.active and not self.lagging

    # -- sending ---------------------------------------------------------------------

    def unqueue(self, item: DrawPipeItem) -> bool:
        """Take a drawable out of the pipe before it is sent (it was culled)."""
        if not item.queued or not self.connected:
            return False
        try:
            self.pipe.remove(item)
        except ValueError:
            return False
        item.release()
        return True

    def send_item(self, item: PipeItem) -> None:
        self._free_list = []
        self._touched = []
        if isinstance(item, DrawPipeItem):
            item.queued = False
        msg_type, body = self._marshal(item)
        if msg_type is None:
            return
        if self._free_list:
            self._send_free_list()
        self.send_message(msg_type, body, item)

    def _marshal(self, item: PipeItem) -> tuple[int | None, Writer | bytes | None]:
        if isinstance(item, DrawPipeItem):
            if item.item.stream is not None:
                frame = marshal_frame(self.dc.streams.stats, self, item.item)
                if frame is not None:
                    return frame
            self._lossy_src = _source_image(item.item.drawable) if item.can_lossy else None
            self._graduality = item.item.graduality
            try:
                return marshal_draw(self, item.item.drawable)
            finally:
                self._lossy_src = None
                self._graduality = None
        if isinstance(item, ImagePipeItem):
            return MsgDisplay.DRAW_COPY, marshal_image_copy(
                item.surface_id, item.left, item.top, item.width, item.height,
                lambda block: self._fill_area_image(block, item))
        if isinstance(item, SurfaceCreateItem):
            return MsgDisplay.SURFACE_CREATE, _SURFACE_CREATE.pack(
                item.surface_id, item.width, item.height, item.format, item.flags)
        if isinstance(item, SurfaceDestroyItem):
            return MsgDisplay.SURFACE_DESTROY, struct.pack("<I", item.surface_id)
        if isinstance(item, MonitorsConfigItem):
            heads = [h for h in item.config.heads if h.width and h.height]
            body = struct.pack("<HH", len(heads), item.config.max_allowed)
            body += b"".join(_HEAD.pack(h.id, h.surface_id, h.width, h.height, h.x & 0xFFFFFFFF,
                                        h.y & 0xFFFFFFFF, 0) for h in heads)
            return MsgDisplay.MONITORS_CONFIG, body
        if isinstance(item, InvalPaletteItem):
            return MsgDisplay.INVAL_PALETTE, _U64.pack(item.palette_id)
        marshalled = marshal_item(self, item)
        if marshalled is not None:
            return marshalled
        if isinstance(item, EmptyMsgItem):
            if item.msg_type == MsgDisplay.INVAL_ALL_PALETTES:
                self.palette_cache.reset()
            return item.msg_type, None
        raise TypeError(f"unknown display pipe item {item!r}")

    def _send_free_list(self) -> None:
        """INVAL_LIST for pixmaps evicted by the message being sent, before it.
        If other display channels used an evicted image, the client must first
        process their messages: then a LIST with WAIT_FOR_CHANNELS too."""
        inval = struct.pack("<H", len(self._free_list))
        inval += b"".join(_RES.pack(RES_TYPE_PIXMAP, image_id) for image_id, _ in self._free_list)
        waits: dict[int, int] = {}
        for _, sync in self._free_list:
            for ch, serial in enumerate(sync):
                if ch != self.index and serial:
                    waits[ch] = max(waits.get(ch, 0), serial)
        if not waits:
            self.send_message(MsgDisplay.INVAL_LIST, inval)
        else:
            wait = struct.pack("<B", len(waits)) + b"".join(
                _WAIT.pack(ChannelType.DISPLAY, ch, serial) for ch, serial in sorted(waits.items()))
            sub_inval = struct.pack("<HI", MsgDisplay.INVAL_LIST, len(inval)) + inval
            sub_wait = struct.pack("<HI", Msg.WAIT_FOR_CHANNELS, len(wait)) + wait
            head = 2 + 8
            body = struct.pack("<HII", 2, head + len(sub_inval), head) + sub_inval + sub_wait
            self.send_message(Msg.LIST, body)
        # the message that caused the eviction now comes one serial later
        if self.pixmap_cache is not None and self._touched:
            with self.pixmap_cache.lock:
                for image_id in self._touched:
                    self.pixmap_cache.hit(self.index, image_id, self.serial + 1)

    def _fill_area_image(self, block: Block, item: ImagePipeItem) -> None:
        image_id = (self.dc.next_uid() << 32) | qxl.QXL_IMAGE_GROUP_RED
        bitmap = qxl.BitmapImage(
            descriptor=qxl.ImageDescriptor(image_id, qxl.SPICE_IMAGE_TYPE_BITMAP,
                                           item.image_flags, item.width, item.height),
            format=item.bitmap_format, flags=qxl.QXL_BITMAP_TOP_DOWN, x=item.width,
            y=item.height, stride=item.stride, palette=None, data=item.data.reshape(-1))
        self.fill_image(block, bitmap, from_drawable=False)

    # -- images and caches (ImageSink) ----------------------------------------------------

    @property
    def image_compression(self) -> ImageCompression:
        """The client's PREFERRED_COMPRESSION if it sent one, else the server's."""
        if self.preferred_compression is not None:
            return ImageCompression(self.preferred_compression)
        return self.server_image_compression

    @property
    def enable_jpeg(self) -> bool:
        """jpeg-wan-compression: always, never, or (auto) for a slow client."""
        if self.jpeg_state == WanCompression.AUTO:
            return self.low_bandwidth
        return self.jpeg_state == WanCompression.ALWAYS

    @property
    def enable_zlib_glz(self) -> bool:
        if self.zlib_glz_state == WanCompression.AUTO:
            return self.low_bandwidth
        return self.zlib_glz_state == WanCompression.ALWAYS

    def encoder_settings(self) -> EncoderSettings:
        return EncoderSettings(self.image_compression, self.enable_jpeg, self.enable_zlib_glz,
                               self.test_cap(DisplayCap.LZ4_COMPRESSION), self.glz)

    def encode_image(self, bitmap: qxl.BitmapImage, can_lossy: bool,
                     from_drawable: bool = True,
                     graduality: int | None = None) -> EncodedImage | None:
        """The encoding seam (spice-server's dcc_compress_image): an
        :class:`EncodedImage`, or None to send the bitmap as it is
        (:mod:`spice.image_encoders` has the policy)."""
        return self.encoders.compress(bitmap, self.encoder_settings(), can_lossy, from_drawable,
                                      graduality)

    def fill_image(self, block: Block, image: qxl.Image | None, *, mask: bool = False,
                   from_drawable: bool = True) -> None:
        if image is None:
            return
        desc = image.descriptor
        flags_out = (qxl.SPICE_IMAGE_FLAGS_HIGH_BITS_SET
                     if desc.flags & qxl.QXL_IMAGE_HIGH_BITS_SET else 0)
        can_lossy = image is self._lossy_src and not mask
        cache = self.pixmap_cache
        serial = self.serial + 1
        want_cache = bool(desc.flags & qxl.QXL_IMAGE_CACHE) and cache is not None
        replace = False
        if want_cache:
            with cache.lock:
                hit, lossy = cache.hit(self.index, desc.id, serial)
                if hit:
                    self._touched.append(desc.id)
                    if can_lossy or not lossy:
                        # with JPEG on, a lossless entry is asked for as such: another
                        # channel may have replaced a lossy copy meanwhile
                        kind = (qxl.SPICE_IMAGE_TYPE_FROM_CACHE if lossy or not self.enable_jpeg
                                else qxl.SPICE_IMAGE_TYPE_FROM_CACHE_LOSSLESS)
                        block.fmt(_DESC, desc.id, kind, flags_out, desc.width, desc.height)
                        return
                    cache.set_lossy(desc.id, False)
                    replace = True
                    flags_out |= qxl.SPICE_IMAGE_FLAGS_CACHE_REPLACE_ME
        if isinstance(image, qxl.SurfaceImage):
            surface = self.dc.surfaces.get(image.surface_id)
            w, h = (surface.width, surface.height) if surface is not None else (0, 0)
            block.fmt(_DESC, desc.id, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, w, h)
            block.u32(image.surface_id)
            return
        encoded = None
        if isinstance(image, qxl.BitmapImage) and not mask:
            graduality = self._graduality if can_lossy else None
            encoded = self.encode_image(image, can_lossy, from_drawable, graduality)
        if want_cache and not replace and desc.width * desc.height > 0:
            # added only now that the encoding (and whether it is lossy) is known
            lossy = encoded is not None and encoded.lossy
            with cache.lock:
                added, evicted = cache.add(self.index, desc.id, desc.width * desc.height,
                                           lossy, serial)
            if added:
                flags_out |= qxl.SPICE_IMAGE_FLAGS_CACHE_ME
                self._touched.append(desc.id)
            self._free_list.extend(evicted)
        if isinstance(image, qxl.QuicImage):
            data = image.data.reshape(-1)
            block.fmt(_DESC, desc.id, qxl.SPICE_IMAGE_TYPE_QUIC, flags_out, desc.width, desc.height)
            block.u32(len(data))
            block.raw(data)
            return
        if encoded is not None:
            encoded.write(self, block, desc, flags_out)
            return
        bflags = qxl.SPICE_BITMAP_FLAGS_TOP_DOWN if image.flags & qxl.QXL_BITMAP_TOP_DOWN else 0
        pal = image.palette
        bflags |= self.palette_flags(pal)
        block.fmt(_DESC, desc.id, qxl.SPICE_IMAGE_TYPE_BITMAP, flags_out, desc.width,
                  desc.height)
        block.fmt(_BITMAP, image.format, bflags, image.x, image.y, image.stride)
        pal_block = None
        if bflags & qxl.SPICE_BITMAP_FLAGS_PAL_FROM_CACHE:
            block.u64(pal.unique)
        else:
            pal_block = block.ptr()
        block.raw(image.data.reshape(-1)[: image.y * image.stride])
        if pal_block is not None and pal is not None:
            put_palette(pal_block, pal)

    def palette_flags(self, pal: qxl.Palette | None) -> int:
        """PAL_FROM_CACHE if the client has ``pal``, PAL_CACHE_ME if it is to keep
        it (evictions go out as INVAL_PALETTE)."""
        if pal is None or not pal.unique:
            return 0
        if self.palette_cache.find(pal.unique):
            return qxl.SPICE_BITMAP_FLAGS_PAL_FROM_CACHE
        added, evicted = self.palette_cache.add(pal.unique)
        for old in evicted:
            self.pipe_add_front(InvalPaletteItem(old))
        return qxl.SPICE_BITMAP_FLAGS_PAL_CACHE_ME if added else 0

    def on_disconnect(self) -> None:
        self.active = False


def _source_image(d: qxl.Drawable) -> qxl.Image | None:
    return getattr(d.u, "src_bitmap", None)

"""Video streams: detecting animations and sending them as MJPEG.

spice-server's rules (video-stream.cpp), with ``streaming-video``:

* a drawable is *streamable* when streaming is not ``off``, it draws on the
  primary surface with the OPAQUE effect, it is a DRAW_COPY with ROP PUT of
  a BITMAP source, and (``filter``) its source area has at least 96x96
  pixels;
* a streamable drawable continues an earlier one with the same destination
  box and source size that came at most 200 ms before; once 20 frames are
  chained and at least a fifth of them were not artificial-looking
  (graduality other than LOW, ``filter`` mode only; the count restarts
  after 100 frames without such a frame) a stream starts;
* a stream takes any streamable drawable that contains its box (at most
  twice its area, same row order) within 1 s of its last frame; it dies
  after 1 s without a frame;
* every client gets STREAM_CREATE (then STREAM_ACTIVATE_REPORT when it
  offered stream reports), each frame goes out as STREAM_DATA (or
  STREAM_DATA_SIZED for a frame of another size) coded by the MJPEG rate
  control of :mod:`spice.mjpeg_rate`, opaque draws over a stream shrink its
  clip (STREAM_CLIP), other draws over it detach it: the client stops
  drawing old frames (empty STREAM_CLIP) and gets the area again
  losslessly.  At most 50 streams at once.

Frame dropping happens three ways: a frame still queued when the next one
arrives is culled by the occlusion tree (and counts as a server drop for
the rate control), the rate control drops frames that come faster than its
frame rate, and STREAM_REPORTs lower or raise the bit rate.

Deviation: a detached stream's area is always resent as an image of the
server canvas (spice-server may resend the last frame's own bitmap instead;
the pixels are the same).
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from spice import qxl, region
from spice.codecs.graduality import (
    BITMAP_GRADUAL_INVALID,
    BITMAP_GRADUAL_LOW,
    BITMAP_GRADUAL_NOT_AVAIL,
)
from spice.image_encoders import GRADUAL_FORMATS, graduality_of, has_extra_stride
from spice.mjpeg_rate import MjpegRateControl
from spice.protocol import DisplayCap, MsgDisplay, StreamVideo
from spice.video_stream_wire import StreamItem
from spice.wire import ProtocolError

if TYPE_CHECKING:
    from spice.display_channel import DisplayChannel
    from spice.display_client import DisplayChannelClient
    from spice.display_tree import DrawableItem

log = logging.getLogger(__name__)

NS = 1_000_000_000
NUM_STREAMS = 50
DETECTION_MAX_DELTA = NS // 5
CONTINUOUS_MAX_DELTA = NS
STREAM_TIMEOUT = NS
FRAMES_START_CONDITION = 20
GRADUAL_FRAMES_START_CONDITION = 0.2
FRAMES_RESET_CONDITION = 100
MIN_SIZE = 96 * 96
INPUT_FPS_TIMEOUT = 5 * NS
CHANNEL_CAPACITY = 0.8
HIGH_START_BIT_RATE = 10 * 1024 * 1024
LOW_START_BIT_RATE = int(2.5 * 1024 * 1024)
MAX_FPS = 30
TRACE_ITEMS = 8


class VideoStream:
    __slots__ = ("id", "width", "height", "dest", "top_down", "current", "last_time",
                 "input_fps", "num_input_frames", "input_fps_start", "frames")

    def __init__(self, sid: int, item: DrawableItem) -> None:
        u = item.drawable.u
        self.id = sid
        self.width = u.src_area.width
        self.height = u.src_area.height
        self.dest = item.drawable.bbox
        self.top_down = u.src_bitmap.top_down
        self.current: DrawableItem | None = item
        self.last_time = item.creation_time
        duration = item.creation_time - item.first_frame_time
        if duration > NS * item.frames_count // MAX_FPS:
            self.input_fps = (NS * item.frames_count + duration // 2) // duration
        else:
            self.input_fps = MAX_FPS
        self.num_input_frames = 0
        self.input_fps_start = item.creation_time
        self.frames = 1


class StreamAgent:
    """One stream as one client sees it."""

    __slots__ = ("stream", "vis", "clip", "rate", "report_id", "first_frame", "frames_sent",
                 "drops_pipe", "drops_fps", "bytes_sent")

    def __init__(self, stream: VideoStream, rate: MjpegRateControl | None) -> None:
        self.stream = stream
        cur = stream.current
        self.vis = cur.region if cur is not None else region.EMPTY
        self.clip = self.vis
        self.rate = rate
        self.report_id = 0
        self.first_frame = True
        self.frames_sent = 0
        self.drops_pipe = 0
        self.drops_fps = 0
        self.bytes_sent = 0


@dataclass
class _Trace:
    """A streamable drawable that started no stream: a candidate first frame."""

    time: int
    first_frame_time: int
    frames_count: int
    gradual_frames_count: int
    last_gradual_frame: int
    width: int
    height: int
    dest: qxl.Rect


class StreamStats:
    def __init__(self) -> None:
        self.created = 0
        self.frames_in = 0
        self.frames_sent = 0
        self.drops_pipe = 0
        self.drops_fps = 0
        self.bytes_sent = 0
        self.detached = 0

    def as_dict(self) -> dict[str, int]:
        return {"streams_created": self.created, "stream_frames_in": self.frames_in,
                "stream_frames_sent": self.frames_sent,
                "stream_frames_dropped_pipe": self.drops_pipe,
                "stream_frames_dropped_fps": self.drops_fps,
                "stream_bytes": self.bytes_sent, "streams_detached": self.detached}


class StreamManager:
    """The streams of one display channel."""

    def __init__(self, dc: DisplayChannel, mode: StreamVideo) -> None:
        self.dc = dc
        self.mode = mode
        self.streams: list[VideoStream | None] = [None] * NUM_STREAMS
        # the live streams by id, rebuilt when one starts or stops: every
        # drawable and every worker round looks at them
        self._live: tuple[VideoStream, ...] = ()
        self._trace: deque[_Trace] = deque(maxlen=TRACE_ITEMS)
        self._size_total = 0
        self.stats = StreamStats()

    def _set_slot(self, sid: int, stream: VideoStream | None) -> None:
        self.streams[sid] = stream
        self._live = tuple(s for s in self.streams if s is not None)

    def stats_dict(self) -> dict[str, int]:
        """Counters, plus the rate control's current choice for every client
        of every live stream (summed bit rate, lowest quality and frame rate)."""
        out = self.stats.as_dict()
        rates = [a.rate for dcc in self.dc.clients for a in dcc.stream_agents.values()
                 if a.rate is not None and self.streams[a.stream.id] is a.stream]
        out["live_streams"] = len(self._live)
        out["stream_bit_rate"] = sum(r.bit_rate for r in rates)
        out["stream_quality"] = min((r.quality for r in rates), default=0)
        out["stream_fps"] = min((r.fps for r in rates), default=0)
        return out

    # -- drawables arriving --------------------------------------------------------------

    def _can_stream(self, item: DrawableItem) -> bool:
        d = item.drawable
        if self.mode == StreamVideo.OFF or item.surface_id != 0:
            return False
        if d.effect != qxl.QXL_EFFECT_OPAQUE or d.type != qxl.QXL_DRAW_COPY:
            return False
        u = d.u
        if u.rop_descriptor != qxl.SPICE_ROPD_OP_PUT or u.mask.bitmap is not None:
            return False
        if not isinstance(u.src_bitmap, qxl.BitmapImage):
            return False
        # (the per-frame checks below work on the rectangles' fields: each
        # width or height property is a Python call)
        a = u.src_area
        if self.mode == StreamVideo.FILTER and (a.right - a.left) * (a.bottom - a.top) < MIN_SIZE:
            return False
        return True

    def before_add(self, item: DrawableItem) -> None:
        """Called for every new drawable before it is queued and added to the
        tree (the primary's pending drawables are all older than it)."""
        item.creation_time = time.monotonic_ns()
        item.first_frame_time = item.creation_time
        if item.surface_id != 0 or not self._live:
            self._detect(item)
            return
        d = item.drawable
        if not item.opaque:
            self.detach_behind(item.region)
        elif d.type == qxl.QXL_COPY_BITS:
            self.detach_behind(region.translate(item.region, d.u.src_pos.x - d.bbox.left,
                                                d.u.src_pos.y - d.bbox.top))
        self._detect(item)
        if item.opaque:
            self._update_visible_regions(item)

    def _detect(self, item: DrawableItem) -> None:
        item.streamable = self._can_stream(item)
        if not item.streamable:
            return
        for stream in self._live:
            if self._is_next_frame(item, stream.width, stream.height, stream.dest,
                                   stream.last_time, stream, True):
                if stream.current is not None:
                    self._count_server_drops(stream, item)
                    self._detach_drawable(stream)
                self._attach(item, stream)
                return
        for tr in reversed(self._trace):
            if self._is_next_frame(item, tr.width, tr.height, tr.dest, tr.time, None, False):
                if self._add_frame(item, tr):
                    return
                break
        self._trace.append(_Trace(item.creation_time, item.first_frame_time, item.frames_count,
                                  item.gradual_frames_count, item.last_gradual_frame,
                                  item.drawable.u.src_area.width,
                                  item.drawable.u.src_area.height, item.drawable.bbox))

    @staticmethod
    def _is_next_frame(item: DrawableItem, width: int, height: int, dest: qxl.Rect,
                       other_time: int, stream: VideoStream | None, container: bool) -> bool:
        limit = CONTINUOUS_MAX_DELTA if stream is not None else DETECTION_MAX_DELTA
        if item.creation_time - other_time > limit:
            return False
        d = item.drawable
        if not container:
            a = d.u.src_area
            if d.bbox != dest or a.right - a.left != width or a.bottom - a.top != height:
                return False
        else:
            top, left, bottom, right = d.bbox
            dt, dl, db, dr = dest
            if not (top <= dt and left <= dl and db <= bottom and dr <= right):
                return False
            if (bottom - top) * (right - left) > 2 * (db - dt) * (dr - dl):
                return False
        return stream is None or stream.top_down == bool(d.u.src_bitmap.flags
                                                         & qxl.QXL_BITMAP_TOP_DOWN)

    def _graduality(self, item: DrawableItem) -> int:
        if self.mode != StreamVideo.FILTER:
            return BITMAP_GRADUAL_INVALID
        if item.graduality is None:
            bm = item.drawable.u.src_bitmap
            if (bm.format not in GRADUAL_FORMATS or has_extra_stride(bm)
                    or bm.flags & qxl.QXL_BITMAP_UNSTABLE):
                item.graduality = BITMAP_GRADUAL_NOT_AVAIL
            else:
                item.graduality = graduality_of(bm)
        return item.graduality

    def _add_frame(self, item: DrawableItem, prev: _Trace) -> bool:
        """Chain ``item`` after ``prev``; True when this starts a stream."""
        gradual = self._graduality(item)
        item.first_frame_time = prev.first_frame_time
        item.frames_count = prev.frames_count + 1
        item.gradual_frames_count = prev.gradual_frames_count
        if gradual != BITMAP_GRADUAL_LOW:
            if item.frames_count - prev.last_gradual_frame > FRAMES_RESET_CONDITION:
                item.frames_count = 1
                item.gradual_frames_count = 1
            else:
                item.gradual_frames_count += 1
            item.last_gradual_frame = item.frames_count
        else:
            item.last_gradual_frame = prev.last_gradual_frame
        if (item.frames_count >= FRAMES_START_CONDITION and item.gradual_frames_count
                >= GRADUAL_FRAMES_START_CONDITION * item.frames_count):
            return self._create(item)
        return False

    # -- streams --------------------------------------------------------------------------

    def _create(self, item: DrawableItem) -> bool:
        try:
            sid = self.streams.index(None)
        except ValueError:
            return False
        stream = VideoStream(sid, item)
        self._set_slot(sid, stream)
        item.stream = stream
        self._size_total += stream.width * stream.height
        self.stats.created += 1
        self.stats.frames_in += 1
        log.info("display %d: stream %d %dx%d at (%d, %d) %d fps", self.dc.index, sid,
                 stream.width, stream.height, stream.dest.left, stream.dest.top,
                 stream.input_fps)
        for dcc in self.dc.clients:
            if dcc.active and dcc.connected:
                self.client_create(dcc, stream)
        return True

    def client_create(self, dcc: DisplayChannelClient, stream: VideoStream) -> None:
        """spice-server's dcc_create_stream: the client's agent and STREAM_CREATE."""
        rate = None
        if not dcc.test_cap(DisplayCap.MULTI_CODEC) or dcc.test_cap(DisplayCap.CODEC_MJPEG):
            rate = MjpegRateControl(self._initial_bit_rate(dcc, stream),
                                    source_fps=lambda: stream.input_fps,
                                    roundtrip_ms=lambda: _roundtrip_ms(dcc))
        agent = StreamAgent(stream, rate)
        dcc.stream_agents[stream.id] = agent
        dcc.pipe_add(StreamItem(MsgDisplay.STREAM_CREATE, agent))
        if dcc.test_cap(DisplayCap.STREAM_REPORT):
            agent.report_id = random.getrandbits(31)
            dcc.pipe_add(StreamItem(MsgDisplay.STREAM_ACTIVATE_REPORT, agent))

    def start_client(self, dcc: DisplayChannelClient) -> None:
        for stream in self._live:
            self.client_create(dcc, stream)

    def _initial_bit_rate(self, dcc: DisplayChannelClient, stream: VideoStream) -> int:
        main = getattr(dcc.session, "main", None)
        net = getattr(main, "bitrate_bps", 0) or 0
        rate = max(getattr(dcc, "max_stream_bit_rate", 0), net)
        if not rate:
            rate = LOW_START_BIT_RATE if dcc.low_bandwidth else HIGH_START_BIT_RATE
        total = max(1, self._size_total)
        return int(CHANNEL_CAPACITY * rate * stream.width * stream.height / total)

    def _attach(self, item: DrawableItem, stream: VideoStream) -> None:
        stream.current = item
        item.stream = stream
        stream.last_time = item.creation_time
        stream.frames += 1
        self.stats.frames_in += 1
        duration = item.creation_time - stream.input_fps_start
        if duration >= INPUT_FPS_TIMEOUT:
            stream.input_fps = (stream.num_input_frames * NS + duration // 2) // duration
            stream.num_input_frames = 0
            stream.input_fps_start = item.creation_time
        else:
            stream.num_input_frames += 1
        rgn = item.region
        # without clip rectangles the drawable's region is its box, and the
        # usual frame changes neither region: test containment, build nothing
        box = rgn if item.drawable.clip is None else region.rect(*item.drawable.bbox)
        for dcc, agent in self._agents(stream):
            if not region.contains(agent.vis, rgn):
                agent.vis = region.union(agent.vis, rgn)
            if box is rgn:
                unchanged = region.contains(agent.clip, box)
            else:
                unchanged = region.equal(region.intersect(box, agent.clip), rgn)
            if not unchanged:
                agent.clip = region.union(region.subtract(agent.clip, box), rgn)
                self._queue_clip(dcc, agent)

    def _count_server_drops(self, stream: VideoStream, new: DrawableItem) -> None:
        """The previous frame is still queued for a client when the next one
        arrives: the network is behind (unless both came in one batch)."""
        cur = stream.current
        if cur.generation == new.generation:
            return
        for dcc, pi in cur.pipe_items:
            if not pi.queued:
                continue
            agent = dcc.stream_agents.get(stream.id)
            if agent is not None and agent.stream is stream and agent.rate is not None:
                agent.drops_pipe += 1
                self.stats.drops_pipe += 1
                agent.rate.server_frame_drop()

    @staticmethod
    def _detach_drawable(stream: VideoStream) -> None:
        if stream.current is not None:
            stream.current.stream = None
            stream.current = None

    def _agents(self, stream: VideoStream):
        for dcc in self.dc.clients:
            agent = dcc.stream_agents.get(stream.id)
            if agent is not None and agent.stream is stream and dcc.connected:
                yield dcc, agent

    def _queue_clip(self, dcc: DisplayChannelClient, agent: StreamAgent) -> None:
        dcc.pipe_add(StreamItem(MsgDisplay.STREAM_CLIP, agent, agent.clip.copy()))

    def _update_visible_regions(self, item: DrawableItem) -> None:
        """An opaque draw hides part of the other streams."""
        for stream in self._live:
            if stream.current is item:
                continue
            for dcc, agent in self._agents(stream):
                if region.intersects(agent.vis, item.region):
                    agent.vis = region.subtract(agent.vis, item.region)
                    agent.clip = region.subtract(agent.clip, item.region)
                    self._queue_clip(dcc, agent)

    def detach_behind(self, rgn: np.ndarray) -> None:
        """Streams under a draw that does not cover them go back to ordinary
        drawing (the client gets their area losslessly)."""
        for stream in self._live:
            detached = False
            for dcc, agent in self._agents(stream):
                if region.intersects(agent.vis, rgn):
                    self._detach_gracefully(dcc, agent)
                    detached = True
            if detached:
                self.stats.detached += 1
                self._detach_drawable(stream)
            elif not self.dc.clients and stream.current is not None \
                    and region.intersects(stream.current.region, rgn):
                self._detach_drawable(stream)

    def _detach_gracefully(self, dcc: DisplayChannelClient, agent: StreamAgent) -> None:
        agent.clip = region.EMPTY
        self._queue_clip(dcc, agent)
        if region.is_empty(agent.vis):
            return
        cur = agent.stream.current
        still_queued = cur is not None and any(c is dcc and pi.queued
                                               for c, pi in cur.pipe_items)
        if not (still_queued and region.contains(cur.region, agent.vis)):
            # the frame the client shows is lossy: send the area again
            self.dc.current.flush_surface(0)
            surface = self.dc.surfaces.get(0)
            if surface is not None:
                t, lf, b, r = region.extents(agent.vis)
                self.dc.queue_surface_image(dcc, surface, (t, lf, b, r))
        agent.vis = region.EMPTY

    def timeout(self, now: int | None = None) -> None:
        """Stop streams that had no frame for a second."""
        now = time.monotonic_ns() if now is None else now
        for stream in self._live:
            if now >= stream.last_time + STREAM_TIMEOUT:
                for dcc, agent in self._agents(stream):
                    self._detach_gracefully(dcc, agent)
                self._detach_drawable(stream)
                self.stop(stream)

    def next_timeout(self) -> float | None:
        """Seconds until the next stream may time out (None without streams)."""
        live = self._live
        if not live:
            return None
        first = live[0].last_time
        for s in live:
            if s.last_time < first:
                first = s.last_time
        return max(0.0, (first + STREAM_TIMEOUT - time.monotonic_ns()) / NS)

    def stop(self, stream: VideoStream) -> None:
        log.info("display %d: stream %d stopped after %d frames", self.dc.index, stream.id,
                 stream.frames)
        self._detach_drawable(stream)
        for dcc, agent in list(self._agents(stream)):
            agent.vis = agent.clip = region.EMPTY
            if agent.rate is not None:
                dcc.max_stream_bit_rate = max(getattr(dcc, "max_stream_bit_rate", 0),
                                              agent.rate.bit_rate)
            dcc.pipe_add(StreamItem(MsgDisplay.STREAM_DESTROY, agent))
        self._set_slot(stream.id, None)
        self._size_total -= stream.width * stream.height

    def stop_all(self) -> None:
        for stream in self._live:
            self.stop(stream)

    def forget_all(self) -> None:
        """The clients were told STREAM_DESTROY_ALL: drop every stream."""
        for stream in self._live:
            self._detach_drawable(stream)
            for dcc, _agent in list(self._agents(stream)):
                dcc.stream_agents.pop(stream.id, None)
            self._set_slot(stream.id, None)
        self._size_total = 0

    # -- client side --------------------------------------------------------------------

    def client_report(self, dcc: DisplayChannelClient, stream_id: int, unique_id: int,
                      start_mm: int, end_mm: int, frames: int, drops: int, last_delay: int,
                      audio_delay: int) -> None:
        if stream_id >= NUM_STREAMS:
            raise ProtocolError(f"stream report for stream {stream_id}")
        agent = dcc.stream_agents.get(stream_id)
        if agent is None or agent.rate is None:
            return  # the stream has probably been destroyed
        if frames == 0 and drops == 0xFFFFFFFF:
            log.warning("%s: the client cannot decode stream %d: sending it as images",
                        dcc.name, stream_id)
            agent.rate = None
            return
        if unique_id != agent.report_id:
            return  # a report about a stream this id had before
        agent.rate.client_report(frames, drops, start_mm, end_mm, last_delay, audio_delay)


def _roundtrip_ms(dcc: DisplayChannelClient) -> int:
    if dcc.roundtrip_ns >= 0:
        return dcc.roundtrip_ns // 1_000_000
    main = getattr(dcc.session, "main", None)
    return getattr(main, "latency_us", 0) // 1000 if main is not None else 0

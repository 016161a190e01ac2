"""Video streams on the wire: the per-client pipe items and messages
(STREAM_CREATE, STREAM_CLIP, STREAM_DESTROY, STREAM_ACTIVATE_REPORT) and a
frame coded as STREAM_DATA or STREAM_DATA_SIZED by the client's MJPEG rate
control.  :mod:`spice.video_stream` decides what is queued."""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

import numpy as np

from spice import qxl
from spice.channel import PipeItem
from spice.codecs import mjpeg_encode_frame
from spice.display_marshal import put_rect
from spice.protocol import DisplayCap, MsgDisplay
from spice.wire import Writer

if TYPE_CHECKING:
    from spice.display_client import DisplayChannelClient
    from spice.display_tree import DrawableItem
    from spice.video_stream import StreamAgent, StreamStats

log = logging.getLogger(__name__)

CLIENT_REPORT_WINDOW = 5  # frames
CLIENT_REPORT_TIMEOUT_MS = 1000
CODEC_MJPEG = 1
STREAM_FLAGS_TOP_DOWN = 1
_U32 = struct.Struct("<I")
_STREAM_DATA = struct.Struct("<III")  # id, multimedia time, data size
_STREAM_DATA_SIZED = struct.Struct("<IIIIiiiiI")  # id, time, width, height, dest, size


class StreamItem(PipeItem):
    """STREAM_CREATE, STREAM_CLIP, STREAM_DESTROY or STREAM_ACTIVATE_REPORT."""

    __slots__ = ("msg_type", "agent", "rects")

    def __init__(self, msg_type: int, agent: StreamAgent,
                 rects: np.ndarray | None = None) -> None:
        self.msg_type = msg_type
        self.agent = agent
        self.rects = rects


def marshal_item(dcc: DisplayChannelClient,
                 item: PipeItem) -> tuple[int | None, Writer | bytes | None] | None:
    if not isinstance(item, StreamItem):
        return None
    agent = item.agent
    stream = agent.stream
    t = item.msg_type
    if t == MsgDisplay.STREAM_CREATE:
        if agent.rate is None:
            return None, None  # nothing to stream with
        w = Writer()
        root = w.root
        root.u32(0)
        root.u32(stream.id)
        root.u8(STREAM_FLAGS_TOP_DOWN if stream.top_down else 0)
        root.u8(CODEC_MJPEG)
        root.u64(0)
        for v in (stream.width, stream.height, stream.width, stream.height):
            root.u32(v)
        put_rect(root, stream.dest)
        cur = stream.current
        if cur is not None and cur.drawable.clip is None:
            root.u8(qxl.SPICE_CLIP_TYPE_NONE)
        else:
            rects = cur.drawable.clip if cur is not None else np.zeros((0, 4), np.int32)
            _put_clip_rects(root, rects)
        return t, w
    if t == MsgDisplay.STREAM_CLIP:
        w = Writer()
        w.root.u32(stream.id)
        _put_clip_rects(w.root, item.rects)
        return t, w
    if t == MsgDisplay.STREAM_DESTROY:
        if dcc.stream_agents.get(stream.id) is agent:
            del dcc.stream_agents[stream.id]
        agent.rate = None
        return t, _U32.pack(stream.id)
    if t == MsgDisplay.STREAM_ACTIVATE_REPORT:
        return t, struct.pack("<IIII", stream.id, agent.report_id, CLIENT_REPORT_WINDOW,
                              CLIENT_REPORT_TIMEOUT_MS)
    return None

def marshal_frame(stats: StreamStats, dcc: DisplayChannelClient,
                  item: DrawableItem) -> tuple[int | None, bytes | None] | None:
    """STREAM_DATA for a frame, (None, None) for a frame the rate control
    drops, None to send the drawable as an ordinary draw."""
    stream = item.stream
    agent = dcc.stream_agents.get(stream.id) if stream is not None else None
    if agent is None or agent.stream is not stream or agent.rate is None:
        return None
    u = item.drawable.u
    bm = u.src_bitmap
    if not isinstance(bm, qxl.BitmapImage):
        return None
    sa = u.src_area
    top, left, bottom, right = sa
    width, height = right - left, bottom - top
    sized = (width != stream.width or height != stream.height
             or item.drawable.bbox != stream.dest)
    if sized and not dcc.test_cap(DisplayCap.SIZED_STREAM):
        return None
    quality = agent.rate.start_frame(item.mm_time)
    if quality is None:
        agent.drops_fps += 1
        stats.drops_fps += 1
        return None, None
    try:
        # (a frame joins a stream only with the stream's row order: the
        # stream's top_down is the bitmap's)
        data = mjpeg_encode_frame(bm.data, bm.x, bm.y, bm.stride, bm.format, sa,
                                  stream.top_down, quality, agent.first_frame)
    except ValueError as exc:
        log.debug("stream %d: frame not encodable (%s)", stream.id, exc)
        return None
    agent.first_frame = False
    agent.rate.end_frame(len(data))
    agent.frames_sent += 1
    agent.bytes_sent += len(data)
    stats.frames_sent += 1
    stats.bytes_sent += len(data)
    # the frame is the whole body after a few fixed fields: no Writer needed
    if not sized:
        head = _STREAM_DATA.pack(stream.id, item.mm_time & 0xFFFFFFFF, len(data))
        return MsgDisplay.STREAM_DATA, head + data
    b = item.drawable.bbox
    head = _STREAM_DATA_SIZED.pack(stream.id, item.mm_time & 0xFFFFFFFF, width, height,
                                   b.top, b.left, b.bottom, b.right, len(data))
    return MsgDisplay.STREAM_DATA_SIZED, head + data


def _put_clip_rects(block, rects) -> None:
    block.u8(qxl.SPICE_CLIP_TYPE_RECTS)
    block.u32(len(rects))
    for r in rects:
        put_rect(block, (int(r[0]), int(r[1]), int(r[2]), int(r[3])))

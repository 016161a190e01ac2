"""The cursor channel of one QXL device (runs on its red worker thread).

The channel keeps the cursor state (shape from the last SET, position,
visibility, trail) so a client that connects gets it in CURSOR_INIT, and
forwards each cursor command to the clients.  In client mouse mode MOVE
commands are not forwarded (the client draws its own pointer) unless they
make a hidden cursor visible.  Shapes go through a 256-entry cache keyed
by the shape's unique id (CACHE_ME / FROM_CACHE, INVAL_ONE on eviction).
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from spice import qxl
from spice.channel import ChannelClient, ChannelStats, EmptyMsgItem, PipeItem
from spice.image_cache import CURSOR_CACHE_SIZE, LruCache
from spice.protocol import (
    CURSOR_FLAGS_CACHE_ME,
    CURSOR_FLAGS_FROM_CACHE,
    CURSOR_FLAGS_NONE,
    ChannelType,
    MouseMode,
    MsgCursor,
)
from spice.wire import Block, Reader, Writer

if TYPE_CHECKING:
    import numpy as np

    from spice.link import LinkedStream
    from spice.worker import RedWorker

log = logging.getLogger(__name__)

MAX_PIPE_SIZE = 50
_HEADER = struct.Struct("<QBHHHH")
_POINT16 = struct.Struct("<hh")


class CursorRef:
    """A cursor command shared by the channel state and client pipes."""

    __slots__ = ("cmd", "cursor", "refs", "_release")

    def __init__(self, cmd: qxl.Command, release) -> None:
        self.cmd = cmd
        self.cursor: qxl.CursorCmd = cmd.payload
        self.refs = 1
        self._release = release

    def ref(self) -> CursorRef:
        self.refs += 1
        return self

    def unref(self) -> None:
        self.refs -= 1
        if self.refs == 0:
            self._release(self.cmd)


class CursorPipeItem(PipeItem):
    __slots__ = ("ref",)

    def __init__(self, ref: CursorRef) -> None:
        self.ref = ref.ref()

    def release(self) -> None:
        self.ref.unref()


class _InitItem(PipeItem):
    __slots__ = ()


class _InvalOneItem(PipeItem):
    __slots__ = ("cursor_id",)

    def __init__(self, cursor_id: int) -> None:
        self.cursor_id = cursor_id


def _i16(v: int) -> int:
    return ((v + 0x8000) & 0xFFFF) - 0x8000


class CursorChannelClient(ChannelClient):
    channel_type = ChannelType.CURSOR
    handle_acks = True
    max_message_size = 1024

    def __init__(self, channel: CursorChannel, linked: LinkedStream, stats: ChannelStats,
                 low_bandwidth: bool = False) -> None:
        super().__init__(channel.loop, linked, on_disconnect=channel.client_disconnected,
                         stats=stats)
        self.channel = channel
        self.configure_bandwidth(low_bandwidth)
        self.cache = LruCache(CURSOR_CACHE_SIZE)
        self.lagging = False
        self.messages_window = 0
        self.push_set_ack()
        self.pipe_add(_InitItem())
        self.push()

    def handle_message(self, msg_type: int, r: Reader) -> bool:
        return False  # the cursor channel has no client messages of its own

    def check_lag(self, now: float) -> None:
        if self.lagging:
            if not self.pipe and not self.blocked and not self.waiting_for_ack():
                self.lagging = False
                # spice-gtk takes an INIT only as the first message or after
                # a RESET; the RESET also empties its shape cache
                self.pipe_add_empty(MsgCursor.INVAL_ALL)
                self.pipe_add_empty(MsgCursor.RESET)
                self.pipe_add(_InitItem())
            return
        if self.is_behind(now, MAX_PIPE_SIZE):
            log.info("%s: client is behind: dropping queued cursor updates", self.name)
            self.lagging = True
            items = list(self.pipe)
            self.pipe.clear()
            for it in items:
                it.release()

    def _put_cursor(self, root: Block, ref: CursorRef | None) -> np.ndarray | None:
        """SpiceCursor: flags, header unless NONE, then the shape bytes at the
        end of the message (unless the client has it cached)."""
        shape = ref.cursor.shape if ref is not None else None
        if shape is None:
            root.u16(CURSOR_FLAGS_NONE)
            return
        flags = 0
        send_data = True
        if shape.unique:
            if self.cache.find(shape.unique):
                flags |= CURSOR_FLAGS_FROM_CACHE
                send_data = False
            else:
                added, evicted = self.cache.add(shape.unique, 1)
                if added:
                    flags |= CURSOR_FLAGS_CACHE_ME
                for old in evicted:
                    self.pipe_add_front(_InvalOneItem(old))
        root.u16(flags)
        root.fmt(_HEADER, shape.unique, shape.type, shape.width, shape.height,
                 shape.hot_spot_x, shape.hot_spot_y)
        if send_data:
            # the data follows every fixed field: spice-server marshals it into
            # a sub-marshaller appended after the message
            return shape.data
        return None

    def send_item(self, item: PipeItem) -> None:
        ch = self.channel
        if isinstance(item, _InitItem):
            self.cache.reset()
            w = Writer()
            root = w.root
            root.fmt(_POINT16, _i16(ch.position[0]), _i16(ch.position[1]))
            root.u16(ch.trail_length)
            root.u16(ch.trail_frequency)
            root.u8(1 if ch.visible else 0)
            data = self._put_cursor(root, ch.current)
            if data is not None:
                # copied: the shape may go back to the guest before this is sent
                root.raw(data.reshape(-1).tobytes())
            self.send_message(MsgCursor.INIT, w)
        elif isinstance(item, CursorPipeItem):
            c = item.ref.cursor
            if c.type == qxl.QXL_CURSOR_SET:
                w = Writer()
                root = w.root
                root.fmt(_POINT16, _i16(c.position.x), _i16(c.position.y))
                root.u8(1 if ch.visible else 0)
                data = self._put_cursor(root, item.ref)
                if data is not None:
                    root.raw(data.reshape(-1))
                self.send_message(MsgCursor.SET, w, item)
            elif c.type == qxl.QXL_CURSOR_MOVE:
                self.send_message(MsgCursor.MOVE,
                                  _POINT16.pack(_i16(c.position.x), _i16(c.position.y)))
            elif c.type == qxl.QXL_CURSOR_HIDE:
                self.send_message(MsgCursor.HIDE, None)
            elif c.type == qxl.QXL_CURSOR_TRAIL:
                self.send_message(MsgCursor.TRAIL, struct.pack("<HH", c.trail_length & 0xFFFF,
                                                              c.trail_frequency & 0xFFFF))
        elif isinstance(item, _InvalOneItem):
            self.send_message(MsgCursor.INVAL_ONE, struct.pack("<Q", item.cursor_id))
        elif isinstance(item, EmptyMsgItem):
            if item.msg_type == MsgCursor.INVAL_ALL:
                self.cache.reset()
            self.send_message(item.msg_type, None)


class CursorChannel:
    def __init__(self, worker: RedWorker) -> None:
        self.worker = worker
        self.loop = worker.loop
        self.qxl = worker.qxl
        self.clients: list[CursorChannelClient] = []
        self.current: CursorRef | None = None
        self.visible = True
        self.position = (0, 0)
        self.trail_length = 0
        self.trail_frequency = 0
        self.mouse_mode = MouseMode.SERVER
        self.commands = 0

    def release(self, cmd: qxl.Command) -> None:
        try:
            self.qxl.release_resource(cmd.release)
        except Exception:
            log.exception("cursor: release_resource failed")

    def add_client(self, linked: LinkedStream, stats: ChannelStats,
                   low_bandwidth: bool = False) -> CursorChannelClient:
        ccc = CursorChannelClient(self, linked, stats, low_bandwidth)
        self.clients.append(ccc)
        return ccc

    def client_disconnected(self, ccc: CursorChannelClient) -> None:
        if ccc in self.clients:
            self.clients.remove(ccc)
        self.worker.client_gone(ccc)

    def max_pipe_size(self) -> int:
        n = 0
        for c in self.clients:
            if not c.lagging and len(c.pipe) > n:
                n = len(c.pipe)
        return n

    def push_all(self, now: float) -> None:
        for c in list(self.clients):
            if c.connected:
                c.check_lag(now)
                c.push()

    def process(self, cmd: qxl.Command) -> None:
        self.commands += 1
        c = cmd.payload
        if cmd.type != qxl.QXL_CMD_CURSOR or not isinstance(c, qxl.CursorCmd):
            log.warning("cursor: unexpected command type %d", cmd.type)
            self.release(cmd)
            return
        ref = CursorRef(cmd, self.release)
        show = False
        if c.type == qxl.QXL_CURSOR_SET:
            self.visible = bool(c.visible)
            if self.current is not None:
                self.current.unref()
            self.current = ref.ref()
        elif c.type == qxl.QXL_CURSOR_MOVE:
            show = not self.visible
            self.visible = True
            self.position = (c.position.x, c.position.y)
        elif c.type == qxl.QXL_CURSOR_HIDE:
            self.visible = False
        elif c.type == qxl.QXL_CURSOR_TRAIL:
            self.trail_length = c.trail_length
            self.trail_frequency = c.trail_frequency
        else:
            log.warning("cursor: invalid cursor command %d", c.type)
            ref.unref()
            return
        if self.mouse_mode == MouseMode.SERVER or c.type != qxl.QXL_CURSOR_MOVE or show:
            for client in self.clients:
                if client.connected and not client.lagging:
                    client.pipe_add(CursorPipeItem(ref))
        ref.unref()

    def reset(self) -> None:
        if self.current is not None:
            self.current.unref()
            self.current = None
        self.visible = True
        self.position = (0, 0)
        self.trail_length = self.trail_frequency = 0
        for c in self.clients:
            if c.connected:
                c.pipe_add_empty(MsgCursor.INVAL_ALL)
                c.pipe_add_empty(MsgCursor.RESET)
                c.push()

    def do_init(self) -> None:
        for c in self.clients:
            if c.connected:
                c.pipe_add(_InitItem())
                c.push()

    def close(self) -> None:
        for c in list(self.clients):
            c.disconnect()
        if self.current is not None:
            self.current.unref()
            self.current = None

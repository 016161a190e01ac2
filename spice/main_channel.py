"""The main channel: session setup, channel list, mouse mode, agent carriage.

On link the server queues MAIN_INIT (then NAME/UUID when the client has
the NAME_AND_UUID cap) and starts the network test: three pings (warm-up,
latency, 250 KiB rate) whose round trips classify the client as low
bandwidth under 10 Mbit/s.  After that a connectivity monitor drops a
client that stays silent for 30 s.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import TYPE_CHECKING

from spice.channel import ChannelClient, ChannelStats, PipeItem
from spice.protocol import (
    NOTIFY_SEVERITY_WARN,
    NOTIFY_VISIBILITY_HIGH,
    WARN_GENERAL,
    ChannelType,
    LinkErr,
    MainCap,
    Msg,
    MsgC,
    MsgCMain,
    MsgMain,
)
from spice.wire import ProtocolError, Reader

if TYPE_CHECKING:
    from spice.link import LinkedStream
    from spice.server import ClientSession

log = logging.getLogger(__name__)

NET_TEST_BYTES = 250 * 1024
LOW_BANDWIDTH_BPS = 10 * 1000 * 1000
CONNECTIVITY_TIMEOUT_MS = 30_000
MM_TIME_DELTA = 400
# spice-server's receive buffer: 4096 + (10 + 1) agent messages of 2048
RECEIVE_LIMIT = 4096 + (10 + 1) * 2048
AGENT_DATA_LIMIT = 2048

_INIT = struct.Struct("<IIIIIIII")
_U32 = struct.Struct("<I")
_MOUSE_MODE = struct.Struct("<HH")
_PING = struct.Struct("<IQ")
_NOTIFY = struct.Struct("<QIIII")
_ZEROS = bytes(NET_TEST_BYTES)


def mm_time() -> int:
    """The multimedia clock: monotonic milliseconds, as reds_get_mm_time."""
    return (time.monotonic_ns() // 1_000_000) & 0xFFFFFFFF


class _Item(PipeItem):
    __slots__ = ("kind", "args")

    def __init__(self, kind: str, *args: object) -> None:
        self.kind = kind
        self.args = args


class MainChannelClient(ChannelClient):
    channel_type = ChannelType.MAIN

    def __init__(self, session: ClientSession, linked: LinkedStream,
                 stats: ChannelStats) -> None:
        server = session.server
        super().__init__(server.core, linked, on_disconnect=session.main_disconnected,
                         stats=stats)
        self.session = session
        self.server = server
        self.init_sent = False
        self.channels_list_sent = False
        self.bitrate_bps = 0
        self.latency_us = 0
        self._net_ping_id = 0
        self._net_test_id = 0
        self._net_stage = "invalid"

    def message_size_limit(self, msg_type: int) -> int:
        if msg_type == MsgCMain.AGENT_DATA:
            return AGENT_DATA_LIMIT
        return RECEIVE_LIMIT

    # -- what the server pushes ------------------------------------------------------

    def push_init(self) -> None:
        self.pipe_add(_Item("init"))
        if self.server.options.name and self.test_cap(MainCap.NAME_AND_UUID):
            self.pipe_add(_Item("name", self.server.options.name))
        if self.server.options.uuid is not None and self.test_cap(MainCap.NAME_AND_UUID):
            self.pipe_add(_Item("uuid", self.server.options.uuid))

    def start_net_test(self) -> None:
        self._net_test_id = self._net_ping_id + 1
        self._net_stage = "warmup"
        for size in (0, 0, NET_TEST_BYTES):
            self.pipe_add(_Item("ping", size))

    def push_registered(self, channel_type: int, channel_id: int) -> None:
        self.pipe_add(_Item("registered", channel_type, channel_id))
        self.push()

    def push_mouse_mode(self) -> None:
        self.pipe_add(_Item("mouse_mode"))

    def push_multi_media_time(self, t: int) -> None:
        self.pipe_add(_Item("mm_time", t))

    def push_notify(self, text: str) -> None:
        self.pipe_add(_Item("notify", text))

    def push_agent_connected(self) -> None:
        if self.test_cap(MainCap.AGENT_CONNECTED_TOKENS):
            self.pipe_add(_Item("agent_connected_tokens"))
        else:
            self.pipe_add_empty(MsgMain.AGENT_CONNECTED)
        self.push()

    def push_agent_disconnected(self) -> None:
        self.pipe_add(_Item("agent_disconnected"))
        self.push()

    def push_agent_token(self, n: int) -> None:
        self.pipe_add(_Item("agent_token", n))
        self.push()

    def push_agent_data(self, data: bytes) -> None:
        self.pipe_add(_Item("agent_data", data))
        self.push()

    # -- marshalling -----------------------------------------------------------------

    def send_item(self, item: PipeItem) -> None:
        assert isinstance(item, _Item)
        kind = item.kind
        if not self.init_sent and kind != "init":
            return  # nothing goes out before MAIN_INIT
        if kind == "init":
            self.init_sent = True
            srv = self.server
            supported = 1 | (2 if srv.client_mouse_allowed else 0)
            body = _INIT.pack(self.connection_id, len(srv.workers), supported, srv.mouse_mode,
                              1 if srv.agent_attached() else 0, 10,
                              (mm_time() - MM_TIME_DELTA) & 0xFFFFFFFF, srv.qxl_ram_hint())
            self.send_message(MsgMain.INIT, body)
        elif kind == "name":
            name = item.args[0].encode("utf-8") + b"\0"
            self.send_message(MsgMain.NAME, _U32.pack(len(name)) + name)
        elif kind == "uuid":
            self.send_message(MsgMain.UUID, bytes(item.args[0]))
        elif kind == "channels":
            chans = self.server.channel_list()
            body = _U32.pack(len(chans)) + b"".join(struct.pack("<BB", t, i) for t, i in chans)
            self.send_message(MsgMain.CHANNELS_LIST, body)
            self.channels_list_sent = True
        elif kind == "registered":
            if self.channels_list_sent:  # else the client learns it from its list
                body = _U32.pack(1) + struct.pack("<BB", *item.args)
                self.send_message(MsgMain.CHANNELS_LIST, body)
        elif kind == "ping":
            self._net_ping_id += 1
            size = item.args[0]
            body = _PING.pack(self._net_ping_id, time.monotonic_ns() // 1000)
            self.send_message(Msg.PING, body + (_ZEROS[:size] if size else b""))
        elif kind == "mouse_mode":
            srv = self.server
            supported = 1 | (2 if srv.client_mouse_allowed else 0)
            self.send_message(MsgMain.MOUSE_MODE, _MOUSE_MODE.pack(supported, srv.mouse_mode))
        elif kind == "mm_time":
            self.send_message(MsgMain.MULTI_MEDIA_TIME, _U32.pack(item.args[0] & 0xFFFFFFFF))
        elif kind == "notify":
            text = item.args[0].encode("utf-8")
            body = _NOTIFY.pack(time.monotonic_ns(), NOTIFY_SEVERITY_WARN, NOTIFY_VISIBILITY_HIGH,
                                WARN_GENERAL, len(text)) + text + b"\0"
            self.send_message(Msg.NOTIFY, body)
        elif kind == "agent_connected_tokens":
            self.send_message(MsgMain.AGENT_CONNECTED_TOKENS, _U32.pack(10))
        elif kind == "agent_disconnected":
            self.send_message(MsgMain.AGENT_DISCONNECTED, _U32.pack(LinkErr.OK))
        elif kind == "agent_token":
            self.send_message(MsgMain.AGENT_TOKEN, _U32.pack(item.args[0]))
        elif kind == "agent_data":
            self.send_message(MsgMain.AGENT_DATA, item.args[0])

    # -- incoming ------------------------------------------------------------------------

    def handle_message(self, msg_type: int, r: Reader) -> bool:
        srv = self.server
        if msg_type == MsgCMain.ATTACH_CHANNELS:
            self.pipe_add(_Item("channels"))
        elif msg_type == MsgCMain.MOUSE_MODE_REQUEST:
            srv.request_mouse_mode(r.u16())
        elif msg_type == MsgCMain.AGENT_START:
            srv.agent_start(self, r.u32())
        elif msg_type == MsgCMain.AGENT_DATA:
            if not srv.agent_data(self, r.rest()):
                raise ProtocolError("agent data flow control violated")
        elif msg_type == MsgCMain.AGENT_TOKEN:
            srv.agent_tokens(self, r.u32())
        elif msg_type == MsgCMain.CLIENT_INFO:
            r.u64()  # legacy cache size hint
        elif msg_type in (MsgCMain.MIGRATE_CONNECTED, MsgCMain.MIGRATE_CONNECT_ERROR,
                          MsgCMain.MIGRATE_END, MsgCMain.MIGRATE_CONNECTED_SEAMLESS,
                          MsgCMain.MIGRATE_DST_DO_SEAMLESS):
            log.info("%s: migration message %d ignored: no migration in progress",
                     self.name, msg_type)
        elif msg_type == MsgCMain.QUALITY_INDICATOR:
            pass
        else:
            return False
        self.push()
        return True

    def _dispatch(self, msg_type: int, body: bytes) -> None:
        if msg_type == MsgC.PONG:
            r = Reader(body)
            ping_id, timestamp = r.u32(), r.u64()
            if self._net_stage in ("warmup", "latency", "rate") and ping_id == self._net_test_id:
                self._net_pong(timestamp)
                return
        super()._dispatch(msg_type, body)

    def _net_pong(self, timestamp_us: int) -> None:
        rtt = time.monotonic_ns() // 1000 - timestamp_us
        if self._net_stage == "warmup":
            self._net_test_id += 1
            self._net_stage = "latency"
            self.latency_us = rtt
        elif self._net_stage == "latency":
            self._net_test_id += 1
            self._net_stage = "rate"
            self.latency_us = min(self.latency_us, rtt)
        else:
            self._net_test_id = 0
            if rtt <= self.latency_us:
                self._net_stage = "invalid"  # too noisy to tell: assume fast
                self.latency_us = 0
            else:
                self.bitrate_bps = NET_TEST_BYTES * 8 * 1_000_000 // (rtt - self.latency_us)
                self._net_stage = "complete"
                log.info("%s: net test: latency %.2f ms, %.1f Mbit/s%s", self.name,
                         self.latency_us / 1000, self.bitrate_bps / 1e6,
                         " (low bandwidth)" if self.is_low_bandwidth() else "")
            self.start_connectivity_monitoring(CONNECTIVITY_TIMEOUT_MS)

    def is_low_bandwidth(self) -> bool:
        return self._net_stage == "complete" and self.bitrate_bps < LOW_BANDWIDTH_BPS

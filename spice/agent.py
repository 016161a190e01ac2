"""The guest agent stream: VDIPort char device <-> main channel AGENT_* messages.

The agent byte stream is a sequence of chunks, each a VDIChunkHeader
{port u32, size u32} followed by ``size`` bytes.  Chunks on the client port
carry the vd_agent message stream between the guest agent and the client;
chunks on the server port carry messages the server itself sends (mouse
position in client mouse mode, "client disconnected").

Flow control, as spice-server does it:

* client -> device: the client may have ``AGENT_WINDOW`` AGENT_DATA
  messages in flight.  Each one becomes one chunk in the device write
  queue; when the device has taken it whole the token is free again, and
  freed tokens go back to the client in AGENT_TOKEN batches of 5.  A client
  sending beyond its tokens is disconnected.
* device -> client: the client grants tokens with AGENT_START / AGENT_TOKEN;
  each AGENT_DATA sent costs one.  With no token left the server stops
  reading the device (at most 5 read buffers are held).
* the server's own messages use one internal token, so a flood of mouse
  positions never queues more than one.

Everything here runs on the core thread; :meth:`wakeup` and
:meth:`port_event` may be called from any thread.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import TYPE_CHECKING

from spice.interfaces import CharDeviceInterface
from spice.qxl import ClientMonitor, ClientMonitorsConfig

if TYPE_CHECKING:
    from spice.main_channel import MainChannelClient
    from spice.server import SpiceServer

log = logging.getLogger(__name__)

VDP_CLIENT_PORT = 1
VDP_SERVER_PORT = 2
VD_AGENT_PROTOCOL = 1
VD_AGENT_MAX_DATA_SIZE = 2048
VD_AGENT_MOUSE_STATE = 1
VD_AGENT_MONITORS_CONFIG = 2
VD_AGENT_CLIENT_DISCONNECTED = 13
VD_AGENT_UBUTTON_MASK = 1 << 4
VD_AGENT_DBUTTON_MASK = 1 << 5

AGENT_WINDOW = 10  # REDS_AGENT_WINDOW_SIZE: client tokens
TOKENS_TO_SEND = 5  # client tokens are returned in batches of this many
NUM_READ_BUFFERS = 5  # device -> client messages held at most
NUM_SELF_TOKENS = 1  # server-originated messages in flight
WRITE_RETRY_MS = 100
MAX_MONITORS_CONFIG = 256

_CHUNK = struct.Struct("<II")
_MSG = struct.Struct("<IIQI")
_MOUSE = struct.Struct("<IIIB")
_MON_HEAD = struct.Struct("<II")  # VDAgentMonitorsConfig: num_of_monitors, flags
_MON = struct.Struct("<IIIii")  # VDAgentMonConfig: height, width, depth, x, y
MONITORS_CONFIG_MAX_BYTES = _MSG.size + _MON_HEAD.size + MAX_MONITORS_CONFIG * _MON.size


class _WriteBuf:
    __slots__ = ("data", "origin")

    def __init__(self, data: bytes, origin: str) -> None:
        self.data = data
        self.origin = origin  # "client", "server" (costs a self token), "free"


def _server_message(msg_type: int, payload: bytes) -> bytes:
    body = _MSG.pack(VD_AGENT_PROTOCOL, msg_type, 0, len(payload)) + payload
    return _CHUNK.pack(VDP_SERVER_PORT, len(body)) + body


class AgentDevice:
    """The server side of one vdagent char device (the CharDeviceHandle)."""

    def __init__(self, server: SpiceServer, dev: CharDeviceInterface) -> None:
        self.server = server
        self.core = server.core
        self.dev = dev
        self.attached = False  # the guest side has the port open
        self.client: MainChannelClient | None = None
        self.client_started = False
        # client -> device
        self._client_tokens = 0
        self._client_tokens_free = 0
        self._write_queue: deque[_WriteBuf] = deque()
        self._cur: _WriteBuf | None = None
        self._cur_pos = 0
        self._self_tokens = NUM_SELF_TOKENS
        self._pending_mouse: bytes | None = None
        self._write_timer = self.core.timer_add(self._service)  # _service guards itself
        # client-bound filter state (message boundaries inside AGENT_DATA)
        self._filter_to_read = 0
        self._filter_result = "ok"
        self._monitors_buf = bytearray()
        self._monitors_to_device = False  # client layouts go to the QXL device
        # device -> client
        self._send_tokens = 0
        self._send_queue: deque[bytes] = deque()
        self._rx_header = bytearray()
        self._rx_port = 0
        self._rx_left = 0
        self._rx_buf = bytearray()
        self._servicing = False
        self.bytes_to_device = 0
        self.bytes_from_device = 0

    # -- CharDeviceHandle (any thread) --------------------------------------------------

    def wakeup(self) -> None:
        self.core.call_soon(self._service)

    def port_event(self, opened: bool) -> None:
        self.core.call_soon(lambda: self._guard(self._set_attached, opened))

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("agent: unexpected error; resetting the agent stream")
            self._reset_stream()

    # -- attach / detach ------------------------------------------------------------------

    def _set_attached(self, opened: bool) -> None:
        if opened == self.attached:
            return
        self.attached = opened
        if opened:
            log.info("agent connected")
            self._reset_stream()
            self.server.update_mouse_mode()
            if self.client is not None and self.client.connected:
                self._client_tokens = AGENT_WINDOW
                self._client_tokens_free = 0
                self.client.push_agent_connected()
        else:
            log.info("agent disconnected")
            self._reset_stream()
            self.client_started = False
            self.server.update_mouse_mode()
            if self.client is not None and self.client.connected:
                self.client.push_agent_disconnected()

    def _reset_stream(self) -> None:
        self._write_queue.clear()
        self._cur = None
        self._cur_pos = 0
        self._rx_header.clear()
        self._rx_left = 0
        self._rx_buf.clear()
        self._send_queue.clear()
        self._filter_to_read = 0
        self._self_tokens = NUM_SELF_TOKENS
        self._pending_mouse = None

    # -- main channel client side --------------------------------------------------------

    def client_connected(self, mcc: MainChannelClient) -> None:
        self.client = mcc
        self.client_started = False
        self._client_tokens = AGENT_WINDOW
        self._client_tokens_free = 0
        self._send_tokens = 0
        self._filter_to_read = 0

    def client_disconnected(self, mcc: MainChannelClient) -> None:
        if self.client is not mcc:
            return
        self.client = None
        self.client_started = False
        self._send_queue.clear()
        # drop what the departed client had queued, then tell the agent
        self._write_queue = deque(b for b in self._write_queue if b.origin != "client")
        if self.attached:
            self._write_queue.append(_WriteBuf(_server_message(VD_AGENT_CLIENT_DISCONNECTED,
                                                               b""), "free"))
            self._service()

    def client_start(self, mcc: MainChannelClient, num_tokens: int) -> None:
        if not self.attached or mcc is not self.client:
            return
        self.client_started = True
        self._send_tokens = num_tokens
        self._filter_to_read = 0
        # decided once per AGENT_START, as spice-server configures its filter
        self._monitors_to_device = self.server.qxl_takes_monitors_config()
        self._service()

    def client_tokens(self, mcc: MainChannelClient, num_tokens: int) -> None:
        if not self.attached or mcc is not self.client:
            return
        self._send_tokens = min(self._send_tokens + num_tokens, 0xFFFFFFFF)
        self._service()

    def client_data(self, mcc: MainChannelClient, data: bytes) -> bool:
        """One AGENT_DATA from the client.  False means a protocol violation
        (the caller disconnects the client)."""
        if not self.attached or not self.client_started or mcc is not self.client:
            return True  # addressed to a previous agent instance: dropped
        verdict = self._filter(data)
        if verdict == "error":
            return False
        if self._client_tokens <= 0:
            log.warning("agent: client sent data beyond its tokens")
            return False
        self._client_tokens -= 1
        if verdict == "monitors":
            if not self._monitors_config(data):
                return False
            self._token_freed()
            return True
        self._write_queue.append(_WriteBuf(_CHUNK.pack(VDP_CLIENT_PORT, len(data)) + data,
                                           "client"))
        self._service()
        return True

    def _filter(self, data: bytes) -> str:
        """Follow vd_agent message boundaries in the client stream so monitor
        configurations can be handed to the display device."""
        n = len(data)
        if n > VD_AGENT_MAX_DATA_SIZE:
            return "error"
        if self._filter_to_read:
            if n > self._filter_to_read:
                return "error"
            self._filter_to_read -= n
            return self._filter_result
        if n < _MSG.size:
            return "error"
        protocol, msg_type, _opaque, size = _MSG.unpack_from(data, 0)
        if protocol != VD_AGENT_PROTOCOL:
            return "error"
        self._filter_result = "ok"
        if msg_type == VD_AGENT_MONITORS_CONFIG and self._monitors_to_device:
            self._filter_result = "monitors"
            self._monitors_buf.clear()
        rest = n - _MSG.size
        if rest > size:
            return "error"
        self._filter_to_read = size - rest
        return self._filter_result

    def _monitors_config(self, data: bytes) -> bool:
        """Collect a VD_AGENT_MONITORS_CONFIG and hand it to the display
        devices; False (drop the client) for one larger than
        MAX_MONITORS_CONFIG monitors or claiming more than it carries, as
        spice-server does."""
        if len(self._monitors_buf) + len(data) > MONITORS_CONFIG_MAX_BYTES:
            log.warning("agent: client monitors config larger than %d monitors",
                        MAX_MONITORS_CONFIG)
            self._monitors_buf.clear()
            return False
        self._monitors_buf += data
        if self._filter_to_read:
            return True
        buf = bytes(self._monitors_buf)
        self._monitors_buf.clear()
        body = buf[_MSG.size:]
        if len(body) < _MON_HEAD.size:
            return True
        count, flags = _MON_HEAD.unpack_from(body, 0)
        if _MON_HEAD.size + count * _MON.size > len(body):
            log.warning("agent: client monitors config says %d monitors in %d bytes",
                        count, len(body))
            return False
        mons = []
        for i in range(count):
            h, w, depth, x, y = _MON.unpack_from(body, _MON_HEAD.size + i * _MON.size)
            mons.append(ClientMonitor(width=w, height=h, depth=depth, x=x, y=y))
        self.server.client_monitors_config(ClientMonitorsConfig(flags=flags, monitors=mons))
        return True

    def send_mouse_state(self, x: int, y: int, buttons: int, display_id: int) -> None:
        state = _MOUSE.pack(x & 0xFFFFFFFF, y & 0xFFFFFFFF, buttons, display_id & 0xFF)
        msg = _server_message(VD_AGENT_MOUSE_STATE, state)
        if not self.attached:
            return
        if self._self_tokens <= 0:
            self._pending_mouse = msg  # only the newest position matters
            return
        self._self_tokens -= 1
        self._write_queue.append(_WriteBuf(msg, "server"))
        self._service()

    def _token_freed(self) -> None:
        self._client_tokens_free += 1
        if self._client_tokens_free >= TOKENS_TO_SEND and self.client is not None:
            n = self._client_tokens_free
            self._client_tokens += n
            self._client_tokens_free = 0
            self.client.push_agent_token(n)

    # -- moving bytes ------------------------------------------------------------------

    def _service(self) -> None:
        if self._servicing:
            return
        self._servicing = True
        try:
            self._write_to_device()
            self._read_from_device()
        except Exception:
            log.exception("agent: device error; resetting the agent stream")
            self._reset_stream()
        finally:
            self._servicing = False

    def _write_to_device(self) -> None:
        if not self.attached:
            return
        self.core.timer_cancel(self._write_timer)
        while True:
            if self._cur is None:
                if not self._write_queue:
                    return
                self._cur = self._write_queue.popleft()
                self._cur_pos = 0
            data = self._cur.data
            n = self.dev.write(data[self._cur_pos:])
            if n <= 0:
                self.core.timer_start(self._write_timer, WRITE_RETRY_MS)
                return
            self.bytes_to_device += n
            self._cur_pos += n
            if self._cur_pos >= len(data):
                done, self._cur = self._cur, None
                if done.origin == "client":
                    self._token_freed()
                elif done.origin == "server":
                    self._self_tokens += 1
                    if self._pending_mouse is not None:
                        msg, self._pending_mouse = self._pending_mouse, None
                        self._self_tokens -= 1
                        self._write_queue.append(_WriteBuf(msg, "server"))

    def _can_send(self) -> bool:
        if self.client is None or not self.client_started:
            return True  # nobody listens: read and discard
        return self._send_tokens > 0

    def _read_from_device(self) -> None:
        if not self.attached:
            return
        self._drain_send_queue()
        while self._can_send() and len(self._send_queue) < NUM_READ_BUFFERS:
            if self._rx_left == 0:
                need = _CHUNK.size - len(self._rx_header)
                got = self.dev.read(need)
                if not got:
                    return
                self.bytes_from_device += len(got)
                self._rx_header += got
                if len(self._rx_header) < _CHUNK.size:
                    continue
                self._rx_port, self._rx_left = _CHUNK.unpack(bytes(self._rx_header))
                self._rx_header.clear()
                if self._rx_port not in (VDP_CLIENT_PORT, VDP_SERVER_PORT):
                    log.warning("agent: chunk for unknown port %d; resetting", self._rx_port)
                    self._reset_stream()
                    return
                if self._rx_left == 0:
                    continue
            want = min(self._rx_left, VD_AGENT_MAX_DATA_SIZE - len(self._rx_buf))
            got = self.dev.read(want)
            if not got:
                return
            self.bytes_from_device += len(got)
            self._rx_buf += got
            self._rx_left -= len(got)
            if self._rx_left and len(self._rx_buf) < VD_AGENT_MAX_DATA_SIZE:
                continue
            data, self._rx_buf = bytes(self._rx_buf), bytearray()
            if self._rx_port == VDP_CLIENT_PORT and self.client is not None and self.client_started:
                self._send_queue.append(data)
                self._drain_send_queue()

    def _drain_send_queue(self) -> None:
        while self._send_queue and self.client is not None and self._send_tokens > 0:
            self._send_tokens -= 1
            self.client.push_agent_data(self._send_queue.popleft())

    def close(self) -> None:
        self.core.timer_cancel(self._write_timer)
        self.core.timer_remove(self._write_timer)

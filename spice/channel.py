"""The base of every channel client: one linked socket on one event loop.

What spice-server's RedChannelClient does, in one place:

* a non-blocking socket watched through a :class:`CoreInterface` (the
  host's core for main/inputs, the red worker's loop for display/cursor);
* incoming messages parsed with a size limit per channel and handed to
  :meth:`ChannelClient.handle_message`; a malformed or unknown message
  closes this connection only;
* a pipe of outgoing items, marshalled one at a time only while the socket
  takes data, so a client that stops reading holds at most one marshalled
  message plus a bounded pipe;
* the SET_ACK/ACK window (display and cursor channels): the server stops
  sending when more than twice the window is unacknowledged;
* the latency monitor: PING 100 ms after the channel starts (once the
  socket has sent everything), then 15 s (display) or 5 min after each
  answer; and the connectivity monitor that drops a silent peer.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import random
import socket
import struct
import termios
import time
from collections import deque
from collections.abc import Callable

from spice.interfaces import CoreInterface, WatchEvent
from spice.link import LinkedStream
from spice.protocol import (
    FULL_HEADER_SIZE,
    MINI_HEADER_SIZE,
    Msg,
    MsgC,
    has_cap,
)
from spice.wire import Buffer, ProtocolError, Reader, Writer, full_header, mini_header

log = logging.getLogger(__name__)

CLIENT_ACK_WINDOW = 20
NARROW_CLIENT_ACK_WINDOW = 20
WIDE_CLIENT_ACK_WINDOW = 40
PING_IDLE_MS = 100
PING_TIMEOUT_MS = 15_000
PING_LONG_TIMEOUT_MS = 5 * 60_000
STALL_TIMEOUT_S = 0.2  # over the pipe limit with nothing written for this long
BEHIND_TIMEOUT_S = 1.0  # over the pipe limit continuously for this long
SEND_BATCH_BYTES = 256 * 1024  # marshal ahead at most this much per flush
RECV_CHUNK = 64 * 1024
_PING = struct.Struct("<IQ")
_SET_ACK = struct.Struct("<II")
_DISCONNECTING = struct.Struct("<QI")
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", 0x5411)
_READ = WatchEvent.READ
_READ_WRITE = WatchEvent.READ | WatchEvent.WRITE


class PipeItem:
    """Something queued for one client.  ``release`` runs exactly once, when
    the item's message has left the socket or the item was dropped."""

    __slots__ = ()

    def release(self) -> None:
        pass


class EmptyMsgItem(PipeItem):
    __slots__ = ("msg_type",)

    def __init__(self, msg_type: int) -> None:
        self.msg_type = msg_type


class _SetAckItem(PipeItem):
    __slots__ = ()


class _PingItem(PipeItem):
    __slots__ = ()


class ChannelStats:
    """Counters shared by all channel clients of a server."""

    def __init__(self) -> None:
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_in = 0
        self.bytes_out = 0


class ChannelClient:
    """One client connection of one channel.  Subclasses set the class
    attributes and implement :meth:`send_item` and :meth:`handle_message`."""

    channel_type = 0
    handle_acks = False
    monitor_latency = False
    max_message_size = 1024  # spice-server's per-channel receive buffer
    pipe_limit = 1000  # beyond this the client is too slow: see on_pipe_overflow

    def __init__(self, core: CoreInterface, linked: LinkedStream,
                 on_disconnect: Callable[[ChannelClient], None] | None = None,
                 stats: ChannelStats | None = None) -> None:
        self.core = core
        self.sock = linked.sock
        self.peer = linked.peer
        self.channel_id = linked.channel_id
        self.connection_id = linked.connection_id
        self.mini_header = linked.mini_header
        self.caps = linked.mess.channel_caps
        self.stats = stats or ChannelStats()
        self._on_disconnect = on_disconnect
        self.connected = True
        self._in = bytearray(linked.pending)
        self._out: deque[memoryview] = deque()
        self._out_bytes = 0
        self._sent_items: list[PipeItem] = []  # whose data is still in _out
        self.pipe: deque[PipeItem] = deque()
        self.serial = 0
        self._recv_serial = 0
        # ACK window
        self.ack_generation = 0
        self.client_generation = 0xFFFFFFFF
        self.messages_window = 0
        self.client_window = CLIENT_ACK_WINDOW
        self.low_bandwidth = False
        # latency monitor
        self.roundtrip_ns = -1
        self._ping_id = 0
        self._ping_state = "none"  # none, timer, warmup, latency
        self._ping_timeout = PING_TIMEOUT_MS if self.monitor_latency else PING_LONG_TIMEOUT_MS
        self._ping_timer = core.timer_add(self._guarded(self._on_ping_timer))
        self._last_pong: int | None = None  # monotonic ns of the last measurement
        # connectivity monitor
        self._conn_timer = None
        self._conn_timeout = 0
        self._conn_state = "connected"
        self._received_bytes = False
        self._sent_bytes = False
        self.last_progress = time.monotonic()
        self._over_since: float | None = None
        self.sock.setblocking(False)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._watch = core.watch_add(self.sock.fileno(), _READ, self._on_event)
        self._watch_mask = _READ  # what the core was last asked to watch for
        if linked.unsent:  # the link reply the socket had not taken yet goes out first
            self._out.append(memoryview(linked.unsent))
            self._out_bytes += len(linked.unsent)
        if self.peer is not None:
            self._start_ping_timer(PING_IDLE_MS)

    def configure_bandwidth(self, low_bandwidth: bool) -> None:
        """Display and cursor channels of a client the main channel's network
        test found slow: a wider ACK window, and Nagle back on."""
        self.low_bandwidth = low_bandwidth
        self.client_window = WIDE_CLIENT_ACK_WINDOW if low_bandwidth else NARROW_CLIENT_ACK_WINDOW
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0 if low_bandwidth else 1)
        except OSError:
            pass

    # -- capabilities -------------------------------------------------------------------

    def test_cap(self, cap: int) -> bool:
        return has_cap(self.caps, cap)

    # -- events --------------------------------------------------------------------------

    def _guarded(self, fn: Callable[[], None]) -> Callable[[], None]:
        """A callback for the loop that never lets an exception out: an
        unexpected error closes this connection only."""
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("%s: unexpected error, closing connection", self.name)
                self.disconnect()
        return run

    def _on_event(self, fd: int, events: WatchEvent) -> None:
        try:
            if events & WatchEvent.READ:
                self._receive()
            if self.connected and events & WatchEvent.WRITE:
                self.push()
        except ProtocolError as exc:
            log.info("%s: closing connection: %s", self.name, exc)
            self.disconnect()
        except OSError as exc:
            log.debug("%s: socket error: %s", self.name, exc)
            self.disconnect()
        except Exception:
            log.exception("%s: unexpected error, closing connection", self.name)
            self.disconnect()

    @property
    def name(self) -> str:
        return f"{type(self).__name__}({self.channel_id}) {self.peer}"

    # -- receiving ------------------------------------------------------------------------

    def _receive(self) -> None:
        try:
            chunk = self.sock.recv(RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionError:
            self.disconnect()
            return
        if not chunk:
            self.disconnect()
            return
        self._received_bytes = True
        self.stats.bytes_in += len(chunk)
        self._in += chunk
        self._parse()

    def _parse(self) -> None:
        hsize = MINI_HEADER_SIZE if self.mini_header else FULL_HEADER_SIZE
        data = self._in
        pos = 0
        try:
            while self.connected and len(data) - pos >= hsize:
                if self.mini_header:
                    msg_type, size = struct.unpack_from("<HI", data, pos)
                else:
                    _serial, msg_type, size, _sub = struct.unpack_from("<QHII", data, pos)
                if size > self.message_size_limit(msg_type):
                    raise ProtocolError(f"message {msg_type} of {size} bytes is too large")
                if len(data) - pos - hsize < size:
                    break
                body = bytes(data[pos + hsize:pos + hsize + size])
                pos += hsize + size
                self._recv_serial += 1
                self.stats.messages_in += 1
                self._dispatch(msg_type, body)
        finally:
            del data[:pos]

    def message_size_limit(self, msg_type: int) -> int:
        return self.max_message_size

    def _dispatch(self, msg_type: int, body: bytes) -> None:
        r = Reader(body)
        if msg_type == MsgC.ACK_SYNC:
            self.client_generation = r.u32()
        elif msg_type == MsgC.ACK:
            if self.client_generation == self.ack_generation:
                self.messages_window -= self.client_window
                self.push()
        elif msg_type == MsgC.PONG:
            ping_id = r.u32()
            timestamp = r.u64()
            self.handle_pong(ping_id, timestamp)
        elif msg_type == MsgC.DISCONNECTING:
            pass
        elif msg_type in (MsgC.MIGRATE_FLUSH_MARK, MsgC.MIGRATE_DATA):
            raise ProtocolError("migration message outside a migration")
        elif not self.handle_message(msg_type, r):
            raise ProtocolError(f"unexpected message type {msg_type}")

    def handle_message(self, msg_type: int, r: Reader) -> bool:
        """Handle a channel message; False for an unknown type."""
        return False

    # -- the pipe ---------------------------------------------------------------------

    def pipe_add(self, item: PipeItem) -> None:
        if not self.connected:
            item.release()
            return
        self.pipe.append(item)
        if len(self.pipe) > self.pipe_limit:
            self.on_pipe_overflow()

    def pipe_add_front(self, item: PipeItem) -> None:
        """Queue ``item`` to be sent before everything already queued."""
        if not self.connected:
            item.release()
            return
        self.pipe.appendleft(item)

    def pipe_add_empty(self, msg_type: int) -> None:
        self.pipe_add(EmptyMsgItem(msg_type))

    def push_set_ack(self) -> None:
        self.pipe_add(_SetAckItem())

    def on_pipe_overflow(self) -> None:
        """The pipe passed ``pipe_limit``: this client does not read.  The
        default drops the connection; display and cursor channels collapse
        their pipe instead."""
        log.warning("%s: client is not reading (%d queued), disconnecting",
                    self.name, len(self.pipe))
        self.disconnect()

    @property
    def blocked(self) -> bool:
        """The socket did not take everything marshalled so far."""
        return self._out_bytes > 0

    def is_behind(self, now: float, limit: int) -> bool:
        """Whether a pipe over ``limit`` items means this client cannot keep
        up: nothing written for STALL_TIMEOUT_S, or over the limit without a
        break for BEHIND_TIMEOUT_S."""
        if len(self.pipe) <= limit:
            self._over_since = None
            return False
        if self._over_since is None:
            self._over_since = now
        stalled = (self.blocked or self.waiting_for_ack()) and \
            now - self.last_progress >= STALL_TIMEOUT_S
        if stalled or now - self._over_since >= BEHIND_TIMEOUT_S:
            self._over_since = None
            return True
        return False

    def waiting_for_ack(self) -> bool:
        return self.handle_acks and self.messages_window > self.client_window * 2

    def push(self) -> None:
        """Send as much of the pipe as the socket and the ACK window allow."""
        while self.connected:
            if self._out:
                self._flush()
                if self._out:
                    break
            if not self.pipe or self.waiting_for_ack():
                break
            while (self.pipe and self._out_bytes < SEND_BATCH_BYTES
                   and not self.waiting_for_ack() and self.connected):
                item = self.pipe.popleft()
                try:
                    self._send_any(item)
                finally:
                    # send_message(..., item) keeps the item until its bytes
                    # have left; anything else is done with now
                    if not self._sent_items or self._sent_items[-1] is not item:
                        item.release()
        if self.connected:
            self._update_watch()
            if not self._out and not self.pipe and self._ping_state == "none":
                self._restart_ping_timer()

    def _send_any(self, item: PipeItem) -> None:
        if isinstance(item, EmptyMsgItem):
            self.send_message(item.msg_type, None)
        elif isinstance(item, _SetAckItem):
            self.ack_generation = (self.ack_generation + 1) & 0xFFFFFFFF
            self.messages_window = 0
            self.send_message(Msg.SET_ACK, _SET_ACK.pack(self.ack_generation, self.client_window))
        elif isinstance(item, _PingItem):
            self.send_message(Msg.PING, _PING.pack(self._ping_id, time.monotonic_ns()))
        else:
            self.send_item(item)

    def send_item(self, item: PipeItem) -> None:
        raise NotImplementedError

    def send_message(self, msg_type: int, body: Writer | Buffer | None,
                     item: PipeItem | None = None) -> None:
        """Marshal one message into the output queue.  If ``item`` is given its
        ``release`` waits until the bytes have been written."""
        if isinstance(body, Writer):
            parts, size = body.finish()
        elif body is None:
            parts, size = [], 0
        else:
            parts, size = [body], len(body)
        self.serial += 1
        if self.mini_header:
            header = mini_header(msg_type, size)
        else:
            header = full_header(self.serial, msg_type, size)
        out = self._out
        out.append(memoryview(header))
        queued = len(header)
        for p in parts:
            mv = memoryview(p)
            if mv.nbytes:
                out.append(mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv)
                queued += mv.nbytes
        self._out_bytes += queued
        if item is not None:
            self._sent_items.append(item)
        self.messages_window += 1
        self.stats.messages_out += 1

    def _flush(self) -> None:
        while self._out:
            bufs = list(itertools.islice(self._out, 64))
            try:
                n = self.sock.sendmsg(bufs)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.disconnect()
                return
            if n <= 0:
                break
            self._sent_bytes = True
            self.last_progress = time.monotonic()
            self.stats.bytes_out += n
            self._out_bytes -= n
            while n:
                head = self._out[0]
                if head.nbytes <= n:
                    n -= head.nbytes
                    self._out.popleft()
                else:
                    self._out[0] = head[n:]
                    n = 0
        if not self._out and self._sent_items:
            items, self._sent_items = self._sent_items, []
            for it in items:
                it.release()

    def _update_watch(self) -> None:
        if not self.connected:
            return
        writing = self._out or (self.pipe and not self.waiting_for_ack())
        mask = _READ_WRITE if writing else _READ
        if mask is not self._watch_mask:  # (runs after every push: ask only for changes)
            self._watch_mask = mask
            self.core.watch_update_mask(self._watch, mask)

    # -- latency and connectivity monitors ----------------------------------------------

    # The latency monitor, as spice-server's: the timer runs from the
    # channel's start (PING_IDLE_MS) and then from each measurement (the
    # latency timeout); messages do not stop it.  When the pipe empties it is
    # started if idle -- PING_IDLE_MS after the latency timeout since the
    # last pong -- and a firing that finds bytes still in the socket's send
    # queue tries again PING_IDLE_MS later.
    def _start_ping_timer(self, ms: int) -> None:
        if self.peer is None or not self.connected or self._ping_state != "none":
            return
        self._ping_state = "timer"
        self.core.timer_start(self._ping_timer, ms)

    def _restart_ping_timer(self) -> None:
        timeout = PING_IDLE_MS
        if self._last_pong is not None:
            passed = (time.monotonic_ns() - self._last_pong) // 1_000_000
            if passed < self._ping_timeout:
                timeout += self._ping_timeout - passed
        self._start_ping_timer(timeout)

    def _cancel_ping_timer(self) -> None:
        if self._ping_state == "timer":
            self.core.timer_cancel(self._ping_timer)
            self._ping_state = "none"

    def _on_ping_timer(self) -> None:
        if not self.connected or self._ping_state != "timer":
            return
        self._ping_state = "none"
        if self._unsent_in_kernel() > 0:
            self._start_ping_timer(PING_IDLE_MS)
            return
        self._ping_state = "warmup"
        self._ping_id = random.getrandbits(31)
        self.pipe_add(_PingItem())
        self.pipe_add(_PingItem())
        self.push()

    def _unsent_in_kernel(self) -> int:
        try:
            buf = fcntl.ioctl(self.sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
            return struct.unpack("<i", buf)[0]
        except OSError:
            return 0

    def handle_pong(self, ping_id: int, timestamp: int) -> None:
        if ping_id != self._ping_id:
            return
        if self._ping_state == "warmup":
            self._ping_state = "latency"
            return
        if self._ping_state != "latency":
            return
        now = time.monotonic_ns()
        rtt = now - timestamp
        if self.roundtrip_ns < 0 or 0 <= rtt < self.roundtrip_ns:
            self.roundtrip_ns = rtt
        self._last_pong = now
        self._ping_state = "none"
        self._start_ping_timer(self._ping_timeout)

    def start_connectivity_monitoring(self, timeout_ms: int) -> None:
        # pings now also tell whether the client is alive: from the next idle moment
        self._cancel_ping_timer()
        self._ping_timeout = PING_TIMEOUT_MS
        self._start_ping_timer(PING_IDLE_MS)
        if self._conn_timer is None:
            self._conn_timer = self.core.timer_add(self._guarded(self._on_connectivity_timer))
            self._conn_timeout = timeout_ms
            self.core.timer_start(self._conn_timer, timeout_ms)

    def _on_connectivity_timer(self) -> None:
        if not self.connected:
            return
        alive = True
        if self._conn_state == "blocked" and not (self._received_bytes or self._sent_bytes):
            alive = False
        elif self._conn_state == "wait_pong" and not self._received_bytes:
            alive = False
        if not alive:
            log.warning("%s: unresponsive for %d ms, disconnecting", self.name, self._conn_timeout)
            self.disconnect()
            return
        self._received_bytes = self._sent_bytes = False
        if self.blocked or self.waiting_for_ack():
            self._conn_state = "blocked"
        elif self._ping_state in ("warmup", "latency"):
            self._conn_state = "wait_pong"
        else:
            self._conn_state = "connected"
        self.core.timer_start(self._conn_timer, self._conn_timeout)

    # -- teardown ------------------------------------------------------------------------

    def say_goodbye(self, reason: int = 0) -> None:
        """Best effort DISCONNECTING before the server closes this channel:
        whatever is queued is dropped, the message goes out if the socket
        takes it now."""
        if not self.connected:
            return
        items = list(self.pipe)
        self.pipe.clear()
        for it in items:
            it.release()
        self.send_message(Msg.DISCONNECTING, _DISCONNECTING.pack(time.monotonic_ns(), reason))
        try:
            self._flush()
        except OSError:
            pass
        self.disconnect()

    def disconnect(self) -> None:
        if not self.connected:
            return
        self.connected = False
        self.core.watch_remove(self._watch)
        self.core.timer_cancel(self._ping_timer)
        self.core.timer_remove(self._ping_timer)
        if self._conn_timer is not None:
            self.core.timer_cancel(self._conn_timer)
            self.core.timer_remove(self._conn_timer)
        try:
            self.sock.close()
        except OSError:
            pass
        items = list(self.pipe) + self._sent_items
        self.pipe.clear()
        self._sent_items = []
        self._out.clear()
        self._out_bytes = 0
        for it in items:
            try:
                it.release()
            except Exception:
                log.exception("%s: releasing a pipe item failed", self.name)
        try:
            self.on_disconnect()
        finally:
            if self._on_disconnect is not None:
                cb, self._on_disconnect = self._on_disconnect, None
                cb(self)

    def on_disconnect(self) -> None:
        """Channel-specific cleanup after the socket closed."""

"""A small SPICE client for tests and tools: link, channels, cursor decoding.

Blocking sockets with timeouts; everything a test needs to talk to the
server the way spice-gtk does: the link stage with an RSA-OAEP ticket, mini
headers, SET_ACK/ACK, PING/PONG.  The display channel's decoder and
client-side surfaces are in :mod:`display_client`.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from spice.protocol import (
    ChannelType,
    CommonCap,
    DisplayCap,
    LinkErr,
    MainCap,
    Msg,
    MsgC,
    MsgCDisplay,
    MsgCMain,
    MsgCursor,
    MsgMain,
    caps_to_words,
)
from spice.wire import Reader

if TYPE_CHECKING:
    from display_client import DisplayClient

DEFAULT_COMMON = (CommonCap.PROTOCOL_AUTH_SELECTION, CommonCap.AUTH_SPICE, CommonCap.MINI_HEADER)
# what spice-gtk 0.42 announces on its display channel (no GL, no other
# codecs) and the image cache it asks for, for tools that play that client
GTK_DISPLAY_CAPS = (DisplayCap.SIZED_STREAM, DisplayCap.MONITORS_CONFIG, DisplayCap.COMPOSITE,
                    DisplayCap.A8_SURFACE, DisplayCap.LZ4_COMPRESSION,
                    DisplayCap.PREF_COMPRESSION, DisplayCap.MULTI_CODEC,
                    DisplayCap.CODEC_MJPEG)
GTK_CACHE_PIXELS = 80 * 1024 * 1024 // 4
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(),
                     label=None)


class LinkError(Exception):
    def __init__(self, err: int, stage: str) -> None:
        super().__init__(f"link refused at {stage}: {LinkErr(err).name}")
        self.err = LinkErr(err)
        self.stage = stage


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def link_mess(connection_id: int, channel_type: int, channel_id: int,
              common_caps=DEFAULT_COMMON, channel_caps=()) -> bytes:
    common = caps_to_words(list(common_caps))
    chan = caps_to_words(list(channel_caps))
    body = struct.pack("<IBBIII", connection_id, channel_type, channel_id, len(common),
                       len(chan), 18)
    body += b"".join(struct.pack("<I", w) for w in common + chan)
    return b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body


class Channel:
    """One linked channel connection."""

    def __init__(self, sock: socket.socket, mini: bool, reply_caps: tuple[list, list]) -> None:
        self.sock = sock
        self.mini = mini
        self.server_common_caps, self.server_caps = reply_caps
        self.serial = 0
        self.recv_serial = 0
        self.ack_window = 0
        self.ack_generation = 0
        self.unacked = 0
        self.auto_ack = True
        self.auto_pong = True
        self.received: list[tuple[int, bytes]] = []

    def send(self, msg_type: int, body: bytes = b"") -> None:
        self.serial += 1
        if self.mini:
            header = struct.pack("<HI", msg_type, len(body))
        else:
            header = struct.pack("<QHII", self.serial, msg_type, len(body), 0)
        self.sock.sendall(header + body)

    def recv(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """Next message; SET_ACK and PING are answered on the way."""
        self.sock.settimeout(timeout)
        if self.mini:
            msg_type, size = struct.unpack("<HI", recv_exact(self.sock, 6))
        else:
            _serial, msg_type, size, _sub = struct.unpack("<QHII", recv_exact(self.sock, 18))
        body = recv_exact(self.sock, size)
        self.recv_serial += 1
        if msg_type == Msg.SET_ACK and self.auto_ack:
            self.ack_generation, self.ack_window = struct.unpack_from("<II", body)
            self.unacked = 0
            self.send(MsgC.ACK_SYNC, struct.pack("<I", self.ack_generation))
        elif msg_type == Msg.PING and self.auto_pong:
            self.send(MsgC.PONG, body[:12])
        if self.ack_window and self.auto_ack:
            self.unacked += 1
            if self.unacked >= self.ack_window:
                self.unacked = 0
                self.send(MsgC.ACK)
        return msg_type, body

    def recv_until(self, msg_type: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no message {msg_type}")
            t, body = self.recv(left)
            self.received.append((t, body))
            if t == msg_type:
                return body

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def link(host: str, port: int, channel_type: int, channel_id: int = 0, connection_id: int = 0,
         password: bytes | str = b"", common_caps=DEFAULT_COMMON, channel_caps=(),
         timeout: float = 5.0) -> Channel:
    """Link one channel; raises LinkError with the server's answer."""
    if isinstance(password, str):
        password = password.encode()
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(link_mess(connection_id, channel_type, channel_id, common_caps, channel_caps))
        magic, major, minor, size = struct.unpack("<4sIII", recv_exact(sock, 16))
        assert magic == b"REDQ" and major == 2
        reply = recv_exact(sock, size)
        (err,) = struct.unpack_from("<I", reply)
        if err != LinkErr.OK:
            raise LinkError(err, "reply")
        pub_key = reply[4:4 + 162]
        n_common, n_chan, caps_off = struct.unpack_from("<III", reply, 166)
        words = struct.unpack_from(f"<{n_common + n_chan}I", reply, caps_off)
        server_common, server_chan = list(words[:n_common]), list(words[n_common:])
        key = serialization.load_der_public_key(pub_key)
        auth = b""
        if CommonCap.PROTOCOL_AUTH_SELECTION in common_caps:
            auth = struct.pack("<I", CommonCap.AUTH_SPICE)
        sock.sendall(auth + key.encrypt(password, _OAEP))
        (result,) = struct.unpack("<I", recv_exact(sock, 4))
        if result != LinkErr.OK:
            raise LinkError(result, "ticket")
        mini = CommonCap.MINI_HEADER in common_caps and bool(server_common[0] & (1 << 3))
        return Channel(sock, mini, (server_common, server_chan))
    except BaseException:
        sock.close()
        raise


@dataclass
class MainInit:
    session_id: int
    display_channels_hint: int
    supported_mouse_modes: int
    current_mouse_mode: int
    agent_connected: int
    agent_tokens: int
    multi_media_time: int
    ram_hint: int


class Session:
    """A main channel plus helpers to open the others."""

    def __init__(self, host: str, port: int, password: bytes | str = b"",
                 main_caps=(MainCap.NAME_AND_UUID, MainCap.AGENT_CONNECTED_TOKENS)) -> None:
        self.host, self.port, self.password = host, port, password
        self.main = link(host, port, ChannelType.MAIN, password=password, channel_caps=main_caps)
        body = self.main.recv_until(MsgMain.INIT)
        self.init = MainInit(*struct.unpack("<8I", body[:32]))
        self.session_id = self.init.session_id

    def channels(self) -> list[tuple[int, int]]:
        self.main.send(MsgCMain.ATTACH_CHANNELS)
        body = self.main.recv_until(MsgMain.CHANNELS_LIST)
        (n,) = struct.unpack_from("<I", body)
        return [struct.unpack_from("<BB", body, 4 + 2 * i) for i in range(n)]

    def open(self, channel_type: int, channel_id: int = 0, channel_caps=()) -> Channel:
        return link(self.host, self.port, channel_type, channel_id, self.session_id,
                    self.password, channel_caps=channel_caps)

    def open_display(self, channel_id: int = 0, caps=(DisplayCap.MONITORS_CONFIG,),
                     cache_size: int = 20 * 1024 * 1024 // 4,
                     decode_draws: bool = True, glz_window: int = 0) -> DisplayClient:
        from display_client import DisplayClient  # it builds on this module's Channel

        ch = self.open(ChannelType.DISPLAY, channel_id, caps)
        ch.send(MsgCDisplay.INIT, struct.pack("<BqBi", 1, cache_size, 1, glz_window))
        return DisplayClient(ch, decode_draws=decode_draws)

    def close(self) -> None:
        self.main.close()


# -- cursor decoding --------------------------------------------------------------------------


def decode_cursor(t: int, body: bytes) -> dict:
    r = Reader(body)
    out: dict = {"type": MsgCursor(t)}
    if t in (MsgCursor.INIT, MsgCursor.SET):
        out["x"], out["y"] = r.i16(), r.i16()
        if t == MsgCursor.INIT:
            out["trail_length"], out["trail_frequency"] = r.u16(), r.u16()
        out["visible"] = r.u8()
        flags = r.u16()
        out["flags"] = flags
        if not flags & 1:
            out["unique"], out["shape_type"] = r.u64(), r.u8()
            out["width"], out["height"], out["hot_x"], out["hot_y"] = (r.u16(), r.u16(), r.u16(),
                                                                       r.u16())
            out["data"] = r.rest()
    elif t == MsgCursor.MOVE:
        out["x"], out["y"] = r.i16(), r.i16()
    elif t == MsgCursor.TRAIL:
        out["length"], out["frequency"] = r.u16(), r.u16()
    elif t == MsgCursor.INVAL_ONE:
        out["id"] = r.u64()
    return out

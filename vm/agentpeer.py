"""The client end of the guest agent suite: a small scripted SPICE client.

``spicevm test-guest`` boots the test guest with a VDIPort, and the guest's
agent suite needs someone on the far side of the server, as remote-viewer
would be.  This client links the main channel, starts the agent stream and
plays a fixed script against whatever the guest agent sends:

* on AGENT_START announce the client's capabilities asking for the
  agent's (as spice-gtk does: what the agent sent before a client was there
  is dropped by the server);
* the guest announces its capabilities (answering, or asking for ours):
  answer if asked, then, the first time, send DISPLAY_CONFIG (flags 5, depth 32) and
  MONITORS_CONFIG (one 800x600 monitor; the server hands it to the QXL
  device), ask for client mouse mode and keep sending the absolute mouse
  position (123, 45) with the left button down on the inputs channel;
* the guest grabs the clipboard: request its text; when it arrives, grab
  the clipboard back and serve ``"peer saw: " + text`` when the guest asks.

The script lives on a daemon thread and ends with :meth:`close`.  It speaks
only the messages above (plus ACK/PING); it is a test peer, not a client
library.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from spice.protocol import (
    ChannelType,
    CommonCap,
    LinkErr,
    MainCap,
    MouseMode,
    Msg,
    MsgC,
    MsgCInputs,
    MsgCMain,
    MsgMain,
    caps_to_words,
)

log = logging.getLogger(__name__)

VDP_CLIENT_PORT = 1
VD_AGENT_PROTOCOL = 1
VD_AGENT_MAX_DATA_SIZE = 2048
MONITORS_CONFIG, REPLY, CLIPBOARD, DISPLAY_CONFIG, ANNOUNCE = 2, 3, 4, 5, 6
CLIPBOARD_GRAB, CLIPBOARD_REQUEST = 7, 8
UTF8_TEXT = 1
CLIENT_CAPS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 7)
CLIENT_TOKENS = 10          # AGENT_DATA messages the server may send before we return tokens
MOUSE_POSITION = (123, 45)
MOUSE_LEFT = 1              # SPICE_MOUSE_BUTTON_MASK_LEFT
MONITOR = (800, 600)
DISPLAY_FLAGS, DISPLAY_DEPTH = 5, 32
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(),
                     label=None)
_MSG = struct.Struct("<IIQI")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    return bytes(buf)


class _Channel:
    """One linked channel with mini headers."""

    def __init__(self, host: str, port: int, channel_type: int, connection_id: int,
                 channel_caps: list[int]) -> None:
        common = caps_to_words([CommonCap.PROTOCOL_AUTH_SELECTION, CommonCap.AUTH_SPICE,
                                CommonCap.MINI_HEADER])
        chan = caps_to_words(channel_caps)
        body = struct.pack("<IBBIII", connection_id, channel_type, 0, len(common), len(chan), 18)
        body += b"".join(struct.pack("<I", w) for w in common + chan)
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(body)) + body)
        _magic, _major, _minor, size = struct.unpack("<4sIII", _recv_exact(self.sock, 16))
        reply = _recv_exact(self.sock, size)
        (err,) = struct.unpack_from("<I", reply)
        if err != LinkErr.OK:
            raise ConnectionError(f"link refused: {LinkErr(err).name}")
        key = serialization.load_der_public_key(reply[4:166])
        self.sock.sendall(struct.pack("<I", CommonCap.AUTH_SPICE) + key.encrypt(b"", _OAEP))
        (result,) = struct.unpack("<I", _recv_exact(self.sock, 4))
        if result != LinkErr.OK:
            raise ConnectionError(f"ticket refused: {LinkErr(result).name}")
        self.ack_window = 0
        self.unacked = 0
        self.lock = threading.Lock()

    def send(self, msg_type: int, body: bytes = b"") -> None:
        with self.lock:
            self.sock.sendall(struct.pack("<HI", msg_type, len(body)) + body)

    def recv(self) -> tuple[int, bytes]:
        msg_type, size = struct.unpack("<HI", _recv_exact(self.sock, 6))
        body = _recv_exact(self.sock, size)
        if msg_type == Msg.SET_ACK:
            generation, self.ack_window = struct.unpack_from("<II", body)
            self.unacked = 0
            self.send(MsgC.ACK_SYNC, struct.pack("<I", generation))
        elif msg_type == Msg.PING:
            self.send(MsgC.PONG, body[:12])
        if self.ack_window:
            self.unacked += 1
            if self.unacked >= self.ack_window:
                self.unacked = 0
                self.send(MsgC.ACK)
        return msg_type, body

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class AgentPeer:
    """The scripted client (see the module docstring).  ``serial`` is
    unused except to keep the peer's lifetime tied to the run."""

    def __init__(self, host: str, port: int, serial: object = None) -> None:
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-peer", daemon=True)
        self._main: _Channel | None = None
        self._inputs: _Channel | None = None
        self._tokens = 0            # AGENT_DATA we may still send
        self._stream = b""          # agent messages from the guest, not yet parsed
        self._session_id = 0
        self._mouse_client = False
        self._agent_started = False
        self._inputs_lock = threading.Lock()
        self.linked = threading.Event()  # MAIN_INIT received
        self._script_done = False
        self.guest_caps: int | None = None
        self.guest_clipboard: bytes | None = None
        self.replies: list[tuple[int, int]] = []
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        for ch in (self._main, self._inputs):
            if ch is not None:
                ch.close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        try:
            self._main = _Channel(self.host, self.port, ChannelType.MAIN, 0,
                                  [MainCap.AGENT_CONNECTED_TOKENS])
            last_mouse = 0.0
            while not self._stop.is_set():
                ready, _, _ = select.select([self._main.sock], [], [], 0.1)
                if ready:
                    self._on_main(*self._main.recv())
                if self._mouse_client and time.monotonic() - last_mouse > 0.2:
                    last_mouse = time.monotonic()
                    self._send_mouse()
                if self._inputs is not None:
                    ready, _, _ = select.select([self._inputs.sock], [], [], 0)
                    if ready:
                        self._inputs.recv()
        except (OSError, ConnectionError, struct.error) as exc:
            # the machine closes the server when the guest exits: not an error then
            if not self._stop.is_set():
                self.errors.append(str(exc))
                log.debug("agent peer: %s", exc)

    def _on_main(self, msg_type: int, body: bytes) -> None:
        if msg_type == MsgMain.INIT:
            self._session_id, _hint, _modes, _mode, agent, tokens = struct.unpack_from(
                "<6I", body)
            self._tokens = tokens
            self.linked.set()
            if agent:
                self._agent_start()
        elif msg_type in (MsgMain.AGENT_CONNECTED, MsgMain.AGENT_CONNECTED_TOKENS):
            if msg_type == MsgMain.AGENT_CONNECTED_TOKENS:
                (self._tokens,) = struct.unpack_from("<I", body)
            self._agent_start()
        elif msg_type == MsgMain.AGENT_TOKEN:
            self._tokens += struct.unpack_from("<I", body)[0]
        elif msg_type == MsgMain.AGENT_DATA:
            assert self._main is not None
            self._main.send(MsgCMain.AGENT_TOKEN, struct.pack("<I", 1))
            self._stream += body
            self._parse_stream()
        elif msg_type == MsgMain.MOUSE_MODE:
            supported, current = struct.unpack_from("<HH", body)
            self._mouse_client = current == MouseMode.CLIENT
            if self._mouse_client:
                self._open_inputs()
            elif self._script_done and supported & MouseMode.CLIENT:
                # the server fell back to server mode (the guest recreated its
                # primary): ask again, as spice-gtk does
                assert self._main is not None
                self._main.send(MsgCMain.MOUSE_MODE_REQUEST,
                                struct.pack("<H", MouseMode.CLIENT))

    def _agent_start(self) -> None:
        assert self._main is not None
        if self._agent_started:
            return
        self._agent_started = True
        self._main.send(MsgCMain.AGENT_START, struct.pack("<I", CLIENT_TOKENS))
        # as spice-gtk does: whatever the agent sent before we were there is
        # gone, so ask it for its capabilities
        self.send_agent(ANNOUNCE, struct.pack("<II", 1, CLIENT_CAPS))

    def _parse_stream(self) -> None:
        while len(self._stream) >= _MSG.size:
            protocol, msg_type, _opaque, size = _MSG.unpack_from(self._stream)
            if len(self._stream) < _MSG.size + size:
                return
            data = self._stream[_MSG.size:_MSG.size + size]
            self._stream = self._stream[_MSG.size + size:]
            if protocol == VD_AGENT_PROTOCOL:
                self._on_agent(msg_type, data)

    # ---------------------------------------------------------------- the script
    def _on_agent(self, msg_type: int, data: bytes) -> None:
        if msg_type == ANNOUNCE and len(data) >= 8:
            request, self.guest_caps = struct.unpack_from("<II", data)
            if request:
                self.send_agent(ANNOUNCE, struct.pack("<II", 0, CLIENT_CAPS))
            if self._script_done:
                return
            self._script_done = True
            self.send_agent(DISPLAY_CONFIG, struct.pack("<II", DISPLAY_FLAGS, DISPLAY_DEPTH))
            w, h = MONITOR
            self.send_agent(MONITORS_CONFIG, struct.pack("<II", 1, 0)
                            + struct.pack("<IIIii", h, w, 32, 0, 0))
            assert self._main is not None
            self._main.send(MsgCMain.MOUSE_MODE_REQUEST, struct.pack("<H", MouseMode.CLIENT))
        elif msg_type == CLIPBOARD_GRAB:
            self.send_agent(CLIPBOARD_REQUEST, struct.pack("<I", UTF8_TEXT))
        elif msg_type == CLIPBOARD and len(data) >= 4:
            self.guest_clipboard = data[4:]
            self.send_agent(CLIPBOARD_GRAB, struct.pack("<I", UTF8_TEXT))
        elif msg_type == CLIPBOARD_REQUEST and self.guest_clipboard is not None:
            self.send_agent(CLIPBOARD, struct.pack("<I", UTF8_TEXT)
                            + b"peer saw: " + self.guest_clipboard)
        elif msg_type == REPLY and len(data) >= 8:
            self.replies.append(struct.unpack_from("<II", data))

    def send_agent(self, msg_type: int, data: bytes) -> None:
        """One agent message, split into AGENT_DATA pieces (one token each)."""
        assert self._main is not None
        raw = _MSG.pack(VD_AGENT_PROTOCOL, msg_type, 0, len(data)) + data
        for off in range(0, len(raw), VD_AGENT_MAX_DATA_SIZE):
            deadline = time.monotonic() + 5
            while self._tokens <= 0 and time.monotonic() < deadline:
                ready, _, _ = select.select([self._main.sock], [], [], 0.1)
                if ready:
                    t, body = self._main.recv()
                    if t == MsgMain.AGENT_TOKEN:
                        self._tokens += struct.unpack_from("<I", body)[0]
                    elif t == MsgMain.AGENT_DATA:
                        self._main.send(MsgCMain.AGENT_TOKEN, struct.pack("<I", 1))
                        self._stream += body
            if self._tokens <= 0:
                raise ConnectionError("the server returned no agent tokens")
            self._tokens -= 1
            self._main.send(MsgCMain.AGENT_DATA, raw[off:off + VD_AGENT_MAX_DATA_SIZE])

    def send_keys(self, scancodes: list[int]) -> None:
        """Press and release each set-1 scancode on the inputs channel (any
        thread; the channel is opened on first use)."""
        if not self.linked.wait(10):
            raise ConnectionError("the main channel never linked")
        inputs = self._open_inputs()
        for code in scancodes:
            inputs.send(MsgCInputs.KEY_DOWN, struct.pack("<I", code))
            inputs.send(MsgCInputs.KEY_UP, struct.pack("<I", code | 0x80))

    def _open_inputs(self) -> _Channel:
        with self._inputs_lock:
            if self._inputs is None:
                self._inputs = _Channel(self.host, self.port, ChannelType.INPUTS,
                                        self._session_id, [])
            return self._inputs

    def _send_mouse(self) -> None:
        if self._inputs is None:
            return
        x, y = MOUSE_POSITION
        self._inputs.send(MsgCInputs.MOUSE_POSITION, struct.pack("<IIHB", x, y, MOUSE_LEFT, 0))

"""Agent carriage over the main channel with token flow control."""

from __future__ import annotations

import struct
import threading
import time

import pytest
from spice_client import Session
from spice_harness import Harness, primary_create, wait_for

from spice.protocol import ChannelType, MsgCInputs, MsgCMain, MsgMain

VDP_CLIENT_PORT, VDP_SERVER_PORT = 1, 2


class AgentPort:
    """A byte-stream device as the VDIPort model presents it: the guest side
    reads what the server writes and writes what the server reads."""

    subtype = "vdagent"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.to_guest = bytearray()
        self.from_guest = bytearray()
        self.room = 1 << 20
        self.handle = None
        self.states: list[bool] = []

    def attach(self, handle) -> None:
        self.handle = handle

    def state(self, connected: bool) -> None:
        self.states.append(connected)

    def write(self, data: bytes) -> int:
        with self.lock:
            n = min(len(data), self.room)
            self.to_guest += data[:n]
            self.room -= n
            return n

    def read(self, max_bytes: int) -> bytes:
        with self.lock:
            out = bytes(self.from_guest[:max_bytes])
            del self.from_guest[:max_bytes]
            return out

    # guest side
    def guest_send(self, port: int, payload: bytes) -> None:
        with self.lock:
            self.from_guest += struct.pack("<II", port, len(payload)) + payload
        self.handle.wakeup()

    def chunks(self) -> list[tuple[int, bytes]]:
        with self.lock:
            data = bytes(self.to_guest)
        out, pos = [], 0
        while pos + 8 <= len(data):
            port, size = struct.unpack_from("<II", data, pos)
            out.append((port, data[pos + 8:pos + 8 + size]))
            pos += 8 + size
        return out

    def wait_chunks(self, n: int, timeout: float = 5.0) -> list[tuple[int, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.chunks()) < n:
            assert time.monotonic() < deadline, self.chunks()
            time.sleep(0.005)
        return self.chunks()


def agent_msg(msg_type: int, payload: bytes) -> bytes:
    return struct.pack("<IIQI", 1, msg_type, 0, len(payload)) + payload


def processed(s: Session, mode: int = 2) -> None:
    """Return once the server has handled every main-channel message sent so
    far: a mouse mode change is answered in order (``mode`` must differ
    from the current one)."""
    s.main.send(MsgCMain.MOUSE_MODE_REQUEST, struct.pack("<H", mode))
    assert struct.unpack("<HH", s.main.recv_until(MsgMain.MOUSE_MODE))[1] == mode


@pytest.fixture
def live():
    h = Harness()
    port = AgentPort()
    h.call(lambda: h.server.add_char_device(port))
    port.handle.port_event(True)
    create, _ = primary_create(64, 48)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.port_dev = port
    wait_for(lambda: h.call(lambda: h.server.client_mouse_allowed))
    yield h
    h.close()


def test_agent_round_trip(live):
    dev = live.port_dev
    s = Session("127.0.0.1", live.port)
    assert s.init.agent_connected == 1 and s.init.agent_tokens == 10
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    msg = agent_msg(6, b"caps!")  # VD_AGENT_ANNOUNCE_CAPABILITIES
    s.main.send(MsgCMain.AGENT_DATA, msg)
    assert dev.wait_chunks(1) == [(VDP_CLIENT_PORT, msg)]
    reply = agent_msg(3, b"reply")
    dev.guest_send(VDP_CLIENT_PORT, reply)
    assert s.main.recv_until(MsgMain.AGENT_DATA) == reply
    dev.guest_send(VDP_SERVER_PORT, agent_msg(1, b"x"))  # server-port chunks stay here
    dev.guest_send(VDP_CLIENT_PORT, agent_msg(3, b"two"))
    assert s.main.recv_until(MsgMain.AGENT_DATA) == agent_msg(3, b"two")
    s.close()


def test_client_tokens_are_returned_in_batches_and_enforced(live):
    dev = live.port_dev
    dev.room = 0  # the guest is not reading
    s = Session("127.0.0.1", live.port)
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    msgs = [agent_msg(4, bytes([i]) * 10) for i in range(10)]
    for m in msgs:
        s.main.send(MsgCMain.AGENT_DATA, m)
    processed(s)  # all ten held by the server
    assert dev.chunks() == []
    with dev.lock:
        dev.room = 1 << 20
    dev.handle.wakeup()
    tokens = 0
    while tokens < 10:
        tokens += struct.unpack("<I", s.main.recv_until(MsgMain.AGENT_TOKEN))[0]
    assert tokens == 10
    assert [c for _, c in dev.wait_chunks(10)] == msgs
    # eleven without a returned token is a violation: the client is dropped
    dev.room = 0
    for m in msgs + msgs[:1]:
        s.main.send(MsgCMain.AGENT_DATA, m)
    s.main.sock.settimeout(5)
    try:
        while s.main.sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    s.close()


def test_server_respects_client_tokens(live):
    dev = live.port_dev
    s = Session("127.0.0.1", live.port)
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 1))
    processed(s)  # data the agent sends before AGENT_START is dropped, as spice-server does
    for i in range(3):
        dev.guest_send(VDP_CLIENT_PORT, agent_msg(3, bytes([i])))
    assert s.main.recv_until(MsgMain.AGENT_DATA) == agent_msg(3, b"\0")
    with pytest.raises(TimeoutError):
        s.main.recv_until(MsgMain.AGENT_DATA, timeout=0.3)
    s.main.send(MsgCMain.AGENT_TOKEN, struct.pack("<I", 2))
    assert s.main.recv_until(MsgMain.AGENT_DATA) == agent_msg(3, b"\1")
    assert s.main.recv_until(MsgMain.AGENT_DATA) == agent_msg(3, b"\2")
    s.close()


def test_client_mouse_goes_through_the_agent(live):
    dev = live.port_dev
    s = Session("127.0.0.1", live.port)
    assert s.init.supported_mouse_modes == 3
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    s.main.send(MsgCMain.MOUSE_MODE_REQUEST, struct.pack("<H", 2))
    assert struct.unpack("<HH", s.main.recv_until(MsgMain.MOUSE_MODE)) == (3, 2)
    ch = s.open(ChannelType.INPUTS)
    ch.send(MsgCInputs.MOUSE_POSITION, struct.pack("<IIHB", 33, 44, 1, 0))
    port, data = dev.wait_chunks(1)[0]
    assert port == VDP_SERVER_PORT
    proto, mtype, _opaque, size = struct.unpack_from("<IIQI", data)
    assert (proto, mtype, size) == (1, 1, 13)  # VD_AGENT_MOUSE_STATE
    assert struct.unpack_from("<IIIB", data, 20) == (33, 44, 2, 0)  # buttons << 1
    s.close()


def test_monitors_config_goes_to_the_display_device(live):
    dev = live.port_dev
    s = Session("127.0.0.1", live.port)
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    payload = struct.pack("<II", 1, 0) + struct.pack("<IIIii", 600, 800, 32, 0, 0)
    s.main.send(MsgCMain.AGENT_DATA, agent_msg(2, payload))
    wait_for(lambda: live.qxl.monitors_requests)
    cfg = live.qxl.monitors_requests[0]
    assert [(m.width, m.height, m.depth) for m in cfg.monitors] == [(800, 600, 32)]
    assert dev.chunks() == []  # intercepted, not forwarded
    s.close()


def test_where_layouts_go_is_asked_of_the_device_at_agent_start(live):
    # The device's answer follows the guest's interrupt mask, which the
    # driver may set after its primary surface exists: it is asked when the
    # client starts the agent, as spice-server configures its filter then.
    dev = live.port_dev
    payload = struct.pack("<II", 1, 0) + struct.pack("<IIIii", 600, 800, 32, 0, 0)
    live.qxl.take_monitors = False
    s = Session("127.0.0.1", live.port)
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    s.main.send(MsgCMain.AGENT_DATA, agent_msg(2, payload))
    assert dev.wait_chunks(1)[0] == (VDP_CLIENT_PORT, agent_msg(2, payload))
    s.close()
    live.qxl.take_monitors = True  # the guest unmasked the interrupt
    s = Session("127.0.0.1", live.port)
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    s.main.send(MsgCMain.AGENT_DATA, agent_msg(2, payload))
    wait_for(lambda: live.qxl.monitors_requests)
    assert [(m.width, m.height) for m in live.qxl.monitors_requests[0].monitors] == [(800, 600)]
    assert [c for c in dev.chunks() if c[1][4:8] == struct.pack("<I", 2)] == [
        (VDP_CLIENT_PORT, agent_msg(2, payload))]  # only the first client's
    s.close()


def test_agent_disconnect_and_reconnect_notify_the_client(live):
    dev = live.port_dev
    s = Session("127.0.0.1", live.port)
    dev.handle.port_event(False)
    s.main.recv_until(MsgMain.AGENT_DISCONNECTED)
    dev.handle.port_event(True)
    assert struct.unpack("<I", s.main.recv_until(MsgMain.AGENT_CONNECTED_TOKENS))[0] == 10
    s.close()
    # the agent hears that the client left
    dev.wait_chunks(1)
    port, data = dev.chunks()[-1]
    assert port == VDP_SERVER_PORT and struct.unpack_from("<IIQI", data)[1] == 13


def closed_by_server(sock, timeout: float = 5.0) -> bool:
    """Read until the server closes the connection; False if it stays open."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_oversized_monitors_config_is_refused_not_buffered(live):
    # A monitors config declaring 4 GiB would be collected chunk by chunk
    # without end; spice-server drops the client past 256 monitors' worth.
    s = Session("127.0.0.1", live.port)
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    header = struct.pack("<IIQI", 1, 2, 0, 0xFFFFFFF0)  # VD_AGENT_MONITORS_CONFIG
    s.main.send(MsgCMain.AGENT_DATA, header + bytes(2048 - len(header)))
    for _ in range(3):
        s.main.send(MsgCMain.AGENT_DATA, bytes(2048))
    assert closed_by_server(s.main.sock)
    assert live.qxl.monitors_requests == []
    s.close()


def test_monitors_config_with_more_monitors_than_bytes_drops_the_client(live):
    s = Session("127.0.0.1", live.port)
    s.main.send(MsgCMain.AGENT_START, struct.pack("<I", 0xFFFFFFFF))
    payload = struct.pack("<II", 3, 0) + struct.pack("<IIIii", 600, 800, 32, 0, 0)
    s.main.send(MsgCMain.AGENT_DATA, agent_msg(2, payload))  # says 3, carries 1
    assert closed_by_server(s.main.sock)
    assert live.qxl.monitors_requests == []
    s.close()

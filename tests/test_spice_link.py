"""Link stage and main channel against a live server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from spice_client import LinkError, Session, link, link_mess, recv_exact
from spice_harness import Harness

from spice.options import SpiceOptions
from spice.protocol import (
    ChannelType,
    CommonCap,
    LinkErr,
    MainCap,
    MouseMode,
    Msg,
    MsgCMain,
    MsgMain,
)

PASSWORD = "s3cret-ticket"


def assert_closed(sock: socket.socket) -> None:
    """The server closed the connection (unread input makes that a reset)."""
    sock.settimeout(5)
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass


@pytest.fixture
def open_server():
    with Harness() as h:
        yield h


@pytest.fixture
def locked_server():
    with Harness(SpiceOptions(port=0, password=PASSWORD)) as h:
        yield h


def test_main_link_gets_init_and_channel_list(open_server):
    s = Session("127.0.0.1", open_server.port)
    try:
        assert s.session_id != 0
        assert s.init.display_channels_hint == 1
        assert s.init.supported_mouse_modes & 1
        assert s.init.current_mouse_mode == 1
        assert s.init.agent_tokens == 10
        assert s.init.ram_hint == 64 << 20
        # spice-server's order, without the main channel
        assert s.channels() == [(ChannelType.DISPLAY, 0), (ChannelType.CURSOR, 0),
                                (ChannelType.INPUTS, 0)]
    finally:
        s.close()


def test_reply_carries_rsa_key_and_caps(open_server):
    sock = socket.create_connection(("127.0.0.1", open_server.port), timeout=5)
    try:
        sock.sendall(link_mess(0, ChannelType.MAIN, 0))
        magic, major, minor, size = struct.unpack("<4sIII", recv_exact(sock, 16))
        assert (magic, major, minor) == (b"REDQ", 2, 2)
        reply = recv_exact(sock, size)
        err, = struct.unpack_from("<I", reply)
        assert err == LinkErr.OK
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_der_public_key(reply[4:166])
        assert key.key_size == 1024
        n_common, n_chan, off = struct.unpack_from("<III", reply, 166)
        assert off == 178 and n_common == 1 and n_chan == 1
        common, chan = struct.unpack_from("<II", reply, off)
        for cap in (CommonCap.PROTOCOL_AUTH_SELECTION, CommonCap.AUTH_SPICE,
                    CommonCap.MINI_HEADER):
            assert common & (1 << cap)
        assert not common & (1 << CommonCap.AUTH_SASL)
        assert chan & (1 << MainCap.AGENT_CONNECTED_TOKENS)
    finally:
        sock.close()


def test_fresh_key_per_link(open_server):
    keys = set()
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", open_server.port), timeout=5)
        sock.sendall(link_mess(0, ChannelType.MAIN, 0))
        _, _, _, size = struct.unpack("<4sIII", recv_exact(sock, 16))
        keys.add(recv_exact(sock, size)[4:166])
        sock.close()
    assert len(keys) == 3


def test_right_password_connects_wrong_one_is_refused(locked_server):
    port = locked_server.port
    with pytest.raises(LinkError) as exc:
        link("127.0.0.1", port, ChannelType.MAIN, password="wrong")
    assert exc.value.err == LinkErr.PERMISSION_DENIED
    with pytest.raises(LinkError) as exc:
        link("127.0.0.1", port, ChannelType.MAIN, password="")
    assert exc.value.err == LinkErr.PERMISSION_DENIED
    # the next client is served normally
    s = Session("127.0.0.1", port, password=PASSWORD)
    assert s.session_id
    s.close()


def test_ticket_expiry():
    with Harness(SpiceOptions(port=0, password=PASSWORD, ticket_expiry=0.2)) as h:
        s = Session("127.0.0.1", h.port, password=PASSWORD)
        s.close()
        time.sleep(0.3)
        with pytest.raises(LinkError) as exc:
            link("127.0.0.1", h.port, ChannelType.MAIN, password=PASSWORD)
        assert exc.value.err == LinkErr.PERMISSION_DENIED


def test_no_password_refuses_everyone():
    with Harness(SpiceOptions(port=0)) as h:
        with pytest.raises(LinkError) as exc:
            link("127.0.0.1", h.port, ChannelType.MAIN, password="")
        assert exc.value.err == LinkErr.PERMISSION_DENIED


def test_set_ticket_turns_ticketing_on(open_server):
    # spice_server_set_ticket enables ticketing: a server started without a
    # ticket asks for the new one from then on.
    open_server.call(lambda: open_server.server.set_ticket(PASSWORD))
    with pytest.raises(LinkError) as exc:
        link("127.0.0.1", open_server.port, ChannelType.MAIN, password="")
    assert exc.value.err == LinkErr.PERMISSION_DENIED
    s = Session("127.0.0.1", open_server.port, password=PASSWORD)
    s.close()


def test_set_ticket_drops_a_client_that_came_in_without_one(open_server):
    s = Session("127.0.0.1", open_server.port)
    open_server.call(lambda: open_server.server.set_ticket(PASSWORD))
    s.main.sock.settimeout(5)
    with pytest.raises(ConnectionError):
        while True:
            s.main.recv()
    s.close()


def test_set_ticket_refuses_a_password_longer_than_the_protocol_allows(locked_server):
    with pytest.raises(ValueError, match="60 bytes"):
        locked_server.call(lambda: locked_server.server.set_ticket("x" * 61))
    s = Session("127.0.0.1", locked_server.port, password=PASSWORD)  # unchanged
    s.close()


def test_client_without_auth_selection_and_mini_header(open_server):
    ch = link("127.0.0.1", open_server.port, ChannelType.MAIN, common_caps=())
    assert not ch.mini
    t, body = ch.recv()
    assert t == MsgMain.INIT
    ch.close()


def test_secondary_channel_needs_live_session(open_server):
    with pytest.raises(LinkError) as exc:
        link("127.0.0.1", open_server.port, ChannelType.INPUTS, connection_id=12345)
    assert exc.value.err == LinkErr.BAD_CONNECTION_ID
    s = Session("127.0.0.1", open_server.port)
    ch = s.open(ChannelType.INPUTS)
    ch.close()
    s.close()
    time.sleep(0.1)
    with pytest.raises(LinkError) as exc:
        link("127.0.0.1", open_server.port, ChannelType.INPUTS, connection_id=s.session_id)
    assert exc.value.err == LinkErr.BAD_CONNECTION_ID


def test_unknown_channel_not_available(open_server):
    with pytest.raises(LinkError) as exc:
        link("127.0.0.1", open_server.port, ChannelType.PLAYBACK)
    assert exc.value.err == LinkErr.CHANNEL_NOT_AVAILABLE
    with pytest.raises(LinkError) as exc:
        link("127.0.0.1", open_server.port, ChannelType.DISPLAY, channel_id=3)
    assert exc.value.err == LinkErr.CHANNEL_NOT_AVAILABLE


@pytest.mark.parametrize("data,err", [
    (b"GET / HTTP/1.1\r\n", LinkErr.INVALID_MAGIC),
    (b"REDQ" + struct.pack("<III", 3, 0, 18), LinkErr.VERSION_MISMATCH),
    (b"REDQ" + struct.pack("<III", 2, 2, 17), LinkErr.INVALID_DATA),
    (b"REDQ" + struct.pack("<III", 2, 2, 5000), LinkErr.INVALID_DATA),
    (b"REDQ" + struct.pack("<III", 2, 2, 18)
     + struct.pack("<IBBIII", 0, 1, 0, 2000, 0, 18), LinkErr.INVALID_DATA),
    (b"REDQ" + struct.pack("<III", 2, 2, 22)
     + struct.pack("<IBBIII", 0, 1, 0, 2, 0, 18) + b"\0" * 4, LinkErr.INVALID_DATA),
])
def test_malformed_link_gets_link_error(open_server, data, err):
    sock = socket.create_connection(("127.0.0.1", open_server.port), timeout=5)
    try:
        sock.sendall(data)
        magic, major, minor, size = struct.unpack("<4sIII", recv_exact(sock, 16))
        reply = recv_exact(sock, size)
        assert struct.unpack_from("<I", reply)[0] == err
        assert_closed(sock)
    finally:
        sock.close()


def test_version_zero_is_closed_silently(open_server):
    sock = socket.create_connection(("127.0.0.1", open_server.port), timeout=5)
    sock.sendall(b"REDQ" + struct.pack("<III", 0, 0, 18))
    assert_closed(sock)
    sock.close()


def test_net_test_pings_and_refused_client_mouse_mode(open_server):
    s = Session("127.0.0.1", open_server.port)
    try:
        # the network test: two empty pings, then one carrying 250 KiB
        sizes = []
        while len(sizes) < 3:
            sizes.append(len(s.main.recv_until(Msg.PING)) - 12)
        assert sizes == [0, 0, 250 * 1024]
        # client mouse mode needs an agent or a tablet: neither is here
        s.main.send(MsgCMain.MOUSE_MODE_REQUEST, struct.pack("<H", MouseMode.CLIENT))
        s.main.send(MsgCMain.ATTACH_CHANNELS)
        s.main.recv_until(MsgMain.CHANNELS_LIST)
        assert MsgMain.MOUSE_MODE not in [t for t, _ in s.main.received]
        assert open_server.call(lambda: open_server.server.mouse_mode) == MouseMode.SERVER
    finally:
        s.close()


def test_name_and_uuid():
    uuid = os.urandom(16)
    with Harness(SpiceOptions(port=0, disable_ticketing=True, name="box", uuid=uuid)) as h:
        s = Session("127.0.0.1", h.port)
        name = s.main.recv_until(MsgMain.NAME)
        assert name[4:] == b"box\0"
        assert s.main.recv_until(MsgMain.UUID) == uuid
        s.close()


def test_new_client_replaces_old(open_server):
    a = Session("127.0.0.1", open_server.port)
    b = Session("127.0.0.1", open_server.port)
    a.main.sock.settimeout(5)
    # the first session's socket gets closed by the server
    deadline = time.monotonic() + 5
    closed = False
    while time.monotonic() < deadline:
        try:
            if a.main.sock.recv(65536) == b"":
                closed = True
                break
        except OSError:
            closed = True
            break
    assert closed
    assert b.channels()
    b.close()


def test_multi_media_time_resync(open_server):
    s = Session("127.0.0.1", open_server.port)
    open_server.call(open_server.server.push_multi_media_time)
    (t,) = struct.unpack("<I", s.main.recv_until(MsgMain.MULTI_MEDIA_TIME))
    # the INIT carried the clock minus spice-server's 400 ms delta
    assert 0 <= t - s.init.multi_media_time - 400 < 5000
    s.close()


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


@pytest.mark.parametrize("ctype", [ChannelType.INPUTS, ChannelType.CURSOR,
                                   ChannelType.DISPLAY])
def test_a_second_link_of_the_same_channel_is_closed(open_server, ctype):
    # spice-server's RedClient::add_channel refuses a duplicate (type, id):
    # the link completes, then the new connection is closed and the first
    # one keeps working.
    s = Session("127.0.0.1", open_server.port)
    try:
        first = s.open(ctype)
        first.recv()  # INIT (inputs) or SET_ACK (display, cursor): it is live
        second = s.open(ctype)
        with pytest.raises(ConnectionError):  # closed or reset, not a timeout
            while True:
                second.recv()
        assert still_open(first.sock)
        first.close()
        second.close()
    finally:
        s.close()

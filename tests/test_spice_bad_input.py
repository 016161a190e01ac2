"""Malformed network input at a live server: thousands of generated link
stage and channel messages, and a flood of connections.  Each bad
connection is closed; nothing else is disturbed, no exception reaches a
loop, and afterwards a normal client links and gets its MARK."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spice_client import Session, link, link_mess
from spice_harness import Harness, fill_cmd, primary_create

from spice.options import SpiceOptions
from spice.protocol import (
    ChannelType,
    LinkErr,
    MsgCDisplay,
    MsgCInputs,
    MsgCMain,
    MsgDisplay,
)

LINK_EXAMPLES = 1300
CHANNEL_EXAMPLES = 800


@pytest.fixture(scope="module")
def live():
    h = Harness()
    create, mem = primary_create(64, 48)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.qxl.push(fill_cmd(h.qxl.token(), (0, 0, 48, 64), 0x224466))
    yield h
    h.close()


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors():
    handler = ErrorLog()
    logger = logging.getLogger("spice")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def send_and_close(port: int, data: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.02)
        while sock.recv(65536):
            pass
    except OSError:
        pass  # the server may close (or reset) first: that is the point
    finally:
        sock.close()


# -- link stage ------------------------------------------------------------------------

def _header(major=2, minor=2, size=18, magic=b"REDQ") -> bytes:
    return magic + struct.pack("<III", major & 0xFFFFFFFF, minor & 0xFFFFFFFF,
                               size & 0xFFFFFFFF)


u32 = st.integers(0, 0xFFFFFFFF)
u8 = st.integers(0, 255)

link_inputs = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda m, rest: m + rest, st.binary(min_size=4, max_size=4), st.binary(max_size=40)),
    st.builds(lambda major, size, rest: _header(major=major, size=size) + rest,
              u32, u32, st.binary(max_size=64)),
    # a plausible header with a mangled SpiceLinkMess
    st.builds(lambda conn, ctype, cid, nc, nch, off, caps, cut:
              (lambda body: (_header(size=len(body)) + body)[:cut])(
                  struct.pack("<IBBIII", conn, ctype, cid, nc, nch, off) + caps),
              u32, u8, u8, st.integers(0, 3000), st.integers(0, 3000), u32,
              st.binary(max_size=32), st.integers(0, 200)),
    # a valid link message followed by junk where the auth mechanism and ticket go
    st.builds(lambda ctype, junk: link_mess(0, ctype, 0) + junk,
              st.sampled_from([1, 2, 3, 4, 5, 99]), st.binary(max_size=200)),
)


def test_malformed_link_stage(live, errors):
    port = live.port
    count = [0]

    @settings(max_examples=LINK_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(link_inputs)
    def run(data: bytes) -> None:
        count[0] += 1
        send_and_close(port, data)

    run()
    assert count[0] >= LINK_EXAMPLES
    assert_healthy(live)
    assert not errors, [r.getMessage() for r in errors]


# -- channel stage ----------------------------------------------------------------------

KNOWN = {
    ChannelType.MAIN: [MsgCMain.ATTACH_CHANNELS, MsgCMain.MOUSE_MODE_REQUEST,
                       MsgCMain.AGENT_START, MsgCMain.AGENT_DATA, MsgCMain.AGENT_TOKEN,
                       MsgCMain.CLIENT_INFO, 1, 2, 3, 4, 5, 6],
    ChannelType.INPUTS: [MsgCInputs.KEY_DOWN, MsgCInputs.KEY_UP, MsgCInputs.KEY_MODIFIERS,
                         MsgCInputs.KEY_SCANCODE, MsgCInputs.MOUSE_MOTION,
                         MsgCInputs.MOUSE_POSITION, MsgCInputs.MOUSE_PRESS,
                         MsgCInputs.MOUSE_RELEASE, 1, 2, 3],
    ChannelType.DISPLAY: [MsgCDisplay.INIT, MsgCDisplay.STREAM_REPORT,
                          MsgCDisplay.PREFERRED_COMPRESSION,
                          MsgCDisplay.PREFERRED_VIDEO_CODEC_TYPE, 1, 2, 3, 4, 5],
    ChannelType.CURSOR: [1, 2, 3, 6, 101],
}


@st.composite
def channel_input(draw) -> tuple[int, bytes]:
    ctype = draw(st.sampled_from(list(KNOWN)))
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["known", "unknown", "huge", "raw"]))
        if kind == "raw":
            parts.append(draw(st.binary(min_size=1, max_size=64)))
            continue
        if kind == "known":
            mtype = draw(st.sampled_from(KNOWN[ctype]))
        else:
            mtype = draw(st.integers(0, 0xFFFF))
        body = draw(st.binary(max_size=48))
        size = len(body)
        if kind == "huge":
            size = draw(st.integers(4096, 0xFFFFFFFF))
        elif draw(st.booleans()):
            size = draw(st.integers(0, 64))  # claims a different length
        parts.append(struct.pack("<HI", mtype, size) + body)
    return ctype, b"".join(parts)


def test_malformed_channel_messages(live, errors):
    port = live.port
    state = {"session": Session("127.0.0.1", port)}
    count = [0]

    @settings(max_examples=CHANNEL_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(channel_input())
    def run(case: tuple[int, bytes]) -> None:
        count[0] += 1
        ctype, data = case
        if ctype == ChannelType.MAIN:
            ch = link("127.0.0.1", port, ChannelType.MAIN)
        else:
            s = state["session"]
            try:
                ch = s.open(ctype)
            except Exception:
                # the last main-channel case replaced the session
                state["session"] = s = Session("127.0.0.1", port)
                ch = s.open(ctype)
        try:
            ch.sock.sendall(data)
            ch.sock.shutdown(socket.SHUT_WR)
            ch.sock.settimeout(0.02)
            try:
                while ch.sock.recv(65536):
                    pass
            except (TimeoutError, ConnectionError):
                pass
        except OSError:
            pass
        finally:
            ch.close()
        if ctype == ChannelType.MAIN:
            state["session"].close()
            state["session"] = Session("127.0.0.1", port)

    run()
    assert count[0] >= CHANNEL_EXAMPLES
    state["session"].close()
    assert_healthy(live)
    assert not errors, [r.getMessage() for r in errors]


def test_connection_flood(live, errors):
    socks = []
    for _ in range(300):
        try:
            socks.append(socket.create_connection(("127.0.0.1", live.port), timeout=5))
        except OSError:
            break
    try:
        assert len(socks) == 300
        deadline = time.monotonic() + 10
        while True:
            stats = live.call(lambda: dict(live.server.counters))
            if stats["links_dropped"] >= 300 - 64 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert_healthy(live)
        assert stats["links_dropped"] >= 300 - 64
    finally:
        for s in socks:
            s.close()
    assert not errors


def test_wrong_password_then_right_one_under_load(errors):
    with Harness(SpiceOptions(port=0, password="pw")) as h:
        for _ in range(20):
            with pytest.raises(Exception) as exc:
                link("127.0.0.1", h.port, ChannelType.MAIN, password="nope")
            assert getattr(exc.value, "err", None) == LinkErr.PERMISSION_DENIED
        s = Session("127.0.0.1", h.port, password="pw")
        assert s.session_id
        s.close()
    assert not errors


def assert_healthy(live) -> None:
    """A normal client links, gets the screen and a MARK."""
    s = Session("127.0.0.1", live.port)
    try:
        d = s.open_display()
        d.pump(until=MsgDisplay.MARK, timeout=10)
        assert (d.surfaces[0].pixels32() == 0x224466).all()
    finally:
        s.close()

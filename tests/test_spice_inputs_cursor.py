"""Inputs and cursor channels against a live server."""

from __future__ import annotations

import struct
import time

import pytest
from spice_client import Session, decode_cursor
from spice_harness import Harness, Recorder, cursor_cmd, cursor_shape, primary_create

from spice import qxl
from spice.protocol import ChannelType, MsgCInputs, MsgCMain, MsgCursor, MsgInputs, MsgMain


@pytest.fixture
def live():
    h = Harness()
    create, mem = primary_create(64, 48)
    h.worker.create_primary_surface(create)
    h.worker.start()
    yield h
    h.close()


def scans(rec: Recorder) -> list[int]:
    return [e[1] for e in rec.events if e[0] == "scan"]


def test_keys_reach_the_keyboard(live):
    live.input.leds = 2
    s = Session("127.0.0.1", live.port)
    ch = s.open(ChannelType.INPUTS)
    t, body = ch.recv()
    assert t == MsgInputs.INIT and struct.unpack("<H", body)[0] == 2
    ch.send(MsgCInputs.KEY_DOWN, struct.pack("<I", 0x1E))  # 'a'
    ch.send(MsgCInputs.KEY_UP, struct.pack("<I", 0x9E))
    ch.send(MsgCInputs.KEY_DOWN, struct.pack("<I", 0x48E0))  # extended up arrow
    ch.send(MsgCInputs.KEY_UP, struct.pack("<I", 0xC8E0))
    ch.send(MsgCInputs.KEY_SCANCODE, bytes([0x2C, 0xAC]))
    live.input.wait_for(lambda ev: len(scans(live.input)) >= 8)
    assert scans(live.input) == [0x1E, 0x9E, 0xE0, 0x48, 0xE0, 0xC8, 0x2C, 0xAC]
    s.close()


def test_disconnect_releases_held_keys(live):
    s = Session("127.0.0.1", live.port)
    ch = s.open(ChannelType.INPUTS)
    ch.send(MsgCInputs.KEY_DOWN, struct.pack("<I", 0x2A))  # left shift held
    ch.send(MsgCInputs.KEY_DOWN, struct.pack("<I", 0x1DE0))  # right ctrl held
    live.input.wait_for(lambda ev: len(scans(live.input)) >= 3)
    ch.close()
    live.input.wait_for(lambda ev: len(scans(live.input)) >= 6)
    assert scans(live.input)[3:] == [0xAA, 0xE0, 0x9D]
    s.close()


def test_relative_motion_buttons_and_motion_ack(live):
    s = Session("127.0.0.1", live.port)
    ch = s.open(ChannelType.INPUTS)
    ch.recv()  # INIT
    for i in range(8):
        ch.send(MsgCInputs.MOUSE_MOTION, struct.pack("<iiH", i + 1, -i, 1))
    acks = 0
    for _ in range(2):
        t, _ = ch.recv()
        acks += t == MsgInputs.MOUSE_MOTION_ACK
    assert acks == 2  # one per 4 motion messages
    ch.send(MsgCInputs.MOUSE_PRESS, struct.pack("<BH", 4, 0))  # wheel up
    ch.send(MsgCInputs.MOUSE_RELEASE, struct.pack("<BH", 1, 0))
    ev = live.input.wait_for(lambda ev: any(e[0] == "buttons" for e in ev))
    motions = [e for e in ev if e[0] == "motion"]
    assert motions[:8] == [("motion", i + 1, -i, 0, 1) for i in range(8)]
    assert ("motion", 0, 0, -1, 0) in motions
    assert ("buttons", 0) in ev
    s.close()


def test_lock_key_sync_and_led_push(live):
    s = Session("127.0.0.1", live.port)
    ch = s.open(ChannelType.INPUTS)
    ch.recv()  # INIT (leds 0)
    ch.send(MsgCInputs.KEY_MODIFIERS, struct.pack("<H", 4))  # client has caps lock on
    live.input.wait_for(lambda ev: len(scans(live.input)) >= 2)
    assert scans(live.input) == [0x3A, 0xBA]
    live.server.kbd_leds(6)
    t, body = ch.recv()
    while t != MsgInputs.KEY_MODIFIERS:
        t, body = ch.recv()
    assert struct.unpack("<H", body)[0] == 6
    s.close()


def test_tablet_gets_absolute_positions_in_client_mode():
    with Harness() as h:
        tablet = Recorder()
        h.call(lambda: h.server.add_tablet(tablet))
        create, _ = primary_create(64, 48, mouse_mode=1)
        h.worker.create_primary_surface(create)
        h.worker.start()
        deadline = time.monotonic() + 5
        while not h.call(lambda: h.server.client_mouse_allowed):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        s = Session("127.0.0.1", h.port)
        assert s.init.supported_mouse_modes == 3 and s.init.current_mouse_mode == 1
        s.main.send(MsgCMain.MOUSE_MODE_REQUEST, struct.pack("<H", 2))
        body = s.main.recv_until(MsgMain.MOUSE_MODE)
        assert struct.unpack("<HH", body) == (3, 2)
        ch = s.open(ChannelType.INPUTS)
        ch.send(MsgCInputs.MOUSE_POSITION, struct.pack("<IIHB", 10, 20, 1, 0))
        ev = tablet.wait_for(lambda ev: any(e[0] == "position" for e in ev))
        assert ("position", 10, 20, 1) in ev
        assert ("size", 64, 48) in ev
        s.close()


def test_cursor_init_set_move_hide_trail_and_cache(live):
    q = live.qxl
    shape = cursor_shape(0x1234, seed=1)
    q.push_cursor(cursor_cmd(q.token(), qxl.QXL_CURSOR_SET, 5, 6, True, shape))
    q.wait_drained()
    s = Session("127.0.0.1", live.port)
    ch = s.open(ChannelType.CURSOR)
    body = ch.recv_until(MsgCursor.INIT)
    c = decode_cursor(MsgCursor.INIT, body)
    # as in spice-server, only MOVE sets the position INIT reports
    assert (c["x"], c["y"], c["visible"]) == (0, 0, 1)
    assert c["unique"] == 0x1234 and c["flags"] & 2  # CACHE_ME
    assert c["data"] == shape.data.tobytes()
    assert (c["width"], c["height"], c["hot_x"], c["hot_y"]) == (8, 8, 1, 2)
    toks = [q.token() for _ in range(5)]
    q.push_cursor(cursor_cmd(toks[0], qxl.QXL_CURSOR_MOVE, 30, 40),
                  cursor_cmd(toks[1], qxl.QXL_CURSOR_HIDE),
                  cursor_cmd(toks[2], qxl.QXL_CURSOR_TRAIL, trail=(3, 7)),
                  cursor_cmd(toks[3], qxl.QXL_CURSOR_SET, 1, 2, True, shape),
                  cursor_cmd(toks[4], qxl.QXL_CURSOR_SET, 1, 2, True, cursor_shape(0x99, seed=2)))
    got = []
    while len(got) < 5:
        t, body = ch.recv()
        if t > 100:
            got.append(decode_cursor(t, body))
    assert got[0]["type"] == MsgCursor.MOVE and (got[0]["x"], got[0]["y"]) == (30, 40)
    assert got[1]["type"] == MsgCursor.HIDE
    assert got[2]["type"] == MsgCursor.TRAIL and (got[2]["length"], got[2]["frequency"]) == (3, 7)
    assert got[3]["type"] == MsgCursor.SET and got[3]["flags"] == 4  # FROM_CACHE
    assert got[3]["data"] == b""
    assert got[4]["flags"] == 2 and got[4]["unique"] == 0x99
    # moves, hides and trails go back as soon as they are sent; the first
    # shape once a new one replaced it
    assert q.wait_released(toks[:3])
    live.worker.reset_cursor()
    rest = [ch.recv()[0] for _ in range(2)]
    assert rest == [MsgCursor.INVAL_ALL, MsgCursor.RESET]
    assert q.wait_released(toks)
    s.close()


def test_cursor_cache_evicts_with_inval_one(live):
    q = live.qxl
    s = Session("127.0.0.1", live.port)
    ch = s.open(ChannelType.CURSOR)
    ch.recv_until(MsgCursor.INIT)
    for i in range(257):
        q.push_cursor(cursor_cmd(q.token(), qxl.QXL_CURSOR_SET, 0, 0, True,
                                 cursor_shape(1000 + i, 2, 2)))
    sets, invals = 0, []
    while sets < 257:
        t, body = ch.recv()
        if t == MsgCursor.SET:
            sets += 1
        elif t == MsgCursor.INVAL_ONE:
            invals.append(struct.unpack("<Q", body)[0])
    if not invals:
        t, body = ch.recv()
        assert t == MsgCursor.INVAL_ONE
        invals.append(struct.unpack("<Q", body)[0])
    assert invals == [1000]
    s.close()


def test_cursor_client_that_fell_behind_is_reset_before_its_new_init(live):
    # spice-gtk accepts CURSOR_INIT only after a RESET (or as the first
    # message): the catch-up after dropped updates must bring both.
    q = live.qxl
    s = Session("127.0.0.1", live.port)
    ch = s.open(ChannelType.CURSOR)
    ch.recv_until(MsgCursor.INIT)
    for i in range(200):  # not read: the ACK window closes, the pipe overflows
        q.push_cursor(cursor_cmd(q.token(), qxl.QXL_CURSOR_MOVE, i, i))
    q.wait_drained()
    time.sleep(0.6)
    final = cursor_shape(0x77, seed=3)
    q.push_cursor(cursor_cmd(q.token(), qxl.QXL_CURSOR_SET, 0, 0, True, final))
    q.wait_drained()
    types: list[int] = []
    init = None
    deadline = time.monotonic() + 10
    while init is None:
        assert time.monotonic() < deadline, types
        t, body = ch.recv()
        types.append(t)
        if t == MsgCursor.INIT:
            init = decode_cursor(t, body)
    assert len([t for t in types if t == MsgCursor.MOVE]) < 200  # updates were dropped
    assert MsgCursor.RESET in types and types.index(MsgCursor.RESET) < len(types) - 1
    assert init["unique"] == 0x77 and init["data"] == final.data.tobytes()
    s.close()

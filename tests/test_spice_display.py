"""Display channel: surfaces, draws, MARK, late clients, caches, releases."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from spice_client import Session
from spice_harness import (
    Harness,
    bitmap32,
    copy_cmd,
    fill_cmd,
    primary_create,
    surface_cmd,
)

from spice import qxl
from spice.channel import PING_IDLE_MS
from spice.protocol import Msg, MsgDisplay

W, H = 64, 48


def pattern(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << 24, (h, w), dtype=np.uint32)


@pytest.fixture
def live():
    h = Harness()
    create, mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.mem = mem
    yield h
    h.close()


def server_pixels(mem: np.ndarray, w: int = W, h: int = H) -> np.ndarray:
    return mem.view("<u4").reshape(h, w)


def test_connect_gets_surface_image_monitors_and_mark(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    types = [t for t, _ in d.messages if t > 100]
    assert types[:5] == [MsgDisplay.INVAL_ALL_PALETTES, MsgDisplay.SURFACE_CREATE,
                         MsgDisplay.DRAW_COPY, MsgDisplay.MONITORS_CONFIG, MsgDisplay.MARK]
    sid, w, h, fmt, flags = [m for t, m in d.messages if t == MsgDisplay.SURFACE_CREATE][0]
    assert (sid, w, h, fmt, flags) == (0, W, H, qxl.SPICE_SURFACE_FMT_32_xRGB, 1)
    max_allowed, heads = d.monitors
    assert heads == [(0, 0, W, H, 0, 0, 0)]
    s.close()


def test_draw_copy_reaches_client_and_is_released(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    pix = pattern(16, 20, 1)
    tok = live.qxl.token()
    live.qxl.push(copy_cmd(tok, (4, 6, 20, 26), bitmap32(pix, image_id=77)))
    drawn = d.pump(until=MsgDisplay.DRAW_COPY)
    assert drawn.bbox == qxl.Rect(4, 6, 20, 26)
    client = d.surfaces[0].pixels32()
    assert (client[4:20, 6:26] == pix).all()
    # rendering on the server (UPDATE_AREA) lets the guest have it back
    live.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    assert live.qxl.wait_released([tok])
    assert (server_pixels(live.mem)[4:20, 6:26] == pix).all()
    s.close()


def test_latency_ping_once_then_after_the_latency_timeout(live):
    # As spice-server's latency monitor: two pings PING_IDLE_MS after the
    # channel starts (when nothing is left unsent), then nothing until the
    # latency timeout (15 s) since the answer -- neither while draws keep
    # coming nor when the channel goes idle.
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    start = time.monotonic()
    seen: list[tuple[float, int]] = []
    next_draw = start + 0.3
    while time.monotonic() - start < 1.5:
        now = time.monotonic()
        if now >= next_draw and now - start < 0.9:  # draws for 0.6 s, then idle
            live.qxl.push(fill_cmd(live.qxl.token(), (0, 0, 8, 8), int(now * 1000) & 0xFFFFFF))
            next_draw = now + 0.03
        try:
            t, _ = d.ch.recv(0.01)
        except TimeoutError:
            continue
        seen.append((time.monotonic() - start, t))
    pings = [at for at, t in seen if t == Msg.PING]
    assert len(pings) == 2, pings  # the warm-up ping and the measured one
    assert pings[0] >= PING_IDLE_MS / 1000 - 0.01
    assert sum(t == MsgDisplay.DRAW_FILL for _, t in seen) >= 10
    s.close()


def test_late_client_gets_current_screen(live):
    pix = pattern(H, W, 2)
    toks = [live.qxl.token() for _ in range(3)]
    live.qxl.push(copy_cmd(toks[0], (0, 0, H, W), bitmap32(pix)),
                  fill_cmd(toks[1], (10, 10, 20, 30), 0x00FF00),
                  fill_cmd(toks[2], (30, 5, 40, 15), 0x0000FF, clip=[(30, 5, 35, 10)]))
    live.qxl.wait_drained()
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    expect = pix.copy()
    expect[10:20, 10:30] = 0x00FF00
    expect[30:35, 5:10] = 0x0000FF
    assert (d.surfaces[0].pixels32() == expect).all()
    assert (server_pixels(live.mem) == expect).all()
    assert live.qxl.wait_released(toks)
    # and live commands follow
    live.qxl.push(fill_cmd(live.qxl.token(), (0, 0, 5, 5), 0x123456))
    d.pump(until=MsgDisplay.DRAW_FILL)
    assert (d.surfaces[0].pixels32()[0:5, 0:5] == 0x123456).all()
    s.close()


def test_cached_image_is_sent_once(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    pix = pattern(8, 8, 3)
    img_id = (42 << 32) | qxl.QXL_IMAGE_GROUP_DRIVER
    live.qxl.push(copy_cmd(live.qxl.token(), (0, 0, 8, 8), bitmap32(pix, img_id, cache=True)),
                  copy_cmd(live.qxl.token(), (8, 8, 16, 16), bitmap32(pix, img_id, cache=True)))
    d.pump(until=MsgDisplay.DRAW_COPY)
    d.pump(until=MsgDisplay.DRAW_COPY)
    raw = [b for t, b in d.ch.received] if d.ch.received else []
    del raw
    client = d.surfaces[0].pixels32()
    assert (client[0:8, 0:8] == pix).all() and (client[8:16, 8:16] == pix).all()
    assert img_id in d.cache
    s.close()


def test_cache_flags_on_the_wire(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display(cache_size=100)  # room for one 8x8 image only
    d.pump(until=MsgDisplay.MARK)
    seen = []
    orig = d.apply

    def spy(t, body):
        if t == MsgDisplay.DRAW_COPY:
            off = struct.unpack_from("<I", body, 4 + 16 + 1)[0]
            _id, itype, iflags = struct.unpack_from("<QBB", body, off)
            seen.append((t, _id, itype, iflags))
        elif t == MsgDisplay.INVAL_LIST:
            seen.append((t,) + tuple(struct.unpack_from("<HBQ", body)))
        return orig(t, body)
    d.apply = spy
    a = (1 << 32) | qxl.QXL_IMAGE_GROUP_DRIVER
    b = (2 << 32) | qxl.QXL_IMAGE_GROUP_DRIVER
    # four different places, so that no draw covers another (occlusion)
    for k, (img_id, seed) in enumerate(((a, 1), (a, 1), (b, 2), (a, 1))):
        live.qxl.push(copy_cmd(live.qxl.token(), (8 * k, 8 * k, 8 * k + 8, 8 * k + 8),
                               bitmap32(pattern(8, 8, seed), img_id, cache=True)))
    for _ in range(4):
        d.pump(until=MsgDisplay.DRAW_COPY)
    FROM_CACHE = qxl.SPICE_IMAGE_TYPE_FROM_CACHE
    CACHE_ME = qxl.SPICE_IMAGE_FLAGS_CACHE_ME
    # the image itself goes out in whatever encoding: only the cache use matters here
    seen = [(e[0], e[1], e[2] == FROM_CACHE, e[3]) if e[0] == MsgDisplay.DRAW_COPY else e
            for e in seen]
    assert seen == [
        (MsgDisplay.DRAW_COPY, a, False, CACHE_ME),
        (MsgDisplay.DRAW_COPY, a, True, 0),
        (MsgDisplay.INVAL_LIST, 1, 1, a),  # b evicts a, before b's message
        (MsgDisplay.DRAW_COPY, b, False, CACHE_ME),
        (MsgDisplay.INVAL_LIST, 1, 1, b),
        (MsgDisplay.DRAW_COPY, a, False, CACHE_ME),
    ]
    s.close()


def test_offscreen_surface_copy_and_destroy(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    q = live.qxl
    create_tok, destroy_tok = q.token(), q.token()
    create, smem = surface_cmd(create_tok, 5, 16, 16)
    pix = pattern(16, 16, 4)
    q.push(create,
           copy_cmd(q.token(), (0, 0, 16, 16), bitmap32(pix), surface_id=5),
           copy_cmd(q.token(), (20, 20, 36, 36), qxl.SurfaceImage(
               qxl.ImageDescriptor(0, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 16, 16), 5)))
    created = d.pump(until=MsgDisplay.SURFACE_CREATE)
    assert created == (5, 16, 16, qxl.SPICE_SURFACE_FMT_32_xRGB, 0)
    d.pump(until=MsgDisplay.DRAW_COPY)
    d.pump(until=MsgDisplay.DRAW_COPY)
    assert (d.surfaces[0].pixels32()[20:36, 20:36] == pix).all()
    q.push(surface_cmd(destroy_tok, 5, create=False)[0])
    assert d.pump(until=MsgDisplay.SURFACE_DESTROY) == 5
    assert q.wait_released([create_tok, destroy_tok])
    live.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    assert (server_pixels(live.mem)[20:36, 20:36] == pix).all()
    s.close()


def test_update_and_message_commands(live):
    q = live.qxl
    t1, t2 = q.token(), q.token()
    q.push(qxl.Command(qxl.QXL_CMD_UPDATE, 0, 0, qxl.UpdateCmd(qxl.Rect(0, 0, 4, 4), 99, 0), t1),
           qxl.Command(qxl.QXL_CMD_MESSAGE, 0, 0, qxl.Message(b"hello"), t2))
    assert q.wait_released([t1, t2])
    assert q.updates == [99]


def test_invalid_drawables_are_released_not_drawn(live):
    q = live.qxl
    bad = [q.token() for _ in range(3)]
    q.push(fill_cmd(bad[0], (0, 0, H + 1, 4), 0xFF),  # outside the surface
           fill_cmd(bad[1], (0, 0, 4, 4), 0xFF, surface_id=9),  # no such surface
           fill_cmd(bad[2], (0, 0, 4, 4), 0xFF, clip=[(10, 10, 20, 20)]))  # clipped away
    assert q.wait_released(bad)
    live.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    assert not server_pixels(live.mem).any()


def test_create_destroy_primary_and_destroy_all(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    live.worker.destroy_primary_surface()
    assert d.pump(until=MsgDisplay.SURFACE_DESTROY) == 0
    create, mem = primary_create(32, 24)
    live.worker.create_primary_surface(create)
    assert d.pump(until=MsgDisplay.SURFACE_CREATE) == (0, 32, 24, 32, 1)
    d.pump(until=MsgDisplay.MARK)
    live.worker.destroy_surfaces()
    assert d.pump(until=MsgDisplay.SURFACE_DESTROY) == 0
    d.pump(until=MsgDisplay.STREAM_DESTROY_ALL)
    s.close()


def test_ack_window_holds_back_a_client_that_does_not_ack(live):
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.ch.auto_ack = False
    t, body = d.ch.recv()
    assert t == 3  # SET_ACK
    generation, window = struct.unpack("<II", body)
    assert window == 20
    d.ch.send(1, struct.pack("<I", generation))  # ACK_SYNC, then no ACK
    for i in range(100):
        live.qxl.push(fill_cmd(live.qxl.token(), (i % H, 0, i % H + 1, W), i * 4099))
    got = 0
    try:
        while True:
            t, body = d.ch.recv(0.5)
            d.apply(t, body)
            got += 1
    except TimeoutError:
        pass
    # the server stops once more than 2 * window messages are unacknowledged
    assert got == 2 * window + 1
    # acknowledging again lets the rest through, and the client ends up
    # with the server's picture
    d.ch.auto_ack = True
    d.ch.unacked = 0
    d.ch.ack_window = window
    for _ in range(3):
        d.ch.send(2)
    d.pump(timeout=1.5)
    live.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    assert (d.surfaces[0].pixels32() == server_pixels(live.mem)).all()
    s.close()


def test_stalled_client_does_not_hold_the_guest_back(live):
    """A client that stops reading: the worker keeps pulling, releases
    everything, and the client catches up with the right pixels later."""
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.use_canvas = True
    d.pump(until=MsgDisplay.MARK)
    q = live.qxl
    toks = []
    start = time.monotonic()
    # XOR fills: no draw covers an earlier one, so occlusion culls nothing
    for i in range(400):
        tok = q.token()
        toks.append(tok)
        q.push(fill_cmd(tok, (i % H, i % 7, i % H + 1, W), i * 977, rop=qxl.SPICE_ROPD_OP_XOR))
    q.wait_drained(timeout=20)
    pulled = time.monotonic() - start
    assert pulled < 10
    stats = live.call(live.server.stats)
    assert stats["display0_lagging_clients"] == 1
    assert stats["display0_display_pipe_items"] <= 60  # bounded, whatever the guest draws
    live.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    # everything the client will never get is back with the guest, except
    # what still sits in the socket buffers
    deadline = time.monotonic() + 10
    while True:
        with q.lock:
            released = len(set(q.released) & set(toks))
        if released > 300 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert released > 300
    # the client reads again and ends with the server's picture
    d.pump(timeout=3)
    assert (d.surfaces[0].pixels32() == server_pixels(live.mem)).all()
    s.close()


def test_encoded_image_layout_for_the_encoder_seam():
    """What an image encoder hands back is marshalled as spice.proto's Image."""
    from display_client import DisplayClient

    from spice.codecs import quic_encode
    from spice.display_client import EncodedImage
    from spice.wire import Reader, Writer
    pixels = pattern(4, 5, 9)
    payload = quic_encode(pixels.view(np.uint8), 5, 4, 20, qxl.SPICE_BITMAP_FMT_32BIT, True)
    w = Writer()
    ptr = w.root.ptr()
    desc = qxl.ImageDescriptor(7 << 32, qxl.SPICE_IMAGE_TYPE_QUIC, 0, 5, 4)
    EncodedImage(qxl.SPICE_IMAGE_TYPE_QUIC, struct.pack("<I", len(payload)), payload).write(
        None, ptr, desc, qxl.SPICE_IMAGE_FLAGS_CACHE_ME)
    parts, size = w.finish()
    body = b"".join(bytes(p) for p in parts)
    assert size == len(body) == 4 + 18 + 4 + len(payload)
    client = DisplayClient(ch=None)
    img = client.read_image(Reader(body), struct.unpack_from("<I", body)[0])
    assert client.image_types == [qxl.SPICE_IMAGE_TYPE_QUIC]
    got = img.data.view("<u4").reshape(4, 5) & 0xFFFFFF
    assert (got == pixels).all()
    assert (img.descriptor.width, img.descriptor.height) == (5, 4)
    assert 7 << 32 in client.cache  # CACHE_ME honoured on the way

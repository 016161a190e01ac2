"""Real SPICE clients against the server: spice-gtk (SpiceClientGLib) reading
its primary surface, and remote-viewer under Xvfb with screenshots,
keyboard and mouse.  Pixels are compared with the server's surface."""

from __future__ import annotations

import time

import numpy as np
import pytest
from real_clients import GtkReader, RemoteViewer, Xvfb, find_image
from spice_harness import Harness, bitmap32, copy_cmd, fill_cmd, primary_create

from spice import qxl
from spice.options import SpiceOptions

pytestmark = pytest.mark.e2e

W, H = 320, 240


def unique_pattern() -> np.ndarray:
    """Every pixel different (and none black), so a screenshot locates it."""
    yy, xx = np.mgrid[0:H, 0:W]
    return (0x800000 | (xx << 8) | yy).astype(np.uint32)


def start(password: str | None = None) -> Harness:
    opts = (SpiceOptions(port=0, password=password) if password
            else SpiceOptions(port=0, disable_ticketing=True))
    h = Harness(opts)
    create, mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.mem = mem
    h.qxl.push(copy_cmd(h.qxl.token(), (0, 0, H, W), bitmap32(unique_pattern())),
               fill_cmd(h.qxl.token(), (20, 30, 60, 90), 0xC04020))
    h.qxl.wait_drained()
    return h


def server_picture(h: Harness) -> np.ndarray:
    h.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    return h.mem.view("<u4").reshape(H, W).copy()


def wait_equal(get, want: np.ndarray, timeout: float = 10.0) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while True:
        got = get()
        if got.shape == want.shape and (got == want).all():
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_spice_gtk_primary_matches_the_server():
    h = start(password="gtk-pass")
    reader = GtkReader(h.port, "gtk-pass")
    try:
        reader.expect("mark")
        want = server_picture(h)
        got = wait_equal(reader.dump, want)
        assert (got == want).all(), f"{(got != want).sum()} pixels differ"
        # live drawing after the client is up
        h.qxl.push(fill_cmd(h.qxl.token(), (100, 100, 140, 200), 0x10E0F0),
                   copy_cmd(h.qxl.token(), (150, 10, 182, 42),
                            bitmap32(np.full((32, 32), 0x00FF00, np.uint32))))
        want = server_picture(h)
        got = wait_equal(reader.dump, want)
        assert (got == want).all(), f"{(got != want).sum()} pixels differ"
    finally:
        reader.close()
        h.close()


@pytest.fixture
def viewer():
    h = start()
    x = Xvfb()
    rv = RemoteViewer(x, h.server.uri())
    yield h, x, rv
    rv.close()
    x.close()
    h.close()


def test_remote_viewer_shows_the_screen_and_sends_input(viewer, tmp_path):
    h, x, rv = viewer
    wid = rv.window()
    want = server_picture(h)
    deadline = time.monotonic() + 20
    pos = None
    while pos is None and time.monotonic() < deadline:
        time.sleep(0.3)
        pos = find_image(x.screenshot(), want)
    x.save_png(tmp_path / "remote-viewer.png")
    assert pos is not None, rv.output()
    # a live update shows up at the same place
    h.qxl.push(fill_cmd(h.qxl.token(), (60, 60, 120, 160), 0x3366FF))
    want = server_picture(h)
    top, left = pos
    got = wait_equal(lambda: x.screenshot()[top:top + H, left:left + W], want)
    assert (got == want).all()
    # keys typed into the viewer reach the keyboard
    rv.xdotool("windowfocus", "--sync", wid)
    rv.xdotool("mousemove", str(left + W // 2), str(top + H // 2))
    rv.xdotool("key", "--window", wid, "a")
    ev = h.input.wait_for(lambda ev: ("scan", 0x9E) in ev, timeout=10)
    assert ("scan", 0x1E) in ev
    # a click grabs the pointer (server mouse mode); motion arrives relative
    rv.xdotool("click", "1")
    h.input.wait_for(lambda ev: ("buttons", 0) in ev, timeout=10)
    n = len(h.input.events)
    # spice-gtk reports the first motion after the grab as (0, 0)
    for _ in range(3):
        rv.xdotool("mousemove_relative", "--", "15", "7")
        time.sleep(0.2)
    ev = h.input.wait_for(lambda ev: any(e[0] == "motion" and (e[1] or e[2])
                                         for e in ev[n:]), timeout=10)
    moves = [e for e in ev[n:] if e[0] == "motion"]
    assert sum(e[1] for e in moves) > 0 and sum(e[2] for e in moves) > 0
    x.save_png(tmp_path / "remote-viewer-after.png")


def test_spice_gtk_renders_every_draw_type_like_the_server():
    """Each QXL draw type, rendered by spice-gtk's software canvas from our
    messages, gives exactly the pixels our canvas gave the guest."""
    from spice_harness import draw_cmd
    from test_spice_draws import H as DH
    from test_spice_draws import W as DW
    from test_spice_draws import all_draws
    h = Harness()
    create, mem = primary_create(DW, DH)
    h.worker.create_primary_surface(create)
    h.worker.start()
    reader = GtkReader(h.port)
    try:
        reader.expect("mark")
        for d in all_draws():
            h.qxl.push(draw_cmd(d, h.qxl.token()))
            h.worker.update_area(0, qxl.Rect(0, 0, DH, DW), True)
            want = mem.view("<u4").reshape(DH, DW).copy()
            got = wait_equal(reader.dump, want, timeout=5)
            assert (got == want).all(), f"draw type {d.type}: {(got != want).sum()} pixels differ"
    finally:
        reader.close()
        h.close()


def test_remote_viewer_connects_with_the_vv_file(tmp_path):
    h = start(password="vv-secret-7")
    x = Xvfb()
    vv = h.server.write_vv_file(tmp_path / "guest.vv")
    rv = RemoteViewer(x, vv)
    try:
        rv.window()
        want = server_picture(h)
        deadline = time.monotonic() + 20
        pos = None
        while pos is None and time.monotonic() < deadline:
            time.sleep(0.3)
            pos = find_image(x.screenshot(), want)
        assert pos is not None, rv.output()
    finally:
        rv.close()
        x.close()
        h.close()

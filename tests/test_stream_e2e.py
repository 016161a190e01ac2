"""An animated area becomes a video stream in real clients: remote-viewer
under Xvfb and spice-gtk show the MJPEG frames while it plays, and exactly
the server's pixels once the stream has timed out and the area was resent
losslessly."""

from __future__ import annotations

import time

import numpy as np
import pytest
from real_clients import GtkReader, RemoteViewer, Xvfb, find_image
from spice_harness import Harness, bitmap32, copy_cmd, fill_cmd, primary_create

from spice import qxl
from spice.codecs import corpus
from spice.options import SpiceOptions

pytestmark = pytest.mark.e2e

W, H = 320, 240
DEST = (50, 70, 170, 230)  # a 160 x 120 animated area


def frame(i: int) -> np.ndarray:
    rgb, _ = corpus.picture("photo", DEST[3] - DEST[1], DEST[2] - DEST[0], seed=i)
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]


def start() -> Harness:
    h = Harness(SpiceOptions(port=0, disable_ticketing=True))  # streaming-video=filter
    create, mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.mem = mem
    yy, xx = np.mgrid[0:H, 0:W]
    h.qxl.push(copy_cmd(h.qxl.token(), (0, 0, H, W),
                        bitmap32((0x800000 | (xx << 8) | yy).astype(np.uint32))),
               fill_cmd(h.qxl.token(), (10, 10, 30, 300), 0x2050A0))
    h.qxl.wait_drained()
    return h


def animate(h: Harness, seconds: float, fps: int = 25, on_frame=None) -> int:
    n = int(seconds * fps)
    for i in range(n):
        h.qxl.push(copy_cmd(h.qxl.token(), DEST, bitmap32(frame(i))))
        if on_frame is not None:
            on_frame(i)
        time.sleep(1 / fps)
    return n


def server_picture(h: Harness) -> np.ndarray:
    h.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    return h.mem.view("<u4").reshape(H, W).copy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    def rgb(x):
        return np.stack([(x >> s) & 255 for s in (16, 8, 0)], -1).astype(np.float64)
    mse = np.mean((rgb(a) - rgb(b)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def wait_equal(get, want: np.ndarray, timeout: float = 10.0) -> np.ndarray:
    deadline = time.monotonic() + timeout
    got = get()
    while time.monotonic() < deadline and not (got.shape == want.shape and (got == want).all()):
        time.sleep(0.2)
        got = get()
    return got


def test_remote_viewer_plays_the_animation_as_a_stream(tmp_path):
    h = start()
    x = Xvfb()
    rv = RemoteViewer(x, h.server.uri())
    try:
        rv.window()
        want = server_picture(h)
        pos = None
        deadline = time.monotonic() + 20
        while pos is None and time.monotonic() < deadline:
            time.sleep(0.3)
            pos = find_image(x.screenshot(), want)
        assert pos is not None, rv.output()
        top, left = pos
        t, lf, b, r = DEST
        seen = []

        def look(i: int) -> None:
            if i % 20 == 19:
                shot = x.screenshot()[top + t:top + b, left + lf:left + r]
                seen.append(max(psnr(shot, frame(k)) for k in range(max(0, i - 12), i + 1)))
        animate(h, 3.0, on_frame=look)
        stats = h.call(h.server.stats)
        x.save_png(tmp_path / "remote-viewer-stream.png")
        assert stats["display0_streams_created"] == 1
        assert stats["display0_stream_frames_sent"] >= 20
        # while playing, the viewer shows recent frames (within JPEG's loss)
        assert max(seen[1:]) > 25, seen
        # a second after the last frame the stream ends and the area is exact again
        time.sleep(1.5)
        want = server_picture(h)
        got = wait_equal(lambda: x.screenshot()[top:top + H, left:left + W], want)
        assert (got == want).all(), f"{(got != want).sum()} pixels differ"
        assert h.call(h.server.stats)["display0_live_streams"] == 0
    finally:
        rv.close()
        x.close()
        h.close()


def test_spice_gtk_plays_the_animation_as_a_stream():
    h = start()
    reader = GtkReader(h.port)
    try:
        reader.expect("mark")
        t, lf, b, r = DEST
        quality = []

        def look(i: int) -> None:
            if i % 20 == 19:
                shot = reader.dump()[t:b, lf:r]
                quality.append(max(psnr(shot, frame(k)) for k in range(max(0, i - 12), i + 1)))
        animate(h, 3.0, on_frame=look)
        stats = h.call(h.server.stats)
        assert stats["display0_streams_created"] == 1
        assert stats["display0_stream_frames_sent"] >= 20
        assert max(quality[1:]) > 25, quality
        time.sleep(1.5)
        want = server_picture(h)
        got = wait_equal(lambda: reader.dump() & 0xFFFFFF, want)
        assert (got == want).all(), f"{(got != want).sum()} pixels differ"
    finally:
        reader.close()
        h.close()


def test_the_demo_animation_is_a_stream_in_remote_viewer(tmp_path):
    """The whole machine: the demo guest's 25 fps DRAW_COPY animation reaches
    remote-viewer as an MJPEG stream, and covered drawables are culled."""
    from demo_harness import DemoVM
    vm = DemoVM(vdiport=False)
    x = rv = None
    try:
        vm.expect(r"^demo: ready")
        x = Xvfb(1100, 860)
        rv = RemoteViewer(x, f"spice://127.0.0.1:{vm.port}")
        rv.window()
        stats = vm.board.spice.stats
        deadline = time.monotonic() + 20
        while stats()["display0_stream_frames_sent"] < 25 and time.monotonic() < deadline:
            time.sleep(0.2)
        first = stats()
        time.sleep(2.0)
        later = stats()
        x.save_png(tmp_path / "demo-stream.png")
        assert first["display0_streams_created"] >= 1, rv.output()
        assert later["display0_live_streams"] == 1
        # about 25 frames a second keep coming
        assert later["display0_stream_frames_sent"] - first["display0_stream_frames_sent"] >= 35
        assert later["display0_culled_drawables"] > 0
    finally:
        if rv is not None:
            rv.close()
        if x is not None:
            x.close()
        vm.close()

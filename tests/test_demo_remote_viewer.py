"""The demo desktop in a real client: remote-viewer under Xvfb connected to
spicevm.  The screenshot shows the guest's desktop; keys typed and a click
made in the viewer reach the guest (PS/2 keyboard, agent mouse in client
mouse mode); resizing the viewer window makes the guest recreate its
primary at the new size (spice-gtk -> agent MONITORS_CONFIG -> server ->
QXL ROM -> CLIENT_MONITORS_CONFIG interrupt).  A missing tool skips, or
fails under CI=true."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from demo_harness import DemoVM
from real_clients import RemoteViewer, Xvfb, poll

pytestmark = pytest.mark.e2e

PANEL = 0x1F2329     # guest/demo/demo.h C_PANEL
LOG_BODY = 0x1B1F27  # C_LOG_BODY


def guest_origin(shot: np.ndarray) -> tuple[int, int] | None:
    """Screen position of the guest's (0, 0): the panel's top-left pixel."""
    ys, xs = np.nonzero(shot == PANEL)
    if ys.size < 500:
        return None
    top = int(ys.min())
    return top, int(xs[ys == top].min())


def test_remote_viewer_shows_the_demo_and_input_and_resize_work(tmp_path: Path) -> None:
    vm = DemoVM(vdiport=True)
    x = rv = None
    try:
        vm.expect(r"^demo: ready 1024x768$")
        x = Xvfb(1100, 860)
        rv = RemoteViewer(x, f"spice://127.0.0.1:{vm.port}")
        wid = rv.window()
        shot = poll(x.screenshot, lambda shot: guest_origin(shot) is not None)
        origin = guest_origin(shot)
        x.save_png(tmp_path / "demo-remote-viewer.png")
        assert origin is not None, rv.output()
        top, left = origin
        # the panel is a band 30 rows high across the guest screen; the log
        # window's dark body is there too
        assert (shot[top + 5, left:left + 1000] == PANEL).mean() > 0.6
        assert (shot[top:top + 800, left:left + 1024] == LOG_BODY).sum() > 50_000

        mark = vm.mark()
        rv.xdotool("windowfocus", "--sync", wid)
        rv.xdotool("mousemove", str(left + 200), str(top + 500))
        rv.xdotool("key", "--window", wid, "o", "k", "Return")
        vm.expect(r"^demo: key 0x18 'o'$", start=mark)
        vm.expect(r'^demo: text "ok"$', start=mark)

        # client mouse mode through the agent: absolute guest coordinates
        mark = vm.mark()
        rv.xdotool("mousemove", str(left + 300), str(top + 420))
        time.sleep(0.5)
        rv.xdotool("click", "1")
        m = vm.expect(r"^demo: button 1 down at (\d+),(\d+)$", start=mark)
        assert abs(int(m.group(1)) - 300) <= 1 and abs(int(m.group(2)) - 420) <= 1

        mark = vm.mark()
        rv.xdotool("windowsize", wid, "900", "700")
        m = vm.expect(r"^demo: resize (\d+)x(\d+)$", start=mark)
        w, h = int(m.group(1)), int(m.group(2))
        assert 640 <= w < 1024 and 480 <= h < 768

        def resized_panel(shot: np.ndarray) -> bool:
            """The panel now ends where the new, narrower screen ends."""
            origin = guest_origin(shot)
            if origin is None:
                return False
            top, left = origin
            row = shot[top + 5, left:left + 1024]
            return bool((row[w - 120:w - 20] == PANEL).mean() > 0.3 and
                        (row[w + 5:w + 40] != PANEL).all())

        shot = poll(x.screenshot, resized_panel)
        x.save_png(tmp_path / "demo-remote-viewer-resized.png")
        assert resized_panel(shot), rv.output()
    finally:
        if rv is not None:
            rv.close()
        if x is not None:
            x.close()
        vm.close()

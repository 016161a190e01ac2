"""The demo desktop on QEMU 7.2's QXL and spice-server (the reference): it
boots, draws its desktop (checked in QEMU's screendump), takes keys and
mouse input through QEMU's i8042, and spice-server streams its animated
area as video.  Under CI=true a missing QEMU fails instead of skipping."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from firmware_harness import missing
from real_clients import poll
from spice_client import Session

from spice.protocol import MsgDisplay
from vm.cli import build_firmware

pytestmark = pytest.mark.e2e

PANEL = 0x1F2329   # guest/demo/demo.h C_PANEL
TITLE = 0x2E3440   # C_TITLE
LOG_BODY = 0x1B1F27


def qemu_binary() -> str:
    path = shutil.which(os.environ.get("QEMU", "qemu-system-x86_64"))
    if path is None:
        missing("qemu-system-x86_64 is not installed")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuDemo:
    def __init__(self) -> None:
        kernel = build_firmware(["demo"])["demo"]
        self.tmp = tempfile.TemporaryDirectory()
        self.qmp_path = Path(self.tmp.name) / "qmp.sock"
        self.port = free_port()
        # stderr to a file: an undrained pipe would stall QEMU once it fills
        self.errors = tempfile.TemporaryFile(dir=self.tmp.name)
        self.proc = subprocess.Popen(
            [qemu_binary(), "-vga", "qxl", "-m", "128",
             # QEMU turns spice-server's stream detection off unless asked
             "-spice", f"port={self.port},addr=127.0.0.1,disable-ticketing=on,"
                       "streaming-video=filter",
             "-kernel", str(kernel), "-serial", "stdio", "-display", "none",
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off", "-no-reboot"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errors, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.qmp = self._qmp_connect()
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def expect(self, pattern: str, timeout: float = 20.0, start: int = 0) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if m := rx.search(line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no line matching {pattern!r}: {self.lines[-10:]}")
                self._cond.wait(min(left, 0.5))

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def _qmp_connect(self) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(str(self.qmp_path))
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._qmp_file = s.makefile("rw")
        json.loads(self._qmp_file.readline())  # greeting
        self.command("qmp_capabilities")
        return s

    def command(self, name: str, **args: object) -> object:
        self._qmp_file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self._qmp_file.flush()
        while True:
            reply = json.loads(self._qmp_file.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(reply["error"])

    def screendump(self) -> np.ndarray:
        path = Path(self.tmp.name) / "screen.ppm"
        self.command("screendump", filename=str(path))
        data = path.read_bytes()
        m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)
        assert m, data[:20]
        w, h = int(m.group(1)), int(m.group(2))
        rgb = np.frombuffer(data[m.end():], np.uint8)[: w * h * 3].reshape(h, w, 3)
        rgb = rgb.astype(np.uint32)
        return (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.errors.close()
        self.tmp.cleanup()

    def wait_screen(self, ok, timeout: float = 20.0) -> np.ndarray:
        """Screendumps until ``ok(shot)`` holds; the last one either way."""
        return poll(self.screendump, ok, timeout, interval=0.1)


@pytest.fixture
def qemu_demo():
    demo = QemuDemo()
    try:
        demo.expect(r"^demo: ready 1024x768$")
        yield demo
    finally:
        demo.close()


def test_the_desktop_is_drawn(qemu_demo: QemuDemo) -> None:
    shot = qemu_demo.wait_screen(lambda s: s.shape == (768, 1024) and s[5, 600] == PANEL and
                                 s[62, 300] == TITLE)
    assert shot.shape == (768, 1024)
    assert shot[5, 600] == PANEL                      # the panel, left of the clock
    assert shot[0:28, 300:500].max() != PANEL         # text in the panel
    # the welcome window's title bar below its accent line, and the log body
    assert shot[62, 300] == TITLE
    assert (shot[700, 700:900] == LOG_BODY).mean() > 0.9
    # the animated area changes between two dumps; the panel does not
    later = qemu_demo.wait_screen(
        lambda s: (s[90:330, 500:800] != shot[90:330, 500:800]).any())
    assert (later[90:330, 500:800] != shot[90:330, 500:800]).any()
    assert (later[5, 0:800] == shot[5, 0:800]).all()


def test_keys_and_mouse_reach_the_demo(qemu_demo: QemuDemo) -> None:
    mark = qemu_demo.mark()
    for key in ("h", "i", "ret"):
        qemu_demo.command("send-key", keys=[{"type": "qcode", "data": key}])
    qemu_demo.expect(r"^demo: key 0x23 'h'$", start=mark)
    qemu_demo.expect(r'^demo: text "hi"$', start=mark)
    mark = qemu_demo.mark()
    qemu_demo.command("input-send-event", events=[
        {"type": "rel", "data": {"axis": "x", "value": 40}},
        {"type": "rel", "data": {"axis": "y", "value": 30}}])
    time.sleep(0.2)
    qemu_demo.command("input-send-event", events=[
        {"type": "btn", "data": {"down": True, "button": "left"}}])
    qemu_demo.command("input-send-event", events=[
        {"type": "btn", "data": {"down": False, "button": "left"}}])
    m = qemu_demo.expect(r"^demo: button 1 down at (\d+),(\d+)$", start=mark)
    assert (int(m.group(1)), int(m.group(2))) == (552, 414)


def test_spice_server_streams_the_animated_area(qemu_demo: QemuDemo) -> None:
    session = Session("127.0.0.1", qemu_demo.port)
    try:
        session.channels()  # ATTACH_CHANNELS: the server starts the session
        display = session.open_display(decode_draws=False)
        assert display.pump(until=MsgDisplay.STREAM_CREATE, timeout=15) is not None
    finally:
        session.close()

"""Running real SPICE clients in tests: Xvfb, remote-viewer, spice-gtk.

A missing tool skips the test, except under CI=true where it fails.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from firmware_harness import missing

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
DEBIAN_PYTHON = "/usr/bin/python3"


def require(tool: str) -> str:
    path = tool if os.path.isabs(tool) and os.access(tool, os.X_OK) else shutil.which(tool)
    if path:
        return path
    missing(f"{tool} is not installed")
    raise AssertionError  # unreachable: missing() skips or fails


def require_gi() -> None:
    python = require(DEBIAN_PYTHON)
    probe = subprocess.run(
        [python, "-c", "import gi; gi.require_version('SpiceClientGLib', '2.0'); "
                       "from gi.repository import SpiceClientGLib"],
        capture_output=True, timeout=60)
    if probe.returncode != 0:
        missing("SpiceClientGLib is not available to /usr/bin/python3 (Debian: python3-gi, "
                "gir1.2-spiceclientglib-2.0)")


class Xvfb:
    """A private X server on a display number it picks itself (-displayfd),
    so tests running side by side never race for the same one."""

    def __init__(self, width: int = 1024, height: int = 768, timeout: float = 20.0) -> None:
        xvfb = require("Xvfb")
        self.width, self.height = width, height
        rfd, wfd = os.pipe()
        try:
            self.proc = subprocess.Popen([xvfb, "-displayfd", str(wfd), "-screen", "0",
                                          f"{width}x{height}x24", "-nolisten", "tcp"],
                                         pass_fds=(wfd,), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        finally:
            os.close(wfd)
        try:
            number = self._read_display(rfd, timeout)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(rfd)
        self.display = f":{number}"
        self.env = dict(os.environ, DISPLAY=self.display)
        self.env.pop("WAYLAND_DISPLAY", None)

    def _read_display(self, rfd: int, timeout: float) -> int:
        """The number Xvfb writes once it accepts connections."""
        data = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(rfd, selectors.EVENT_READ)
            while not data.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise RuntimeError("Xvfb did not start in time")
                chunk = os.read(rfd, 64)
                if not chunk:
                    raise RuntimeError(f"Xvfb exited before it was ready ({self.proc.wait()})")
                data += chunk
        return int(data)

    def screenshot(self) -> np.ndarray:
        """The root window as (h, w) uint32 0xRRGGBB."""
        imp = require("import")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "shot.rgb"
            info = subprocess.run([imp, "-window", "root", "-depth", "8", f"rgb:{out}"],
                                  env=self.env, capture_output=True, timeout=30)
            assert info.returncode == 0, info.stderr
            w, h = self.width, self.height
            rgb = np.frombuffer(out.read_bytes(), np.uint8).reshape(h, w, 3).astype(np.uint32)
        return (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]

    def save_png(self, path: str | os.PathLike) -> None:
        subprocess.run([require("import"), "-window", "root", str(path)], env=self.env,
                       timeout=30, check=True)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def poll(get: Callable[[], T], ok: Callable[[T], bool], timeout: float = 30.0,
         interval: float = 0.3) -> T:
    """``get()`` again and again until ``ok`` accepts its value or ``timeout``
    seconds pass; the last value either way (the caller asserts on it).  For
    what a real client shows, which arrives in its own time."""
    deadline = time.monotonic() + timeout
    value = get()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = get()
    return value


def find_image(shot: np.ndarray, image: np.ndarray) -> tuple[int, int] | None:
    """Top-left of ``image`` inside ``shot`` (exact match), or None."""
    h, w = image.shape
    ys, xs = np.nonzero(shot == image[0, 0])
    for y, x in zip(ys, xs, strict=True):
        if y + h <= shot.shape[0] and x + w <= shot.shape[1]:
            if (shot[y:y + h, x:x + w] == image).all():
                return int(y), int(x)
    return None


class RemoteViewer:
    def __init__(self, x: Xvfb, uri: str) -> None:
        rv = require("remote-viewer")
        self.x = x
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([rv, uri], env=x.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def window(self, timeout: float = 20.0) -> str:
        xdotool = require("xdotool")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # the only client on this private X server: any visible named window
            r = subprocess.run([xdotool, "search", "--onlyvisible", "--name", "."],
                               env=self.x.env, capture_output=True, text=True, timeout=30)
            if r.stdout.strip():
                return r.stdout.split()[-1]
            assert self.proc.poll() is None, self.output()
            time.sleep(0.2)
        raise TimeoutError("remote-viewer opened no window")

    def xdotool(self, *args: str) -> None:
        subprocess.run([require("xdotool"), *args], env=self.x.env, check=True, timeout=30)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class GtkReader:
    """tests/gi_spice_reader.py under Debian's python3."""

    def __init__(self, port: int, password: str | None = None) -> None:
        require_gi()
        args = [DEBIAN_PYTHON, str(HERE / "gi_spice_reader.py"), str(port)]
        if password:
            args.append(password)
        # stderr to a file: a pipe nobody drains would block a chatty client
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def expect(self, word: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(max(0.0, deadline - time.monotonic())):
                    line = self.proc.stdout.readline()
                    if not line:
                        break
                    if line.startswith(word):
                        return line.strip()
        state = "exited" if self.proc.poll() is not None else "running"
        raise TimeoutError(f"no {word!r} from the spice-gtk reader ({state}): "
                           f"{self.stderr()[-2000:]}")

    def dump(self) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "primary.raw"
            self.proc.stdin.write(f"dump {path}\n")
            self.proc.stdin.flush()
            _, w, h, stride, fmt = self.expect("dumped").split()
            raw = np.frombuffer(path.read_bytes(), np.uint8)
        w, h, stride = int(w), int(h), int(stride)
        return raw.reshape(h, stride)[:, : w * 4].copy().view("<u4").reshape(h, w)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()

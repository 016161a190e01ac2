"""A live SPICE server for tests: a core loop thread, a scripted QXL device,
recording input devices, and helpers that build QXL commands.

The scripted device is a real QXLInterface implementation driven by the
test: commands are queued with :meth:`ScriptedQXL.push`, releases are
recorded, and the worker is woken exactly as the QXL device does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spice import qxl
from spice.eventloop import LoopThread
from spice.interfaces import QXLDevInitInfo
from spice.options import SpiceOptions
from spice.server import SpiceServer


class ScriptedQXL:
    """QXLInterface fed by the test."""

    def __init__(self, num_surfaces: int = 1024, ram_size: int = 64 << 20) -> None:
        self.lock = threading.Lock()
        self.cmds: deque[qxl.Command] = deque()
        self.cursor_cmds: deque[qxl.Command] = deque()
        self.released: list[object] = []
        self.released_event = threading.Condition(self.lock)
        self.worker = None
        self.want_cmd = False
        self.want_cursor = False
        self.updates: list[int] = []
        self.async_done: list[int] = []
        self.client_caps: list[tuple[bool, bytes]] = []
        self.monitors_requests: list[object] = []
        self.take_monitors = True
        self.compression_levels: list[int] = []
        self.info = QXLDevInitInfo(num_surfaces=num_surfaces, ram_size=ram_size)
        self._next_release = 1

    # -- QXLInterface ---------------------------------------------------------------

    def attach_worker(self, worker) -> None:
        self.worker = worker

    def get_init_info(self) -> QXLDevInitInfo:
        return self.info

    def get_command(self):
        with self.lock:
            return self.cmds.popleft() if self.cmds else None

    def req_cmd_notification(self) -> bool:
        with self.lock:
            if self.cmds:
                return False
            self.want_cmd = True
            return True

    def get_cursor_command(self):
        with self.lock:
            return self.cursor_cmds.popleft() if self.cursor_cmds else None

    def req_cursor_notification(self) -> bool:
        with self.lock:
            if self.cursor_cmds:
                return False
            self.want_cursor = True
            return True

    def release_resource(self, release: object) -> None:
        with self.lock:
            self.released.append(release)
            self.released_event.notify_all()

    def notify_update(self, update_id: int) -> None:
        self.updates.append(update_id)

    def flush_resources(self) -> int:
        return 0

    def async_complete(self, cookie: int) -> None:
        self.async_done.append(cookie)

    def update_area_complete(self, surface_id: int, dirty) -> None:
        pass

    def set_client_capabilities(self, client_present: bool, caps: bytes) -> None:
        self.client_caps.append((client_present, caps))

    def client_monitors_config(self, config) -> bool:
        if config is not None:
            self.monitors_requests.append(config)
        return self.take_monitors

    def set_compression_level(self, level: int) -> None:
        self.compression_levels.append(level)

    # -- test side --------------------------------------------------------------------

    def token(self) -> int:
        with self.lock:
            t = self._next_release
            self._next_release += 1
            return t

    def push(self, *cmds: qxl.Command) -> None:
        with self.lock:
            self.cmds.extend(cmds)
            wake, self.want_cmd = self.want_cmd, False
        if wake and self.worker is not None:
            self.worker.wakeup()

    def push_cursor(self, *cmds: qxl.Command) -> None:
        with self.lock:
            self.cursor_cmds.extend(cmds)
            wake, self.want_cursor = self.want_cursor, False
        if wake and self.worker is not None:
            self.worker.wakeup()

    def wait_released(self, tokens, timeout: float = 5.0) -> bool:
        want = set(tokens)
        deadline = time.monotonic() + timeout
        with self.lock:
            while not want <= set(self.released):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.released_event.wait(left)
        return True

    def wait_drained(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.cmds and not self.cursor_cmds:
                    return
            time.sleep(0.002)
        raise TimeoutError("the worker did not pull the queued commands")


@dataclass
class Recorder:
    """KbdInterface + MouseInterface + TabletInterface that records calls."""

    leds: int = 0
    events: list[tuple] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def _add(self, *ev) -> None:
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def push_scan_freg(self, byte: int) -> None:
        self._add("scan", byte)

    def get_leds(self) -> int:
        return self.leds

    def motion(self, dx: int, dy: int, dz: int, buttons: int) -> None:
        self._add("motion", dx, dy, dz, buttons)

    def buttons(self, buttons: int) -> None:
        self._add("buttons", buttons)

    def set_logical_size(self, width: int, height: int) -> None:
        self._add("size", width, height)

    def position(self, x: int, y: int, buttons: int) -> None:
        self._add("position", x, y, buttons)

    def wheel(self, motion: int, buttons: int) -> None:
        self._add("wheel", motion, buttons)

    def wait_for(self, pred: Callable[[list], bool], timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"events so far: {self.events}")
                self.cond.wait(left)
            return list(self.events)


class Harness:
    """Core loop thread + SpiceServer on an ephemeral port + one scripted QXL."""

    def __init__(self, options: SpiceOptions | None = None, with_qxl: bool = True,
                 num_qxl: int = 1, vm_running: bool = False) -> None:
        self.core = LoopThread("test-core").start()
        opts = options or SpiceOptions(port=0, disable_ticketing=True)
        if opts.port == 5900:
            opts.port = 0
        self.server: SpiceServer = self.call(lambda: SpiceServer(self.core.loop, opts))
        self.qxls: list[ScriptedQXL] = []
        self.workers = []
        for _ in range(num_qxl if with_qxl else 0):
            q = ScriptedQXL()
            self.workers.append(self.call(lambda q=q: self.server.add_qxl(q)))
            self.qxls.append(q)
        self.input = Recorder()
        self.call(lambda: (self.server.add_kbd(self.input), self.server.add_mouse(self.input)))
        # tests start the workers themselves unless they ask for a running VM
        self.call(lambda: self.server.start(vm_running=vm_running))
        self.port = self.server.port

    @property
    def qxl(self) -> ScriptedQXL:
        return self.qxls[0]

    @property
    def worker(self):
        return self.workers[0]

    def call(self, fn):
        return self.core.call(fn)

    def close(self) -> None:
        try:
            self.call(self.server.close)
        finally:
            self.core.stop()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- building QXL commands --------------------------------------------------------------------


def wait_for(pred, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``pred`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def primary_create(width: int, height: int, stride: int | None = None,
                   fmt: int = qxl.SPICE_SURFACE_FMT_32_xRGB, keep: bool = False,
                   mouse_mode: int = 1) -> tuple[qxl.SurfaceCreate, np.ndarray]:
    bpp = qxl.SURFACE_FMT_BPP[fmt] // 8
    stride = stride if stride is not None else width * bpp
    mem = np.zeros(height * abs(stride), np.uint8)
    flags = qxl.QXL_SURF_FLAG_KEEP_DATA if keep else 0
    return qxl.SurfaceCreate(width, height, stride, fmt, 0, mouse_mode, flags,
                             qxl.QXL_SURF_TYPE_PRIMARY, mem), mem


def bitmap32(pixels: np.ndarray, image_id: int = 0, cache: bool = False,
             top_down: bool = True) -> qxl.BitmapImage:
    """A 32-bit xRGB bitmap from a (h, w) uint32 array (row 0 = top)."""
    h, w = pixels.shape
    rows = pixels if top_down else pixels[::-1]
    data = np.ascontiguousarray(rows.astype("<u4")).view(np.uint8).reshape(-1)
    flags = qxl.QXL_BITMAP_TOP_DOWN if top_down else 0
    desc = qxl.ImageDescriptor(image_id, qxl.SPICE_IMAGE_TYPE_BITMAP,
                               qxl.QXL_IMAGE_CACHE if cache else 0, w, h)
    return qxl.BitmapImage(desc, qxl.SPICE_BITMAP_FMT_32BIT, flags, w, h, w * 4, None, data)


def drawable(surface_id: int, draw_type: int, bbox: tuple[int, int, int, int], u,
             clip=None, deps=(-1, -1, -1), effect: int = qxl.QXL_EFFECT_OPAQUE,
             self_bitmap: int = 0, self_area=(0, 0, 0, 0)) -> qxl.Drawable:
    clip_arr = None if clip is None else np.array(clip, np.int32).reshape(-1, 4)
    return qxl.Drawable(surface_id, effect, draw_type, self_bitmap, qxl.Rect(*self_area),
                        qxl.Rect(*bbox), clip_arr, 0, tuple(deps), (qxl.Rect(0, 0, 0, 0),) * 3, u)


def draw_cmd(d: qxl.Drawable, release: object) -> qxl.Command:
    return qxl.Command(qxl.QXL_CMD_DRAW, 0, 0, d, release)


def copy_cmd(release: object, dest: tuple[int, int, int, int], image: qxl.Image,
             src_area: tuple[int, int, int, int] | None = None, clip=None,
             surface_id: int = 0) -> qxl.Command:
    t, left, b, r = dest
    area = qxl.Rect(*(src_area or (0, 0, b - t, r - left)))
    u = qxl.Copy(image, area, qxl.SPICE_ROPD_OP_PUT, qxl.SPICE_IMAGE_SCALE_MODE_NEAREST,
                 qxl.NO_MASK)
    deps = (-1, -1, -1)
    if isinstance(image, qxl.SurfaceImage):
        deps = (image.surface_id, -1, -1)
    return draw_cmd(drawable(surface_id, qxl.QXL_DRAW_COPY, dest, u, clip, deps), release)


def fill_cmd(release: object, dest: tuple[int, int, int, int], color: int, clip=None,
             surface_id: int = 0, rop: int = qxl.SPICE_ROPD_OP_PUT) -> qxl.Command:
    u = qxl.Fill(qxl.Brush(qxl.SPICE_BRUSH_TYPE_SOLID, color), rop, qxl.NO_MASK)
    return draw_cmd(drawable(surface_id, qxl.QXL_DRAW_FILL, dest, u, clip), release)


def surface_cmd(release: object, surface_id: int, width: int = 0, height: int = 0,
                create: bool = True, fmt: int = qxl.SPICE_SURFACE_FMT_32_xRGB
                ) -> tuple[qxl.Command, np.ndarray | None]:
    if not create:
        destroy = qxl.SurfaceCmd(surface_id, qxl.QXL_SURFACE_CMD_DESTROY, 0)
        return qxl.Command(qxl.QXL_CMD_SURFACE, 0, 0, destroy, release), None
    stride = width * qxl.SURFACE_FMT_BPP[fmt] // 8
    mem = np.zeros(height * stride, np.uint8)
    payload = qxl.SurfaceCmd(surface_id, qxl.QXL_SURFACE_CMD_CREATE, 0, fmt, width, height,
                             stride, mem)
    return qxl.Command(qxl.QXL_CMD_SURFACE, 0, 0, payload, release), mem


def cursor_cmd(release: object, ctype: int, x: int = 0, y: int = 0, visible: bool = True,
               shape: qxl.Cursor | None = None, trail=(0, 0)) -> qxl.Command:
    c = qxl.CursorCmd(ctype, qxl.Point(x, y), visible, shape, trail[0], trail[1])
    return qxl.Command(qxl.QXL_CMD_CURSOR, 0, 0, c, release)


def cursor_shape(unique: int, w: int = 8, h: int = 8, seed: int = 0) -> qxl.Cursor:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, w * h * 4, dtype=np.uint8)
    return qxl.Cursor(unique, qxl.SPICE_CURSOR_TYPE_ALPHA, w, h, 1, 2, data)

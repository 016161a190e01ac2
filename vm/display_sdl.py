"""``-display sdl``: the guest's screen in a local pygame (SDL2) window.

What it shows: the primary surface of the first QXL device as the SPICE
server's software canvas has it (in VGA mode that is the device's host
primary, so boot text shows too), with the guest cursor from the cursor
channel drawn on top.  The window is resizable; the picture keeps the
guest's aspect ratio, centred on black bars.  Window pixel (X, Y) inside
the picture rectangle (ox, oy, pw, ph) shows guest pixel
(floor((X - ox) * w / pw), floor((Y - oy) * h / ph)) -- nearest neighbour,
so at the guest's own size it is exact.  When the guest changes resolution
the window takes the new size, as QEMU's SDL window does.

Threads: pygame wants the thread that opened the window, which is the
core loop's (the main thread).  A core timer runs every 30 ms (QEMU's GUI
refresh period): it handles window events and asks the server for the next
frame with :meth:`SpiceServer.request_frame`, whose answer comes back on
the core thread.  The core loop never waits for the worker, and nothing of
the worker's is touched here.

Input (server mouse mode): keys go to the guest as PC/AT set-1 scancodes
(:mod:`vm.sdl_keymap`) through ``KbdInterface.push_scan_freg`` whenever the
window has focus; releasing focus releases every key still held.  The mouse
is grabbed by a click in the window (the click itself is not sent); while
grabbed, relative motion, buttons and the wheel go to
``MouseInterface.motion``/``buttons``.  Ctrl+Alt+G releases the grab (and
is not sent).  Closing the window stops the machine, like QEMU's.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from spice.interfaces import KbdInterface, MouseInterface
from spice.screendump import CursorState
from vm.sdl_keymap import LEFT_ALT, LEFT_CTRL, RIGHT_ALT, RIGHT_CTRL, set1_bytes

log = logging.getLogger(__name__)

REFRESH_MS = 30
FRAME_TIMEOUT_S = 1.0  # ask again if a frame request got no answer (worker gone)
INITIAL_SIZE = (640, 480)  # before the guest has a primary surface
KEY_REPEAT = (500, 33)  # ms: typematic delay and interval for a held key
GRAB_HINT = "Press Ctrl+Alt+G to release grab"
USAGE_G = 10
_CTRL = (LEFT_CTRL, RIGHT_CTRL)
_ALT = (LEFT_ALT, RIGHT_ALT)
# pygame button numbers -> SPICE button mask bits (left 1, middle 2, right 4)
_BUTTON_BITS = {1: 1, 2: 2, 3: 4}
_XRGB_MASKS = (0xFF0000, 0x00FF00, 0x0000FF, 0)
_HEADLESS_DRIVERS = ("offscreen", "dummy")  # usable only when SDL_VIDEODRIVER names them


def _import_pygame() -> Any:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # Ctrl-C and SIGTERM belong to the command line, not to SDL.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    import pygame  # noqa: PLC0415 (only -display sdl needs it)

    return pygame


def fit(src_w: int, src_h: int, win_w: int, win_h: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest rectangle with the aspect ratio of
    ``src_w`` x ``src_h`` that fits the window, centred."""
    if src_w <= 0 or src_h <= 0 or win_w <= 0 or win_h <= 0:
        return 0, 0, max(win_w, 0), max(win_h, 0)
    if win_w * src_h <= win_h * src_w:
        pw, ph = win_w, max(1, win_w * src_h // src_w)
    else:
        pw, ph = max(1, win_h * src_w // src_h), win_h
    return (win_w - pw) // 2, (win_h - ph) // 2, pw, ph


def scale_nearest(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """``pixels`` (h, w) resampled to (height, width): output pixel (x, y)
    takes source pixel (x * w // width, y * h // height)."""
    h, w = pixels.shape
    if (w, h) == (width, height):
        return pixels
    ys = np.arange(height) * h // height
    xs = np.arange(width) * w // width
    return pixels.take(ys, axis=0).take(xs, axis=1)


def draw_cursor(pixels: np.ndarray, cursor: CursorState) -> np.ndarray:
    """``pixels`` with the cursor blended in at its hot spot (a copy if
    anything is drawn)."""
    shape = cursor.shape
    if shape is None or not cursor.visible:
        return pixels
    h, w = pixels.shape
    ch, cw = shape.shape
    left, top = cursor.x - cursor.hot_x, cursor.y - cursor.hot_y
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + cw, w), min(top + ch, h)
    if x0 >= x1 or y0 >= y1:
        return pixels
    out = pixels.copy()
    src = shape[y0 - top:y1 - top, x0 - left:x1 - left].astype(np.uint32)
    dst = out[y0:y1, x0:x1]
    alpha = src >> 24
    inv = 255 - alpha
    blended = np.zeros_like(dst)
    for shift in (0, 8, 16):
        c = (src >> shift) & 0xFF
        b = (dst >> shift) & 0xFF
        blended |= ((c * alpha + b * inv + 127) // 255) << shift
    out[y0:y1, x0:x1] = blended
    return out


class SDLDisplay:
    """The local window.  Open it on the thread that runs the core loop;
    it refreshes from a core timer until :meth:`close`."""

    def __init__(self, core: Any, server: Any, kbd: KbdInterface | None,
                 mouse: MouseInterface | None, *, name: str | None = None,
                 on_close: Callable[[], None] | None = None, qxl_index: int = 0,
                 owns_server: bool = False) -> None:
        self._pg = pg = _import_pygame()
        self._core = core
        self._server = server
        self._kbd = kbd
        self._mouse = mouse
        self._on_close = on_close
        self._qxl_index = qxl_index
        self._owns_server = owns_server
        self._name = f"spicevm ({name})" if name else "spicevm"
        self._closed = False
        self._grabbed = False
        self._held: set[int] = set()  # usages pressed and sent to the guest
        self._swallowed: set[int] = set()  # hot-key presses whose release is not sent
        self._buttons = 0
        self._requested: float | None = None
        self._guest_size: tuple[int, int] | None = None
        self._last_pixels: np.ndarray | None = None
        self._last_cursor: tuple | None = None
        self._frame_surface = None
        self._dirty = True
        self.frames_shown = 0
        try:
            pg.display.init()
            driver = pg.display.get_driver()
            if driver in _HEADLESS_DRIVERS and os.environ.get("SDL_VIDEODRIVER") != driver:
                # SDL falls back to an invisible window when there is no
                # display; a window nobody can see is an error unless asked for
                raise pg.error("no display is available (is DISPLAY set?)")
            pg.display.set_mode(INITIAL_SIZE, pg.RESIZABLE)
        except pg.error as exc:
            pg.display.quit()
            raise RuntimeError(f"cannot open the SDL window: {exc}") from None
        pg.key.set_repeat(*KEY_REPEAT)
        self._update_title()
        log.info("SDL display open (video driver %s)", pg.display.get_driver())
        self._timer = core.timer_add(self._tick)
        core.timer_start(self._timer, 0)

    # -- public state -------------------------------------------------------------------

    @property
    def server(self) -> Any:
        """The SPICE server the pictures come from."""
        return self._server

    @property
    def grabbed(self) -> bool:
        return self._grabbed

    @property
    def title(self) -> str:
        return self._pg.display.get_caption()[0]

    def window_size(self) -> tuple[int, int]:
        return self._pg.display.get_surface().get_size()

    def picture_rect(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the guest picture in the window."""
        ww, wh = self.window_size()
        if self._guest_size is None:
            return 0, 0, ww, wh
        return fit(*self._guest_size, ww, wh)

    def window_pixels(self) -> np.ndarray:
        """What the window shows, as (height, width) uint32 0x00RRGGBB."""
        surface = self._pg.display.get_surface()
        w, h = surface.get_size()
        rgb = np.frombuffer(self._pg.image.tobytes(surface, "RGB"), np.uint8).reshape(h, w, 3)
        rgb = rgb.astype(np.uint32)
        return (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]

    def close(self) -> None:
        """Release the guest's keys and the grab, close the window (and the
        server, if this display made its own)."""
        if self._closed:
            return
        self._closed = True
        self._core.timer_remove(self._timer)
        self._release_keys()
        self._set_grab(False)
        self._pg.display.quit()
        if self._owns_server:
            self._server.close()

    # -- the refresh timer ----------------------------------------------------------------

    def _tick(self) -> None:
        if self._closed:
            return
        try:
            for event in self._pg.event.get():
                self._handle(event)
                if self._closed:
                    return
            self._request_frame()
        finally:
            if not self._closed:
                self._core.timer_start(self._timer, REFRESH_MS)

    def _request_frame(self) -> None:
        now = time.monotonic()
        if self._requested is not None and now - self._requested < FRAME_TIMEOUT_S:
            return
        try:
            self._server.request_frame(self._on_frame, self._qxl_index)
        except ValueError:
            # no QXL device: nothing to show but the empty window
            if self._dirty:
                self._present(None, None)
            return
        self._requested = now

    def _on_frame(self, pixels: np.ndarray | None, cursor: CursorState) -> None:
        self._requested = None
        if self._closed:
            return
        size = None if pixels is None else (pixels.shape[1], pixels.shape[0])
        if size != self._guest_size:
            self._guest_size = size
            if size is not None:
                self._set_window_size(size)
            self._dirty = True
        key = (cursor.serial, cursor.x, cursor.y, cursor.visible)
        if key != self._last_cursor:
            self._last_cursor = key
            self._dirty = True
        last = self._last_pixels
        if pixels is not None and (last is None or not np.array_equal(pixels, last)):
            self._dirty = True
        if not self._dirty:
            return
        self._last_pixels = pixels
        self._present(pixels, cursor)

    def _present(self, pixels: np.ndarray | None, cursor: CursorState | None) -> None:
        pg = self._pg
        window = pg.display.get_surface()
        window.fill((0, 0, 0))
        if pixels is not None:
            if cursor is not None:
                pixels = draw_cursor(pixels, cursor)
            h, w = pixels.shape
            x, y, pw, ph = fit(w, h, *window.get_size())
            if pw > 0 and ph > 0:
                scaled = scale_nearest(pixels, pw, ph)
                surf = self._frame_surface
                if surf is None or surf.get_size() != (pw, ph):
                    surf = self._frame_surface = pg.Surface((pw, ph), 0, 32, masks=_XRGB_MASKS)
                pg.surfarray.blit_array(surf, scaled.T)
                window.blit(surf, (x, y))
        pg.display.flip()
        self._dirty = False
        self.frames_shown += 1

    def _set_window_size(self, size: tuple[int, int]) -> None:
        if self.window_size() != size:
            self._pg.display.set_mode(size, self._pg.RESIZABLE)

    # -- events ---------------------------------------------------------------------------

    def _handle(self, event: Any) -> None:
        pg = self._pg
        t = event.type
        if t == pg.QUIT:
            log.info("the display window was closed: stopping the machine")
            if self._on_close is not None:
                self._on_close()
        elif t == pg.VIDEORESIZE:
            if self.window_size() != (event.w, event.h):
                pg.display.set_mode((max(1, event.w), max(1, event.h)), pg.RESIZABLE)
            self._dirty = True
            self._last_pixels = None  # repaint with the next frame
        elif t in (pg.WINDOWEXPOSED, pg.WINDOWSIZECHANGED):
            self._dirty = True
            self._last_pixels = None
        elif t == pg.WINDOWFOCUSLOST:
            self._release_keys()
            self._set_grab(False)
        elif t in (pg.KEYDOWN, pg.KEYUP):
            self._key(int(getattr(event, "scancode", 0)), t == pg.KEYDOWN)
        elif t == pg.MOUSEMOTION:
            if self._grabbed and self._mouse is not None:
                dx, dy = event.rel
                if dx or dy:
                    self._mouse.motion(int(dx), int(dy), 0, self._buttons)
        elif t in (pg.MOUSEBUTTONDOWN, pg.MOUSEBUTTONUP):
            self._button(event.button, t == pg.MOUSEBUTTONDOWN)
        elif t == pg.MOUSEWHEEL:
            if self._grabbed and self._mouse is not None and event.y:
                # wheel away from the user is SPICE's button UP: dz -1
                self._mouse.motion(0, 0, -int(event.y), self._buttons)

    def _key(self, usage: int, pressed: bool) -> None:
        if pressed and usage == USAGE_G and any(k in self._held for k in _CTRL) and any(
                k in self._held for k in _ALT):
            if usage not in self._swallowed:  # not a key-repeat of the hot key
                self._swallowed.add(usage)
                self._set_grab(not self._grabbed)
            return
        if not pressed and usage in self._swallowed:
            self._swallowed.discard(usage)
            return
        if pressed:
            self._held.add(usage)
        elif usage in self._held:
            self._held.discard(usage)
        else:
            return  # pressed before the window had focus: the guest never saw it
        self._send_key(usage, pressed)

    def _send_key(self, usage: int, pressed: bool) -> None:
        if self._kbd is None:
            return
        for byte in set1_bytes(usage, pressed):
            self._kbd.push_scan_freg(byte)

    def _release_keys(self) -> None:
        held, self._held = self._held, set()
        self._swallowed.clear()
        for usage in sorted(held):
            self._send_key(usage, False)

    def _button(self, button: int, pressed: bool) -> None:
        bit = _BUTTON_BITS.get(button)
        if bit is None:
            return  # 4/5 are the wheel, which MOUSEWHEEL reports
        if not self._grabbed:
            if not pressed and button == 1:
                self._set_grab(True)  # the grabbing click is not the guest's
            return
        self._buttons = self._buttons | bit if pressed else self._buttons & ~bit
        if self._mouse is not None:
            self._mouse.buttons(self._buttons)

    def _set_grab(self, on: bool) -> None:
        pg = self._pg
        if on == self._grabbed:
            return
        self._grabbed = on
        if not on and self._buttons:
            self._buttons = 0
            if self._mouse is not None:
                self._mouse.buttons(0)
        if not self._closed:
            # hidden and grabbed: SDL's relative mode, motion is not stopped
            # by the window's edges
            pg.event.set_grab(on)
            pg.mouse.set_visible(not on)
        self._update_title()

    def _update_title(self) -> None:
        if self._closed:
            return
        title = f"{self._name} - {GRAB_HINT}" if self._grabbed else self._name
        self._pg.display.set_caption(title)


def open_sdl_display(board: Any) -> SDLDisplay:
    """The window for a :class:`vm.board.Board`, on the calling thread
    (the one that will run the board's core loop).  Without a SPICE server
    on the board the display makes its own, which listens nowhere (as QEMU
    starts spice-server for a QXL device without ``-spice``)."""
    from vm.cpu import StopReason  # noqa: PLC0415 (the board imports this module lazily)

    server = board.spice
    owns = server is None
    if owns:
        from spice.options import SpiceOptions  # noqa: PLC0415
        from spice.server import SpiceServer  # noqa: PLC0415

        server = SpiceServer(board.core, SpiceOptions(disable_ticketing=True))
        for dev in board.display_devices:
            server.add_qxl(dev)
        if board.i8042 is not None:
            server.add_kbd(board.i8042)
            server.add_mouse(board.i8042)
        server.vm_start()
    try:
        return SDLDisplay(board.core, server, server.kbd, server.mouse,
                          name=server.options.name,
                          on_close=lambda: board.stop(StopReason.SHUTDOWN),
                          owns_server=owns)
    except BaseException:
        if owns:
            server.close()
        raise

"""The red worker: one thread per QXL device, and the handle the device uses.

Each round of the worker loop:

1. wait for an event (dispatcher request, client socket, timer) or until
   the round's timeout, and handle what arrived;
2. pull up to 50 cursor commands and up to 50 display commands from the
   device (pull model), stopping early while a client pipe holds more
   than 50 items or after 10 ms of work;
3. push what the client pipes can take.

The next round starts at once if this one stopped early with commands
left; otherwise it waits for an event.  A ring found empty is polled once
more before the worker asks the device for a notification (spice-server's
CMD_RING_POLL_RETRIES).  spice-server arms a 10 ms timer for that retry, but
its GSource dispatches on every wake-up of the worker's main loop, and under
QEMU some other source (the client socket, the next dispatcher message)
wakes it almost at once, so the notification is in place tens of
microseconds after the ring empties.  Our loop has fewer such wake-ups, so
the retry is made explicit: the second poll comes at the end of the same
round, once its output is pushed.  A 10 ms wait there let a guest that draws
in short bursts (a key, then its echo) sit unserved for up to 10 ms, and a
round of its own for the retry cost a loop pass per guest frame.

:class:`RedQXL` is what :meth:`SpiceServer.add_qxl` returns: the
``QXLWorker`` the device calls from its vCPU thread.  Every call becomes a
dispatcher message; synchronous ones wait for the worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from spice import qxl
from spice.cursor_channel import CursorChannel
from spice.dispatcher import Dispatcher
from spice.display_channel import DisplayChannel
from spice.eventloop import EventLoop
from spice.interfaces import QXLInterface, WatchEvent
from spice.protocol import ChannelType, MouseMode
from spice.screendump import NO_CURSOR, CursorState, LocalView

if TYPE_CHECKING:
    from spice.link import LinkedStream
    from spice.server import ClientSession, SpiceServer

log = logging.getLogger(__name__)

MAX_COMMANDS_PER_ROUND = 50
MAX_PIPE_SIZE = 50
ROUND_BUDGET_S = 0.010
CMD_RING_POLL_RETRY_S = 0.0  # see the module docstring
CMD_RING_POLL_RETRIES = 1
PIPE_WATCH_TIMEOUT_S = 0.010  # re-check full or lagging pipes at least this often
FLUSH_LIMIT = 100_000  # commands drained at most by one flush request


class _Ring:
    """Polling state of one command ring."""

    def __init__(self) -> None:
        self.poll_tries = 0
        self.waiting = False  # asked the device for a notification


class RedWorker:
    def __init__(self, server: SpiceServer, qxl_if: QXLInterface, index: int) -> None:
        self.server = server
        self.qxl = qxl_if
        self.index = index
        self.init_info = qxl_if.get_init_info()
        self.loop = EventLoop(f"spice-worker-{index}")
        self.dispatcher = Dispatcher(f"spice-dispatcher-{index}")
        self.loop.watch_add(self.dispatcher.fileno(), WatchEvent.READ,
                            lambda fd, ev: self.dispatcher.run_pending())
        self.display = DisplayChannel(self)
        self.cursor = CursorChannel(self)
        self.running = False
        self._display_ring = _Ring()
        self._cursor_ring = _Ring()
        self._stop = False
        self.rounds = 0
        self.wakeups = 0  # device notifications (spice-server's wakeup_counter)
        self.sessions: dict[int, list] = {}
        self.local_view = LocalView()
        self._clock_id: int | None = None
        self.thread = threading.Thread(target=self._run, name=f"spice-worker-{index}",
                                       daemon=True)

    def start_thread(self) -> None:
        self.thread.start()

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        self.dispatcher.worker_thread = threading.get_ident()
        self._clock_id = time.pthread_getcpuclockid(threading.get_ident())
        _name_os_thread(f"spice-worker-{self.index}")
        timeout: float | None = None
        while not self._stop:
            self.loop.run_once(timeout)
            if self._stop:
                break
            try:
                timeout = self._round()
            except Exception:
                log.exception("worker %d: round failed", self.index)
                timeout = PIPE_WATCH_TIMEOUT_S
        self._shutdown()

    def _round(self) -> float | None:
        self.rounds += 1
        start = time.monotonic()
        more = False
        if self.running:
            more |= self._process_cursor()
            more |= self._process_display(start)
        if self.running:
            self.display.streams.timeout()
        now = time.monotonic()
        self._push(now)
        if not self.running:
            return None
        blocked = self._blocked()
        if (more or now - start > ROUND_BUDGET_S) and not blocked:
            return 0.0  # work left: go again at once
        if blocked or any(c.lagging for c in self.display.clients):
            # watching full pipes drain (socket and ACK events wake us earlier)
            return PIPE_WATCH_TIMEOUT_S
        if not self._rings_waiting():
            # the second poll of an empty ring (CMD_RING_POLL_RETRIES), now
            # that this round's output is on its way: empty again, it asks
            # the device for a notification
            # (a ring already waiting has its notification armed: a command
            # pushed since this round's poll wakes us anyway)
            taken = self.display.stats.commands + self.cursor.commands
            more = ((not self._cursor_ring.waiting and self._process_cursor())
                    | (not self._display_ring.waiting
                       and self._process_display(time.monotonic())))
            if self.display.stats.commands + self.cursor.commands != taken:
                self._push(time.monotonic())
                return 0.0
            if more or not self._rings_waiting():
                return CMD_RING_POLL_RETRY_S
        return self.display.streams.next_timeout()  # the device will wake us

    def _push(self, now: float) -> None:
        self.cursor.push_all(now)
        self.display.push_all(now)

    def _rings_waiting(self) -> bool:
        return self._display_ring.waiting and self._cursor_ring.waiting

    def _blocked(self) -> bool:
        return (self.display.max_pipe_size() > MAX_PIPE_SIZE
                or self.cursor.max_pipe_size() > MAX_PIPE_SIZE)

    def _poll_empty(self, ring: _Ring, request) -> bool:
        """The ring was empty.  Returns True if commands are waiting after all."""
        if ring.poll_tries < CMD_RING_POLL_RETRIES:
            ring.poll_tries += 1
            return False
        if not ring.waiting:
            ring.waiting = True
            if not request():
                ring.waiting = False
                ring.poll_tries = 0
                return True
        return False

    def _process_cursor(self) -> bool:
        ring = self._cursor_ring
        cursor = self.cursor
        for _ in range(MAX_COMMANDS_PER_ROUND):
            if cursor.clients and cursor.max_pipe_size() > MAX_PIPE_SIZE:
                return False
            cmd = self.qxl.get_cursor_command()
            if cmd is None:
                if self._poll_empty(ring, self.qxl.req_cursor_notification):
                    continue
                return False
            ring.poll_tries = 0
            ring.waiting = False
            cursor.process(cmd)
        return True

    def _process_display(self, start: float) -> bool:
        ring = self._display_ring
        for _ in range(MAX_COMMANDS_PER_ROUND):
            if self.display.max_pipe_size() > MAX_PIPE_SIZE:
                return False
            cmd = self.qxl.get_command()
            if cmd is None:
                if self._poll_empty(ring, self.qxl.req_cmd_notification):
                    continue
                return False
            ring.poll_tries = 0
            ring.waiting = False
            self.display.process(cmd)
            if time.monotonic() - start > ROUND_BUDGET_S:
                return True
        return True

    def flush_commands(self, cursor: bool = True) -> None:
        """Drain the rings now, whatever the pipes hold (spice-server's
        flush_all_qxl_commands).  Clients that cannot keep up are switched to
        catch-up mode instead of holding the device back."""
        if not self.running:
            return
        for _ in range(FLUSH_LIMIT):
            cmd = self.qxl.get_command()
            if cmd is None:
                break
            self.display.process(cmd)
            if self.display.max_pipe_size() > MAX_PIPE_SIZE * 4:
                self._force_catch_up()
        self._display_ring.poll_tries = 0
        self._display_ring.waiting = False
        if cursor:
            for _ in range(FLUSH_LIMIT):
                cmd = self.qxl.get_cursor_command()
                if cmd is None:
                    break
                self.cursor.process(cmd)
            self._cursor_ring.poll_tries = 0
            self._cursor_ring.waiting = False
        now = time.monotonic()
        self.display.push_all(now)
        self.cursor.push_all(now)

    def _force_catch_up(self) -> None:
        for dcc in self.display.clients:
            dcc.push()
            if len(dcc.pipe) > MAX_PIPE_SIZE * 4 and dcc.counts_for_flow:
                dcc.enter_lag()

    # -- requests from the device (run on the worker thread) -----------------------------

    def h_wakeup(self) -> None:
        # Nothing to reset: every round polls both rings, and taking a
        # command resets that ring's polling.  A ring still marked waiting
        # has its notification armed in the device (the guest's push that
        # fires it leaves the ring non-empty), so it is not asked again.  As
        # spice-server's handle_dev_wakeup; resetting here re-armed the
        # cursor ring on every display wake-up, one extra device call and a
        # poll per frame.
        self.wakeups += 1

    def h_oom(self) -> None:
        if not self.running:
            return
        self.flush_commands(cursor=False)
        if self.qxl.flush_resources() == 0:
            self.display.current.flush_all()
            self.qxl.flush_resources()

    def h_start(self) -> None:
        if self.running:
            return
        self.running = True
        self._display_ring.poll_tries = 0
        self._cursor_ring.poll_tries = 0
        self.display._tell_guest_caps()

    def h_stop(self) -> None:
        if not self.running:
            return
        self.flush_commands()
        self.display.flush_all_surfaces()
        self.running = False

    def h_update_area(self, surface_id: int, area: qxl.Rect, clear_dirty: bool) -> list[qxl.Rect]:
        self.flush_commands(cursor=False)
        return self.display.update_area(surface_id, area, clear_dirty)

    def h_update_area_async(self, surface_id: int, area: qxl.Rect, clear_dirty: bool,
                            cookie: int) -> None:
        dirty = self.h_update_area(surface_id, area, clear_dirty)
        self.qxl.update_area_complete(surface_id, dirty)
        self.qxl.async_complete(cookie)

    def h_create_primary(self, create: qxl.SurfaceCreate) -> None:
        if self.display.create_primary(create):
            self.cursor.do_init()
            self.server.primary_changed(self.index, True, create.width, create.height,
                                        bool(create.mouse_mode))

    def h_destroy_primary(self) -> None:
        if 0 not in self.display.surfaces:
            log.warning("worker %d: double destroy of the primary surface", self.index)
            return
        self.flush_commands()
        self.display.destroy_primary()
        self.cursor.reset()
        self.server.primary_changed(self.index, False, 0, 0, False)

    def h_destroy_surface_wait(self, surface_id: int) -> None:
        self.flush_commands()
        self.display.destroy_surface_wait(surface_id)

    def h_destroy_surfaces(self) -> None:
        self.flush_commands()
        self.display.destroy_surfaces()
        self.cursor.reset()
        self.server.primary_changed(self.index, False, 0, 0, False)

    def h_flush_surfaces(self) -> None:
        self.flush_commands()
        self.display.flush_all_surfaces()

    def h_monitors_config(self, config: qxl.MonitorsConfig) -> None:
        self.display.set_monitors_config(config)

    def h_reset_cursor(self) -> None:
        self.cursor.reset()

    def h_reset_image_cache(self) -> None:
        if self.display.image_cache is not None:
            self.display.image_cache.clear()

    def h_reset_memslots(self) -> None:
        self.display.forget_guest_memory()

    def h_set_compression_level(self, level: int) -> None:
        try:
            self.qxl.set_compression_level(level)
        except Exception:
            log.exception("worker %d: set_compression_level failed", self.index)

    def h_set_mouse_mode(self, mode: int) -> None:
        self.cursor.mouse_mode = MouseMode(mode)

    def h_client_monitors_config(self, config) -> bool:
        try:
            return bool(self.qxl.client_monitors_config(config))
        except Exception:
            log.exception("worker %d: client_monitors_config failed", self.index)
            return False

    # -- clients ------------------------------------------------------------------------------

    def h_attach(self, linked: LinkedStream, session: ClientSession,
                 low_bandwidth: bool = False) -> None:
        if linked.channel_type == ChannelType.DISPLAY:
            cc = self.display.add_client(linked, session, self.server.channel_stats,
                                         low_bandwidth)
        else:
            cc = self.cursor.add_client(linked, self.server.channel_stats, low_bandwidth)
        self.sessions.setdefault(session.connection_id, []).append(cc)

    def h_detach_session(self, connection_id: int) -> None:
        for cc in self.sessions.pop(connection_id, []):
            cc.say_goodbye()

    def client_gone(self, cc) -> None:
        for lst in self.sessions.values():
            if cc in lst:
                lst.remove(cc)
        self.server.worker_client_gone(self.index, cc.channel_type, cc.connection_id)

    def h_stats(self) -> dict[str, int]:
        d = self.display.stats
        return {"commands": d.commands, "draws": d.draws, "renders": d.renders,
                "releases": d.releases, "guest_errors": d.guest_errors,
                "cursor_commands": self.cursor.commands, "pending_draws": len(self.display.current),
                "display_clients": len(self.display.clients),
                "display_pipe_items": sum(len(c.pipe) for c in self.display.clients),
                "lagging_clients": sum(1 for c in self.display.clients if c.lagging),
                "cursor_clients": len(self.cursor.clients), "rounds": self.rounds,
                "wakeups": self.wakeups,
                "worker_cpu_ns": self.cpu_ns(),
                **self.display.current.stats.as_dict(), **self.display.streams.stats_dict(),
                **self.display.encoder_stats.as_dict()}

    def cpu_ns(self) -> int:
        """CPU time the worker thread used (what the display benchmark reports)."""
        if self._clock_id is None:
            return 0
        try:
            return time.clock_gettime_ns(self._clock_id)
        except OSError:
            return 0

    # -- the host's local display (spice.screendump) -------------------------------------

    def h_screendump(self) -> np.ndarray | None:
        return self.local_view.primary(self.display)

    def h_cursor_state(self) -> CursorState:
        return self.local_view.cursor_state(self.cursor)

    def h_frame(self, callback: Callable[[np.ndarray | None, CursorState], None]) -> None:
        """Answer a local display on the host's core thread, never blocking it."""
        try:
            pixels = self.local_view.primary(self.display)
            cursor = self.local_view.cursor_state(self.cursor)
        except Exception:
            log.exception("worker %d: reading the primary for the local display failed",
                          self.index)
            pixels, cursor = None, NO_CURSOR
        self.server.core.call_soon(lambda: callback(pixels, cursor))

    # -- teardown -------------------------------------------------------------------------------

    def stop_thread(self) -> None:
        def _stop() -> None:
            self._stop = True
        if self.thread.is_alive():
            self.dispatcher.post(_stop)
            self.thread.join(10)
        self.dispatcher.close()

    def _shutdown(self) -> None:
        try:
            self.cursor.close()
            self.display.close()
        finally:
            self.loop.close()


def _name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (top -H, /proc/PID/task/*/comm), as
    spice-server names its "SPICE Worker"; best effort, Linux only."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


class RedQXL:
    """The QXLWorker handed to the device: every call goes through the
    dispatcher to the worker thread."""

    def __init__(self, worker: RedWorker) -> None:
        self._w = worker
        self._d = worker.dispatcher
        self._wakeup_pending = False
        self._oom_pending = False
        self._lock = threading.Lock()

    def wakeup(self) -> None:
        with self._lock:
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        self._d.post(self._do_wakeup)

    def _do_wakeup(self) -> None:
        with self._lock:
            self._wakeup_pending = False
        self._w.h_wakeup()

    def oom(self) -> None:
        with self._lock:
            if self._oom_pending:
                return
            self._oom_pending = True
        self._d.post(self._do_oom)

    def _do_oom(self) -> None:
        with self._lock:
            self._oom_pending = False
        self._w.h_oom()

    def start(self) -> None:
        self._d.post(self._w.h_start)

    def stop(self) -> None:
        self._d.call(self._w.h_stop)

    def update_area(self, surface_id: int, area: qxl.Rect, clear_dirty: bool) -> list[qxl.Rect]:
        return self._d.call(self._w.h_update_area, surface_id, area, clear_dirty)

    def update_area_async(self, surface_id: int, area: qxl.Rect, clear_dirty: bool,
                          cookie: int) -> None:
        self._d.post(self._w.h_update_area_async, surface_id, area, clear_dirty, cookie)

    def create_primary_surface(self, create: qxl.SurfaceCreate) -> None:
        self._d.call(self._w.h_create_primary, create)

    def create_primary_surface_async(self, create: qxl.SurfaceCreate, cookie: int) -> None:
        self._d.post(self._async, self._w.h_create_primary, (create,), cookie)

    def destroy_primary_surface(self) -> None:
        self._d.call(self._w.h_destroy_primary)

    def destroy_primary_surface_async(self, cookie: int) -> None:
        self._d.post(self._async, self._w.h_destroy_primary, (), cookie)

    def destroy_surface_wait(self, surface_id: int) -> None:
        self._d.call(self._w.h_destroy_surface_wait, surface_id)

    def destroy_surface_async(self, surface_id: int, cookie: int) -> None:
        self._d.post(self._async, self._w.h_destroy_surface_wait, (surface_id,), cookie)

    def destroy_surfaces(self) -> None:
        self._d.call(self._w.h_destroy_surfaces)

    def destroy_surfaces_async(self, cookie: int) -> None:
        self._d.post(self._async, self._w.h_destroy_surfaces, (), cookie)

    def flush_surfaces_async(self, cookie: int) -> None:
        self._d.post(self._async, self._w.h_flush_surfaces, (), cookie)

    def monitors_config_async(self, config: qxl.MonitorsConfig, cookie: int) -> None:
        self._d.post(self._async, self._w.h_monitors_config, (config,), cookie)

    def reset_cursor(self) -> None:
        self._d.call(self._w.h_reset_cursor)

    def reset_image_cache(self) -> None:
        self._d.call(self._w.h_reset_image_cache)

    def reset_memslots(self) -> None:
        self._d.call(self._w.h_reset_memslots)

    def _async(self, fn, args: tuple, cookie: int) -> None:
        try:
            fn(*args)
        finally:
            self._w.qxl.async_complete(cookie)

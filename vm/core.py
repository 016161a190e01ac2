"""The machine's main event loop: fd watches, timers and cross-thread calls.

One :class:`Core` runs on the main thread.  It is the host side of the
SPICE server (``spice.interfaces.CoreInterface``: watches, millisecond
timers, ``call_soon``) and the clock the device models use
(``devices.bus.Clock``: ``now_ns`` and one-shot timers with nanosecond
deadlines).  Every callback runs on the loop thread, one at a time.

Other threads (the vCPU, the SPICE worker, the serial reader) post work with
:meth:`Core.call_soon`; arming or cancelling a timer, and adding or removing a
watch, are also safe from any thread.  A pipe wakes the loop when something
posted from elsewhere needs it sooner than its current sleep.

Timing: a device like the PIT drops a tick that fires a whole period late,
so timers must be precise, and epoll's own timeout has millisecond
granularity.  The loop therefore arms a timerfd (CLOCK_MONOTONIC, absolute
nanosecond deadline) for its earliest timer and waits in epoll with no
timeout: one wake-up per timer, typically within 0.1 ms of the deadline.
Where timerfd is missing the loop falls back to epoll plus a precise
``time.sleep`` for the last two milliseconds.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable

from spice.eventloop import ready_events, selector_mask
from spice.interfaces import ChannelEvent, ChannelEventInfo, WatchEvent

log = logging.getLogger(__name__)

# Without a timerfd: below this many seconds to the next timer the loop
# sleeps precisely instead of in epoll (millisecond granularity).
_NAP_BELOW = 0.002
_TIMERFD = object()  # selector key data of the timerfd


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class _TimerFd:
    """A Linux timerfd on CLOCK_MONOTONIC (the clock of ``time.monotonic_ns``)
    armed with absolute nanosecond deadlines, through libc: Python 3.11 has
    no ``os.timerfd_*``."""

    CLOCK_MONOTONIC = 1
    TFD_TIMER_ABSTIME = 1

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd = fd
        self._armed: int | None = None
        self._spec = _Itimerspec()

    @classmethod
    def create(cls) -> _TimerFd | None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.timerfd_create(cls.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(libc, fd) if fd >= 0 else None

    def set(self, deadline_ns: int | None) -> None:
        if deadline_ns == self._armed:
            return
        value = self._spec.it_value
        if deadline_ns is None:
            value.tv_sec = value.tv_nsec = 0  # disarm
        else:
            deadline_ns = max(deadline_ns, 1)  # 0 would disarm
            value.tv_sec, value.tv_nsec = divmod(deadline_ns, 1_000_000_000)
        if self._libc.timerfd_settime(self.fd, self.TFD_TIMER_ABSTIME, ctypes.byref(self._spec),
                                      None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        self._armed = deadline_ns

    def clear(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass
        self._armed = None


class CoreWatch:
    """A watched fd (the opaque ``Watch`` handle of CoreInterface)."""

    __slots__ = ("fd", "events", "callback", "active")

    def __init__(self, fd: int, events: WatchEvent,
                 callback: Callable[[int, WatchEvent], None]) -> None:
        self.fd = fd
        self.events = events
        self.callback = callback
        self.active = True


class CoreTimer:
    """A one-shot timer: both ``devices.bus.Timer`` and the CoreInterface
    timer handle.  The callback runs on the loop thread."""

    __slots__ = ("_core", "callback", "deadline", "_generation", "removed")

    def __init__(self, core: Core, callback: Callable[[], None]) -> None:
        self._core = core
        self.callback = callback
        self.deadline: int | None = None
        self._generation = 0
        self.removed = False

    def start_ns(self, deadline_ns: int) -> None:
        self._core._arm(self, int(deadline_ns))

    def start_ms(self, ms: int) -> None:
        self._core._arm(self, self._core.now_ns() + int(ms) * 1_000_000)

    def cancel(self) -> None:
        self._core._disarm(self)

    @property
    def armed(self) -> bool:
        return self.deadline is not None


class Core:
    """The main event loop (see the module docstring)."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.RLock()
        self._timers: list[tuple[int, int, int, CoreTimer]] = []  # deadline, seq, gen, timer
        self._seq = itertools.count()
        self._pending: deque[Callable[[], None]] = deque()
        self._watches: dict[int, CoreWatch] = {}
        self._stopping = False
        self._closed = False
        # Held while writing the wake-up pipe and while closing it: after
        # close() its fd numbers belong to whatever is opened next.
        # Reentrant: a signal handler may post while this thread holds it.
        self._wake_lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._sleep_until: int | None = None  # deadline of the current select, None = forever
        self._sleeping = False
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_r, self._wake_w = rfd, wfd
        self._selector.register(rfd, selectors.EVENT_READ, None)
        self._timerfd = _TimerFd.create()
        if self._timerfd is not None:
            self._selector.register(self._timerfd.fd, selectors.EVENT_READ, _TIMERFD)

    # ------------------------------------------------------------------ Clock
    @staticmethod
    def now_ns() -> int:
        return time.monotonic_ns()

    def new_timer(self, callback: Callable[[], None]) -> CoreTimer:
        return CoreTimer(self, callback)

    # ------------------------------------------------------------ CoreInterface
    def watch_add(self, fd: int, events: WatchEvent,
                  callback: Callable[[int, WatchEvent], None]) -> CoreWatch:
        watch = CoreWatch(fd, events, callback)
        with self._lock:
            if fd in self._watches:
                raise ValueError(f"fd {fd} is already watched")
            self._watches[fd] = watch
            mask = selector_mask(events)
            if mask:
                self._selector.register(fd, mask, watch)
        self._wake()
        return watch

    def watch_update_mask(self, watch: CoreWatch, events: WatchEvent) -> None:
        with self._lock:
            if not watch.active:
                return
            old = selector_mask(watch.events)
            new = selector_mask(events)
            watch.events = events
            if old and new:
                self._selector.modify(watch.fd, new, watch)
            elif new:
                self._selector.register(watch.fd, new, watch)
            elif old:
                self._selector.unregister(watch.fd)
        self._wake()

    def watch_remove(self, watch: CoreWatch) -> None:
        with self._lock:
            if not watch.active:
                return
            watch.active = False
            if self._watches.get(watch.fd) is watch:
                del self._watches[watch.fd]
            if selector_mask(watch.events):
                try:
                    self._selector.unregister(watch.fd)
                except (KeyError, ValueError):
                    pass  # the fd was closed before its watch was removed

    def timer_add(self, callback: Callable[[], None]) -> CoreTimer:
        return CoreTimer(self, callback)

    def timer_start(self, timer: CoreTimer, ms: int) -> None:
        timer.start_ms(ms)

    def timer_cancel(self, timer: CoreTimer) -> None:
        timer.cancel()

    def timer_remove(self, timer: CoreTimer) -> None:
        timer.cancel()
        timer.removed = True

    def channel_event(self, event: ChannelEvent, info: ChannelEventInfo) -> None:
        log.info("spice channel %s: type %d id %d connection %d peer %s", event.name,
                 info.channel_type, info.channel_id, info.connection_id, info.peer)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._pending.append(callback)
        if threading.current_thread() is not self._thread:
            self._wake()

    # --------------------------------------------------------------- running
    def run(self, timeout: float | None = None) -> None:
        """Run the loop on the calling thread until :meth:`stop` (or for
        ``timeout`` seconds).  A later call runs it again."""
        self._thread = threading.current_thread()
        self._stopping = False
        end = None if timeout is None else self.now_ns() + int(timeout * 1e9)
        try:
            while not self._stopping:
                self._run_pending()
                next_deadline = self._fire_timers()
                if self._stopping or self._pending:
                    continue
                if end is not None:
                    if self.now_ns() >= end:
                        break
                    next_deadline = end if next_deadline is None else min(next_deadline, end)
                self._poll(next_deadline)
        finally:
            self._thread = None

    def stop(self) -> None:
        """Make :meth:`run` return (from any thread, or from a callback)."""
        self._stopping = True
        self._wake()

    def close(self) -> None:
        """Release the loop's fds (the loop must not be running)."""
        with self._wake_lock:
            if self._closed:
                return
            self._closed = True
            self._selector.close()
            if self._timerfd is not None:
                os.close(self._timerfd.fd)
            os.close(self._wake_r)
            os.close(self._wake_w)

    # ------------------------------------------------------------- internals
    def _wake(self) -> None:
        with self._wake_lock:
            if self._closed:  # a late poster has nobody to wake
                return
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:
                pass  # the pipe is full: the loop is waking anyway

    def _arm(self, timer: CoreTimer, deadline: int) -> None:
        if timer.removed:
            raise ValueError("timer was removed")
        with self._lock:
            timer._generation += 1
            timer.deadline = deadline
            heapq.heappush(self._timers, (deadline, next(self._seq), timer._generation, timer))
            wake = self._sleeping and (self._sleep_until is None or deadline < self._sleep_until)
        if wake and threading.current_thread() is not self._thread:
            self._wake()

    def _disarm(self, timer: CoreTimer) -> None:
        with self._lock:
            timer._generation += 1
            timer.deadline = None
            # Drop cancelled entries at the top so the heap does not grow
            # without bound with timers that are re-armed constantly.
            while self._timers and self._timers[0][2] != self._timers[0][3]._generation:
                heapq.heappop(self._timers)

    def _fire_timers(self) -> int | None:
        """Run due timers; return the next deadline (or None)."""
        while True:
            with self._lock:
                while self._timers and self._timers[0][2] != self._timers[0][3]._generation:
                    heapq.heappop(self._timers)
                if not self._timers:
                    return None
                deadline, _, _, timer = self._timers[0]
                if deadline > self.now_ns():
                    return deadline
                heapq.heappop(self._timers)
                timer.deadline = None
                timer._generation += 1
            self._call(timer.callback)
            if self._stopping:
                return None

    def _run_pending(self) -> None:
        for _ in range(len(self._pending)):
            self._call(self._pending.popleft())

    def _poll(self, deadline: int | None) -> None:
        with self._lock:
            self._sleep_until = deadline
            self._sleeping = True
            # A timer armed from another thread just before we took the lock
            # is in the heap; make sure we do not sleep past it.
            if self._timers:
                first = self._timers[0][0]
                if deadline is None or first < deadline:
                    deadline = first
        try:
            if self._timerfd is not None:
                self._timerfd.set(deadline)
                ready = self._selector.select(None)
            else:
                ready = self._select_with_nap(deadline)
        finally:
            self._sleeping = False
        for key, mask in ready:
            if key.data is None:
                self._drain_wake()
                continue
            if key.data is _TIMERFD:
                assert self._timerfd is not None
                self._timerfd.clear()
                continue
            watch: CoreWatch = key.data
            if not watch.active:
                continue
            events = ready_events(mask) & watch.events
            if events:
                self._call(lambda w=watch, e=events: w.callback(w.fd, e))

    def _select_with_nap(self, deadline: int | None) -> list:  # type: ignore[type-arg]
        """Without a timerfd: epoll's timeout is whole milliseconds, rounded
        up, so for the last stretch look at the fds without waiting, then
        sleep precisely (clock_nanosleep) unless something is ready."""
        timeout = None if deadline is None else max(0.0, (deadline - self.now_ns()) / 1e9)
        if timeout is not None and timeout < _NAP_BELOW:
            ready = self._selector.select(0)
            if not ready:
                time.sleep(timeout)
            return ready
        if timeout is not None:
            timeout -= _NAP_BELOW / 2  # wake early; the nap does the rest
        return self._selector.select(timeout)

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("event loop callback %r failed", callback)

"""A small selector-based event loop implementing :class:`CoreInterface`.

The red worker thread runs one of these for its display and cursor channel
sockets and its dispatcher.  It is also a complete host core for programs
that embed the server without a machine around it (tests, benchmarks).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable

from spice.interfaces import ChannelEvent, ChannelEventInfo, WatchEvent

log = logging.getLogger(__name__)


class _Watch:
    __slots__ = ("fd", "events", "callback", "active")

    def __init__(self, fd: int, events: WatchEvent, callback: Callable[[int, WatchEvent], None]):
        self.fd = fd
        self.events = events
        self.callback = callback
        self.active = True


class _Timer:
    __slots__ = ("callback", "deadline", "seq")

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback
        self.deadline: float | None = None
        self.seq = 0


# Flag arithmetic on enum members is slow, and the red worker updates its
# watches on every send: masks are translated through int tables instead.
_SELECTOR_MASK = tuple((selectors.EVENT_READ if e & WatchEvent.READ else 0)
                       | (selectors.EVENT_WRITE if e & WatchEvent.WRITE else 0)
                       for e in range(4))
_READY = tuple(WatchEvent((WatchEvent.READ if m & selectors.EVENT_READ else 0)
                          | (WatchEvent.WRITE if m & selectors.EVENT_WRITE else 0))
               for m in range(4))


def selector_mask(events: WatchEvent) -> int:
    """The ``selectors`` event mask watching for ``events``."""
    return _SELECTOR_MASK[int(events) & 3]


def ready_events(mask: int) -> WatchEvent:
    """The :class:`WatchEvent` flags of a ``selectors`` ready mask."""
    return _READY[mask & 3]


class EventLoop:
    """Watches, one-shot timers and a thread-safe ``call_soon``.

    Every callback runs on the thread that calls :meth:`run` or
    :meth:`run_once`.  An exception escaping a callback is logged and the
    loop carries on.
    """

    def __init__(self, name: str = "spice-loop") -> None:
        self.name = name
        self._sel = selectors.DefaultSelector()
        self._watches: dict[int, _Watch] = {}
        self._timers: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._soon: deque[Callable[[], None]] = deque()
        self._soon_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_pending = False
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopped = False
        self._closed = False
        self.thread_id: int | None = None
        self.events: list[tuple[ChannelEvent, ChannelEventInfo]] = []

    # -- CoreInterface ------------------------------------------------------

    def watch_add(self, fd: int, events: WatchEvent,
                  callback: Callable[[int, WatchEvent], None]) -> _Watch:
        if fd in self._watches:
            raise ValueError(f"fd {fd} is already watched")
        w = _Watch(fd, WatchEvent(events), callback)
        self._watches[fd] = w
        mask = selector_mask(w.events)
        if mask:
            self._sel.register(fd, mask, w)
        return w

    def watch_update_mask(self, watch: _Watch, events: WatchEvent) -> None:
        if not watch.active or int(events) == int(watch.events):
            return
        old = selector_mask(watch.events)
        new = selector_mask(WatchEvent(events))
        watch.events = WatchEvent(events)
        if old == new:
            return
        if old and new:
            self._sel.modify(watch.fd, new, watch)
        elif new:
            self._sel.register(watch.fd, new, watch)
        else:
            self._sel.unregister(watch.fd)

    def watch_remove(self, watch: _Watch) -> None:
        if not watch.active:
            return
        watch.active = False
        if selector_mask(watch.events):
            try:
                self._sel.unregister(watch.fd)
            except (KeyError, ValueError):
                pass
        if self._watches.get(watch.fd) is watch:
            del self._watches[watch.fd]

    def timer_add(self, callback: Callable[[], None]) -> _Timer:
        return _Timer(callback)

    def timer_start(self, timer: _Timer, ms: int) -> None:
        timer.deadline = time.monotonic() + max(0, ms) / 1000.0
        timer.seq = next(self._seq)
        heapq.heappush(self._timers, (timer.deadline, timer.seq, timer))

    def timer_cancel(self, timer: _Timer) -> None:
        timer.deadline = None

    def timer_remove(self, timer: _Timer) -> None:
        timer.deadline = None

    def channel_event(self, event: ChannelEvent, info: ChannelEventInfo) -> None:
        self.events.append((event, info))
        del self.events[:-64]

    def call_soon(self, callback: Callable[[], None]) -> None:
        with self._soon_lock:
            if self._closed:
                return  # the loop is gone; nothing would ever run it
            self._soon.append(callback)
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

    # -- running ------------------------------------------------------------------

    def next_timer_delay(self) -> float | None:
        while self._timers:
            deadline, seq, timer = self._timers[0]
            if timer.deadline != deadline or timer.seq != seq:
                heapq.heappop(self._timers)  # cancelled or re-armed
                continue
            return max(0.0, deadline - time.monotonic())
        return None

    def run_once(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds (None: until something happens) and
        run every ready callback, due timer and posted call."""
        self.thread_id = threading.get_ident()
        delay = self.next_timer_delay()
        if delay is not None and (timeout is None or delay < timeout):
            timeout = delay
        if self._soon:  # (a racing call_soon writes the wake pipe)
            timeout = 0
        for key, mask in self._sel.select(timeout):
            w = key.data
            if w is None:
                self._drain_wake()
                continue
            if not w.active:
                continue
            self._guard(w.callback, w.fd, _READY[mask & 3])
        self._run_timers()
        self._run_soon()

    def _drain_wake(self) -> None:
        # Empty the pipe before clearing the flag: a call_soon racing with us
        # then either finds the flag set (its callback runs in this round's
        # _run_soon) or writes a fresh byte after we cleared it.
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._soon_lock:
            self._wake_pending = False

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers:
            deadline, seq, timer = self._timers[0]
            if timer.deadline != deadline or timer.seq != seq:
                heapq.heappop(self._timers)
                continue
            if deadline > now:
                break
            heapq.heappop(self._timers)
            timer.deadline = None
            self._guard(timer.callback)

    def _run_soon(self) -> None:
        if not self._soon:
            return  # (a racing call_soon writes the wake pipe: next round)
        with self._soon_lock:
            calls = list(self._soon)
            self._soon.clear()
        for cb in calls:
            self._guard(cb)

    def _guard(self, fn: Callable, *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: callback %r failed", self.name, fn)

    def run(self) -> None:
        """Run until :meth:`stop`."""
        self._stopped = False
        while not self._stopped:
            self.run_once(None)

    def stop(self) -> None:
        """Make :meth:`run` return.  Any thread."""
        def _stop() -> None:
            self._stopped = True
        self.call_soon(_stop)

    def close(self) -> None:
        with self._soon_lock:
            if self._closed:
                return
            self._closed = True
            self._soon.clear()
        for w in list(self._watches.values()):
            self.watch_remove(w)
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


class LoopThread:
    """An :class:`EventLoop` running on its own daemon thread."""

    def __init__(self, name: str = "spice-core") -> None:
        self.loop = EventLoop(name)
        self._thread = threading.Thread(target=self.loop.run, name=name, daemon=True)

    def start(self) -> LoopThread:
        self._thread.start()
        return self

    def call(self, fn: Callable[[], object], timeout: float = 10.0) -> object:
        """Run ``fn`` on the loop thread and return its result."""
        done = threading.Event()
        box: list = [None, None]

        def _run() -> None:
            try:
                box[0] = fn()
            except BaseException as exc:  # handed back to the caller
                box[1] = exc
            finally:
                done.set()
        self.loop.call_soon(_run)
        if not done.wait(timeout):
            raise TimeoutError("event loop did not answer")
        if box[1] is not None:
            raise box[1]
        return box[0]

    def stop(self) -> None:
        self.loop.stop()
        self._thread.join(5)
        self.loop.close()

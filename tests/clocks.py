"""Clocks and interrupt probes for device tests.

:class:`ManualClock` is a deterministic implementation of
``devices.bus.Clock``: time moves only when a test calls :meth:`advance`,
and timers fire in deadline order at their exact deadlines, on the calling
thread (tests that need host time use the machine's own ``vm.core.Core``).
:class:`RecordingIrq` is an ``IrqLine`` that remembers its level and counts
rising edges, so a device's interrupt output can be observed without a PIC.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ManualTimer:
    def __init__(self, clock: ManualClock, callback: Callable[[], None]) -> None:
        self._clock = clock
        self.callback = callback
        self.deadline: int | None = None

    def start_ns(self, deadline_ns: int) -> None:
        self.deadline = int(deadline_ns)

    def cancel(self) -> None:
        self.deadline = None


class ManualClock:
    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self._now = start_ns
        self._timers: list[ManualTimer] = []

    def now_ns(self) -> int:
        return self._now

    def new_timer(self, callback: Callable[[], None]) -> ManualTimer:
        t = ManualTimer(self, callback)
        self._timers.append(t)
        return t

    def next_deadline(self) -> int | None:
        pending = [t.deadline for t in self._timers if t.deadline is not None]
        return min(pending) if pending else None

    def advance(self, ns: int) -> None:
        """Move time forward by ``ns``, firing every timer that comes due,
        each at its own deadline (time never runs backwards: a deadline in
        the past fires at the current time)."""
        target = self._now + ns
        while True:
            due = [t for t in self._timers if t.deadline is not None and t.deadline <= target]
            if not due:
                break
            t = min(due, key=lambda x: x.deadline)
            self._now = max(self._now, t.deadline)
            t.deadline = None
            t.callback()
        self._now = target

    def advance_to(self, when_ns: int) -> None:
        self.advance(max(0, when_ns - self._now))


class RecordingIrq:
    """An IrqLine that records its level and counts rising edges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.level = False
        self.rises = 0

    def set_level(self, level: bool) -> None:
        with self._lock:
            if level and not self.level:
                self.rises += 1
            self.level = bool(level)

    def pulse(self) -> None:
        self.set_level(True)
        self.set_level(False)

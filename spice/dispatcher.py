"""The Red Dispatcher: requests from other threads to one red worker.

A queue plus a wake-up pipe the worker's loop watches.  Asynchronous
requests return at once; synchronous ones block the caller until the
worker has run them and hand back the result (or the exception).  Nothing
else crosses between threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SYNC_TIMEOUT_S = 60.0


class _Reply:
    __slots__ = ("event", "value", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Dispatcher:
    def __init__(self, name: str = "dispatcher") -> None:
        self.name = name
        self._queue: deque[tuple[Callable[..., Any], tuple, _Reply | None]] = deque()
        self._lock = threading.Lock()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)
        self._signalled = False
        self._writers = 0  # posts writing the wake-up byte now
        self.worker_thread: int | None = None
        self.closed = False

    def fileno(self) -> int:
        return self._rfd

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` for the worker and return."""
        self._put(fn, args, None)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the worker and wait for its result."""
        if threading.get_ident() == self.worker_thread:
            return fn(*args)  # already on the worker: no round trip
        reply = _Reply()
        self._put(fn, args, reply)
        if not reply.event.wait(SYNC_TIMEOUT_S):
            raise TimeoutError(f"{self.name}: the worker did not answer in {SYNC_TIMEOUT_S} s")
        if reply.error is not None:
            raise reply.error
        return reply.value

    def _put(self, fn: Callable[..., Any], args: tuple, reply: _Reply | None) -> None:
        with self._lock:
            if self.closed:
                if reply is not None:
                    reply.error = RuntimeError(f"{self.name} is closed")
                    reply.event.set()
                return
            self._queue.append((fn, args, reply))
            if self._signalled:
                return
            self._signalled = True
            self._writers += 1
        # The wake-up byte is written outside the lock: os.write releases the
        # GIL, the worker wakes at once and takes this lock in run_pending.
        # Written under it, the worker found the lock held, slept on it, and
        # then waited again for the GIL the poster had taken back (per frame
        # of the demo, one lock wait and two GIL waits).  The writer count
        # keeps close() from freeing the fd under a write in flight.
        try:
            os.write(self._wfd, b"\1")
        except BlockingIOError:
            pass
        finally:
            with self._lock:
                self._writers -= 1
                last = self.closed and not self._writers
            if last:
                self._close_fds()

    def run_pending(self) -> int:
        """Worker side: run everything queued so far; returns how many."""
        # Drain the pipe first, then take the queue and clear the flag in one
        # step: a post racing with us is either taken now or writes anew.
        try:
            os.read(self._rfd, 4096)  # one byte per signal, and one signal at a time
        except BlockingIOError:
            pass
        with self._lock:
            self._signalled = False
            items = list(self._queue)
            self._queue.clear()
        for fn, args, reply in items:
            try:
                value = fn(*args)
            except BaseException as exc:
                if reply is None:
                    log.exception("%s: %s failed", self.name, getattr(fn, "__name__", fn))
                    continue
                reply.error = exc
                reply.event.set()
                continue
            if reply is not None:
                reply.value = value
                reply.event.set()
        return len(items)

    def close(self) -> None:
        """Fail every waiting caller; later posts are dropped."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            items = list(self._queue)
            self._queue.clear()
            now = not self._writers  # else the last writer closes them
        if now:
            self._close_fds()
        for _fn, _args, reply in items:
            if reply is not None:
                reply.error = RuntimeError(f"{self.name} is closed")
                reply.event.set()

    def _close_fds(self) -> None:
        for fd in (self._rfd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass

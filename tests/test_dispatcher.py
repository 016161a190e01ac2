"""The red dispatcher: requests from other threads to one worker thread."""

from __future__ import annotations

import os
import select
import threading

import pytest

from spice.dispatcher import Dispatcher


class WorkerThread:
    """A loop as the red worker runs it: wait for the wake-up fd, run what
    was posted."""

    def __init__(self, d: Dispatcher) -> None:
        self.d = d
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.d.worker_thread = threading.get_ident()
        while not self.stop and not self.d.closed:
            try:
                ready, _, _ = select.select([self.d.fileno()], [], [], 0.05)
            except (OSError, ValueError):
                return  # closed under us
            if ready:
                self.d.run_pending()

    def join(self) -> None:
        self.stop = True
        self.thread.join(5)


def test_posts_run_on_the_worker_in_order_and_calls_return():
    d = Dispatcher("t")
    w = WorkerThread(d)
    seen: list[tuple[int, int]] = []
    for i in range(100):
        d.post(lambda i=i: seen.append((i, threading.get_ident())))
    assert d.call(lambda: 42) == 42
    assert [i for i, _ in seen] == list(range(100))
    assert {t for _, t in seen} == {w.thread.ident}
    with pytest.raises(ZeroDivisionError):
        d.call(lambda: 1 // 0)
    w.join()
    d.close()


def test_a_post_makes_the_fd_readable_once_until_the_worker_runs():
    d = Dispatcher("t")
    assert select.select([d.fileno()], [], [], 0)[0] == []
    ran: list[int] = []
    d.post(ran.append, 1)
    d.post(ran.append, 2)
    assert select.select([d.fileno()], [], [], 0)[0] == [d.fileno()]
    assert d.run_pending() == 2 and ran == [1, 2]
    assert select.select([d.fileno()], [], [], 0)[0] == []
    d.close()


def test_close_fails_waiting_callers_and_drops_later_posts():
    d = Dispatcher("t")  # no worker: the call waits until close
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            d.call(lambda: None)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=caller)
    t.start()
    assert select.select([d.fileno()], [], [], 5)[0]  # the call is queued
    fd = d.fileno()
    d.close()
    t.join(5)
    assert len(errors) == 1 and "closed" in str(errors[0])
    d.post(lambda: None)  # dropped, no error
    with pytest.raises(RuntimeError):
        d.call(lambda: None)
    with pytest.raises(OSError):
        os.fstat(fd)  # the pipe is gone


def _poster(d: Dispatcher, done: threading.Event, counts: list[int], k: int) -> None:
    while not done.is_set() and not d.closed:
        d.post(lambda: counts.__setitem__(k, counts[k] + 1))


def test_closing_while_threads_post_frees_the_pipe_under_no_write():
    # Posters write the wake-up byte outside the lock; close() must not free
    # the pipe under a write in flight (its fd number could already name a
    # file opened since).  As the worker does, the loop stops before close.
    for _ in range(20):
        d = Dispatcher("t")
        w = WorkerThread(d)
        done = threading.Event()
        counts = [0] * 4
        threads = [threading.Thread(target=_poster, args=(d, done, counts, k))
                   for k in range(4)]
        for t in threads:
            t.start()
        while not d.call(sum, counts):  # answered while the posters run
            pass
        w.join()
        d.close()
        done.set()
        for t in threads:
            t.join(5)
        assert not any(t.is_alive() for t in threads)
        r, wr = os.pipe()  # may take the old numbers: nothing may arrive in it
        try:
            os.set_blocking(r, False)
            with pytest.raises(BlockingIOError):
                os.read(r, 1)
        finally:
            os.close(r)
            os.close(wr)

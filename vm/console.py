"""Where COM1 goes: ``-serial stdio``, ``-serial file:PATH`` or ``-serial none``.

``stdio``: the guest's output is written to stdout as it comes; bytes typed
on stdin go to the UART (``UART16550.receive``) through a read watch on the
main loop.  When stdin is a terminal it is switched to character-at-a-time
input without echo, as QEMU's stdio backend does, and restored on close.
Ctrl-C still raises SIGINT (the terminal keeps ISIG), which the command
line turns into a clean stop.
"""

from __future__ import annotations

import logging
import os
import sys
import termios
import threading
from collections.abc import Callable
from typing import IO

from spice.interfaces import WatchEvent
from vm.core import Core, CoreWatch

log = logging.getLogger(__name__)


def parse_serial(spec: str) -> str:
    """Validate a ``-serial`` value; returns it.  ValueError (one sentence)."""
    if spec in ("stdio", "none") or (spec.startswith("file:") and len(spec) > 5):
        return spec
    raise ValueError(f"-serial {spec!r} is not supported (use stdio, file:PATH or none)")


class SerialBackend:
    """The host end of the serial line."""

    def __init__(self, spec: str, core: Core, stdin: IO[bytes] | None = None,
                 stdout: IO[bytes] | None = None) -> None:
        self.spec = parse_serial(spec)
        self._core = core
        self._file: IO[bytes] | None = None
        self._out_fd: int | None = None
        self._in_fd: int | None = None
        self._watch: CoreWatch | None = None
        self._saved_tty: list | None = None  # type: ignore[type-arg]
        self._receive: Callable[[bytes], None] | None = None
        if spec == "stdio":
            self._out_fd = (stdout or sys.stdout.buffer).fileno()
            self._in_fd = (stdin or sys.stdin.buffer).fileno()
        elif spec.startswith("file:"):
            try:
                self._file = open(spec[5:], "ab", buffering=0)  # noqa: SIM115 - kept open
            except OSError as exc:
                raise ValueError(f"cannot open serial output file {spec[5:]!r}: "
                                 f"{exc.strerror}") from None

    def output(self, data: bytes) -> None:
        """The guest's bytes (called on the vCPU thread)."""
        try:
            if self._out_fd is not None:
                view = memoryview(data)
                while view:
                    n = os.write(self._out_fd, view)
                    view = view[n:]
            elif self._file is not None:
                self._file.write(data)
        except OSError as exc:
            log.warning("serial output failed (%s); further output dropped", exc)
            self._out_fd = None
            self._file = None

    def attach(self, receive: Callable[[bytes], None]) -> None:
        """Start feeding host input to ``receive`` (stdio only)."""
        self._receive = receive
        if self._in_fd is None:
            return
        if os.isatty(self._in_fd):
            self._saved_tty = termios.tcgetattr(self._in_fd)
            mode = termios.tcgetattr(self._in_fd)
            mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
            mode[0] &= ~(termios.ICRNL | termios.IXON)
            mode[6][termios.VMIN] = 1
            mode[6][termios.VTIME] = 0
            termios.tcsetattr(self._in_fd, termios.TCSANOW, mode)
        try:
            self._watch = self._core.watch_add(self._in_fd, WatchEvent.READ, self._on_input)
        except PermissionError:
            # epoll refuses regular files (stdin redirected from a file):
            # read it on a thread instead; UART16550.receive is thread-safe.
            threading.Thread(target=self._read_file, args=(self._in_fd,), name="serial-stdin",
                             daemon=True).start()

    def _read_file(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data or self._receive is None:
                return
            self._receive(data)

    def _on_input(self, fd: int, events: WatchEvent) -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:  # end of input: stop watching, keep running
            if self._watch is not None:
                self._core.watch_remove(self._watch)
                self._watch = None
            return
        if self._receive is not None:
            self._receive(data)

    def close(self) -> None:
        if self._watch is not None:
            self._core.watch_remove(self._watch)
            self._watch = None
        if self._saved_tty is not None and self._in_fd is not None:
            termios.tcsetattr(self._in_fd, termios.TCSANOW, self._saved_tty)
            self._saved_tty = None
        if self._file is not None:
            self._file.close()
            self._file = None

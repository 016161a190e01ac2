"""Booting the demo desktop guest on spicevm for tests: the machine of
``spicevm run`` (qxl-vga, i8042, optionally VDIPort) with a SPICE server on
a free loopback port, COM1 captured line by line."""

from __future__ import annotations

import re
import threading
import time

from spice.options import SpiceOptions
from vm.board import Board, BoardConfig
from vm.cli import build_firmware
from vm.cpu import StopReason


class DemoVM:
    def __init__(self, *, vdiport: bool = True, cmdline: str = "") -> None:
        outputs = build_firmware(["demo"])
        config = BoardConfig(bios=outputs["bios"].read_bytes(),
                             kernel=outputs["demo"].read_bytes(), cmdline=cmdline,
                             no_reboot=True, serial="none", qxl=[{"vga": True}],
                             spice=SpiceOptions(port=0, addr="127.0.0.1",
                                                disable_ticketing=True,
                                                streaming_video="filter"),
                             vdiport=vdiport)
        self.board = Board(config)
        self.lines: list[str] = []
        self._buf = b""
        self._cond = threading.Condition()
        self.board.uart.set_output(self._serial)
        self.board.start()
        assert self.board.spice is not None
        self.port = self.board.spice.port
        self._thread = threading.Thread(target=self.board.wait, name="demo-vm", daemon=True)
        self._thread.start()

    def _serial(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                self.lines.append(line.decode("utf-8", "replace").rstrip("\r"))
            self._cond.notify_all()

    def expect(self, pattern: str, timeout: float = 20.0, start: int = 0) -> re.Match[str]:
        """The first serial line from index ``start`` on matching ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no serial line matching {pattern!r}; got "
                                       f"{[ln for ln in self.lines if ln.startswith('demo')]}")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def close(self) -> None:
        self.board.stop(StopReason.SHUTDOWN, "test over")
        self._thread.join(10)

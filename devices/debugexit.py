"""isa-debug-exit: a port that ends the machine with a chosen status.

A write of ``v`` (any width 1..4, at any port of the window) calls
``on_exit((v << 1) | 1)``: QEMU exits with that status, so a guest test
suite can report pass/fail through the exit code while 0 (a normal
shutdown) stays distinguishable.  Reads return 0.  QEMU's own default
window is 0x501/2; the common test set-up (and ours) is 0xf4/4.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from devices.bus import IOPortSpace

log = logging.getLogger(__name__)


class DebugExit:
    def __init__(self, ioports: IOPortSpace, on_exit: Callable[[int], None],
                 iobase: int = 0xF4, iosize: int = 4) -> None:
        self._on_exit = on_exit
        self.iobase = iobase
        self.iosize = iosize
        ioports.register(iobase, iosize, self, "isa-debug-exit")

    # The whole window is one register and QEMU passes the full access
    # value through, so there is no per-offset table here.
    def io_read(self, offset: int, size: int) -> int:
        return 0

    def io_write(self, offset: int, size: int, value: int) -> None:
        status = (value << 1) | 1
        log.info("guest requested exit: wrote %#x (size %d) -> status %d", value, size, status)
        self._on_exit(status)

    def reset(self) -> None:
        """Stateless: nothing to reset."""

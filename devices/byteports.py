"""A port table for byte-wide legacy registers.

The ISA chips of a PC (8259, 8254, 16550, MC146818, 8042) have 8-bit
registers.  A guest may still use ``inw``/``outw``/``inl``/``outl`` on
them; the chipset then performs one byte cycle per byte, lowest port first
(QEMU models this as ``impl.max_access_size = 1``).  :class:`BytePortTable`
does the same split so each device only ever sees byte accesses, declared
as a table ``offset -> (reader, writer)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

ByteReader = Callable[[], int]
ByteWriter = Callable[[int], None]


class BytePortTable:
    """``table`` maps a port offset to ``(reader, writer)``; either may be
    None (write-only / read-only register).  Offsets missing from the table
    read 0xFF and ignore writes, like an undecoded ISA port.

    A handler that raises is a device bug, not a guest bug; it is logged
    and the access completes (reads as 0xFF) so the vCPU thread never sees
    a Python exception from a port access.
    """

    def __init__(self, table: dict[int, tuple[ByteReader | None, ByteWriter | None]],
                 size: int, name: str) -> None:
        self.table = table
        self.size = size
        self.name = name

    def io_read(self, offset: int, size: int) -> int:
        value = 0
        for i in range(size):
            value |= self._read_byte(offset + i) << (8 * i)
        return value

    def io_write(self, offset: int, size: int, value: int) -> None:
        for i in range(size):
            self._write_byte(offset + i, (value >> (8 * i)) & 0xFF)

    def _read_byte(self, offset: int) -> int:
        entry = self.table.get(offset)
        if entry is None or entry[0] is None:
            log.debug("%s: read of undecoded offset %d", self.name, offset)
            return 0xFF
        try:
            return entry[0]() & 0xFF
        except Exception:
            log.exception("%s: read handler for offset %d failed", self.name, offset)
            return 0xFF

    def _write_byte(self, offset: int, value: int) -> None:
        entry = self.table.get(offset)
        if entry is None or entry[1] is None:
            log.debug("%s: write %#04x to undecoded offset %d ignored", self.name, value, offset)
            return
        try:
            entry[1](value)
        except Exception:
            log.exception("%s: write handler for offset %d failed", self.name, offset)

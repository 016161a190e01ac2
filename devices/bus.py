"""The contract between the machine (vm/) and the device models (devices/).

Devices never import vm/.  The board hands each device the few services it
needs, all declared here:

* :class:`IOPortSpace` -- the x86 I/O port space.  A device claims port ranges
  with a handler; the vCPU's ``in``/``out`` hook dispatches through it.  It is
  a plain Python object (no Unicorn), so tests drive devices through it exactly
  as a guest's port accesses would.
* :class:`MemoryMap` -- guest-physical memory.  Devices hand over numpy arrays
  (RAM-like regions: guest RAM, QXL BARs, ROMs) that the machine maps
  zero-copy, or register MMIO callbacks for register windows.  Moving a PCI
  BAR remaps the *same* array at the new address.
* :class:`IrqLine` -- one interrupt input (an ISA IRQ of the 8259 pair, or a
  PCI INTx pin after PIRQ routing).  ``set_level`` may be called from any
  thread.
* :class:`Clock` -- host time and one-shot timers (callbacks run on the
  machine's main event-loop thread).

Threads: port and MMIO handlers run on the vCPU thread and must be short.
Timer callbacks run on the main loop thread.  A device whose state is touched
from more than one thread protects it with its own lock, and never waits for
another thread while holding that lock (the SPICE worker may call back into
a device while the vCPU thread is blocked in a synchronous port write).
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# I/O ports


class PortHandler(Protocol):
    """A device's view of one claimed port range.

    ``offset`` is relative to the start of the range the handler was
    registered with; ``size`` is the access width in bytes (1, 2 or 4).
    """

    def io_read(self, offset: int, size: int) -> int: ...

    def io_write(self, offset: int, size: int, value: int) -> None: ...


@dataclass(frozen=True)
class PortRange:
    base: int
    size: int
    handler: PortHandler
    name: str

    @property
    def end(self) -> int:
        return self.base + self.size


_ALL_ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}


class IOPortSpace:
    """The 64 KiB x86 I/O port space.

    Unclaimed ports read as all-ones and ignore writes, as on a PC.  Ranges
    may not overlap; re-registering a range (a PCI I/O BAR moving) is done by
    ``unregister`` then ``register``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._starts: list[int] = []
        self._ranges: list[PortRange] = []
        self.unclaimed_log_limit = 32

    def register(self, base: int, size: int, handler: PortHandler, name: str) -> PortRange:
        if size <= 0 or base < 0 or base + size > 0x10000:
            raise ValueError(f"port range {base:#x}+{size:#x} for {name} is outside 0..0xffff")
        rng = PortRange(base, size, handler, name)
        with self._lock:
            i = bisect.bisect_right(self._starts, base)
            if i > 0 and self._ranges[i - 1].end > base:
                other = self._ranges[i - 1]
                raise ValueError(f"ports {base:#x}+{size:#x} ({name}) overlap {other.name}")
            if i < len(self._ranges) and self._ranges[i].base < rng.end:
                other = self._ranges[i]
                raise ValueError(f"ports {base:#x}+{size:#x} ({name}) overlap {other.name}")
            self._starts.insert(i, base)
            self._ranges.insert(i, rng)
        return rng

    def unregister(self, rng: PortRange) -> None:
        with self._lock:
            i = self._ranges.index(rng)
            del self._ranges[i]
            del self._starts[i]

    def find(self, port: int) -> PortRange | None:
        i = bisect.bisect_right(self._starts, port) - 1
        if i >= 0:
            rng = self._ranges[i]
            if port < rng.end:
                return rng
        return None

    def ranges(self) -> list[PortRange]:
        with self._lock:
            return list(self._ranges)

    def read(self, port: int, size: int) -> int:
        rng = self.find(port)
        if rng is None:
            self._unclaimed("read", port, size, None)
            return _ALL_ONES[size]
        return rng.handler.io_read(port - rng.base, size) & _ALL_ONES[size]

    def write(self, port: int, size: int, value: int) -> None:
        rng = self.find(port)
        if rng is None:
            self._unclaimed("write", port, size, value)
            return
        rng.handler.io_write(port - rng.base, size, value & _ALL_ONES[size])

    def _unclaimed(self, what: str, port: int, size: int, value: int | None) -> None:
        if self.unclaimed_log_limit > 0:
            self.unclaimed_log_limit -= 1
            extra = "" if value is None else f" value {value:#x}"
            log.debug("unclaimed port %s %#06x size %d%s", what, port, size, extra)


class PortTable:
    """A declared port map for one device: offset -> (reader, writer).

    Devices build one of these instead of if-chains::

        self.ports = PortTable({
            0: (self._read_data, self._write_data),
            1: (self._read_status, None),
        })

    and register ``self.ports`` with the :class:`IOPortSpace`.  Offsets not in
    the table read as all-ones and ignore writes.  ``reader(size) -> int``,
    ``writer(size, value) -> None``.
    """

    def __init__(
        self,
        table: dict[int, tuple[Callable[[int], int] | None, Callable[[int, int], None] | None]],
        name: str = "",
    ) -> None:
        self.table = table
        self.name = name

    def io_read(self, offset: int, size: int) -> int:
        entry = self.table.get(offset)
        if entry is None or entry[0] is None:
            return _ALL_ONES[size]
        return entry[0](size)

    def io_write(self, offset: int, size: int, value: int) -> None:
        entry = self.table.get(offset)
        if entry is None or entry[1] is None:
            return
        entry[1](size, value)


# --------------------------------------------------------------------------
# Memory


class MMIOHandler(Protocol):
    def mmio_read(self, offset: int, size: int) -> int: ...

    def mmio_write(self, offset: int, size: int, value: int) -> None: ...


class MemoryMap(Protocol):
    """Guest-physical address space, implemented by the machine.

    All addresses and sizes are multiples of 4 KiB.  ``array`` must be a
    C-contiguous ``np.uint8`` array that outlives its mapping; the machine maps
    it zero-copy (Unicorn ``mem_map_ptr``), so device writes into the array are
    seen by the guest at once and vice versa.
    """

    def map_ram(self, name: str, base: int, array: np.ndarray, readonly: bool = False) -> None:
        """Map ``array`` at ``base``.  ``name`` identifies the mapping."""

    def map_mmio(self, name: str, base: int, size: int, handler: MMIOHandler) -> None:
        """Map a register window whose accesses call ``handler``."""

    def unmap(self, name: str) -> None:
        """Remove a mapping made by ``map_ram`` or ``map_mmio``."""

    def is_mapped(self, name: str) -> bool: ...

    def ram_view(self, addr: int, size: int) -> np.ndarray:
        """A zero-copy uint8 view of guest memory [addr, addr+size) that lies
        inside one RAM-like mapping.  Raises ValueError otherwise (DMA from a
        device into unmapped space is a guest bug, not a host crash)."""


# --------------------------------------------------------------------------
# Interrupts


class IrqLine(Protocol):
    """One interrupt input.  Level semantics: ``set_level(True)`` asserts the
    line until ``set_level(False)``.  Edge-triggered consumers (the 8259 in
    edge mode) latch the rising edge; ``pulse()`` is a rising then falling
    edge.  Safe to call from any thread."""

    def set_level(self, level: bool) -> None: ...

    def pulse(self) -> None: ...


class NullIrq:
    """A line connected to nothing (a device whose pin is not routed)."""

    def set_level(self, level: bool) -> None:
        pass

    def pulse(self) -> None:
        pass


# --------------------------------------------------------------------------
# Time


class Timer(Protocol):
    def start_ns(self, deadline_ns: int) -> None:
        """Fire once when :meth:`Clock.now_ns` reaches ``deadline_ns``
        (re-arming replaces the previous deadline)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    def now_ns(self) -> int:
        """Monotonic host time in nanoseconds."""

    def new_timer(self, callback: Callable[[], None]) -> Timer:
        """A one-shot timer whose callback runs on the main loop thread."""

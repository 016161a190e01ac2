"""SPICE rings (spice/ipc_ring.h) living in guest-visible memory.

A ring is five u32 counters -- ``num_items, prod, notify_on_prod, cons,
notify_on_cons`` -- then the items.  Producer and consumer each only move
their own counter; an index is ``counter & (num_items - 1)``.  Empty is
``prod == cons``, full is ``prod - cons == num_items`` (u32 arithmetic).
The notify counters implement the doorbells: the consumer that wants to
sleep arms ``notify_on_prod = prod + 1`` and re-checks; the producer rings
(port write or interrupt) when its push makes ``prod == notify_on_prod``.
The same holds the other way round for a producer waiting for room.

``num_items`` is guest-writable, so every index is checked against the
real item count before it is used (QEMU does the same and calls a
mismatch a guest bug).
"""

from __future__ import annotations

import sys

import numpy as np

from devices.qxl.memslots import GuestBug

_M32 = 0xFFFFFFFF
NUM_ITEMS, PROD, NOTIFY_ON_PROD, CONS, NOTIFY_ON_CONS = range(5)


class Ring:
    """A ring at byte ``offset`` of ``mem`` (a uint8 array) whose items are
    ``item_size`` bytes, ``slots`` of them."""

    def __init__(self, mem: np.ndarray, offset: int, slots: int, item_size: int,
                 name: str) -> None:
        if offset % 4:
            raise ValueError("ring header must be 4-byte aligned")
        self.mem = mem
        self.offset = offset
        self.slots = slots
        self.item_size = item_size
        self.items_offset = offset + 20
        self.name = name
        # The counters are read and written one aligned 32-bit word at a time
        # (the guest changes them meanwhile).  A memoryview does that with far
        # less work per access than numpy's scalar indexing, and the worker
        # touches these counters several times per command; it reads the
        # host's byte order, so other hosts keep the explicit little-endian view.
        if sys.byteorder == "little":
            self._u32: memoryview | np.ndarray = memoryview(mem)[offset:offset + 20].cast("I")
        else:  # pragma: no cover - big-endian hosts
            self._u32 = mem[offset:offset + 20].view("<u4")

    def init(self) -> None:
        """SPICE_RING_INIT."""
        for field, value in enumerate((self.slots, 0, 1, 0, 0)):
            self._u32[field] = value

    # counters (each a single aligned 32-bit read or write)
    def get(self, field: int) -> int:
        return int(self._u32[field])

    def set(self, field: int, value: int) -> None:
        self._u32[field] = value & _M32

    # The methods below index the counters directly: the worker runs them
    # several times per command, and a call to get() per counter doubled
    # their cost.
    def is_empty(self) -> bool:
        u = self._u32
        return u[CONS] == u[PROD]

    def is_full(self) -> bool:
        u = self._u32
        return (u[PROD] - u[CONS]) & _M32 == u[NUM_ITEMS]

    def item_offset(self, counter: int) -> int:
        """Byte offset of the item at ``prod`` or ``cons`` (PROD/CONS)."""
        u = self._u32
        index = u[counter] & ((u[NUM_ITEMS] - 1) & _M32)
        if index >= self.slots:
            raise GuestBug(f"{self.name} ring index mismatch {index} >= {self.slots} "
                           f"(num_items {self.get(NUM_ITEMS)})")
        return self.items_offset + index * self.item_size

    def pop(self) -> bool:
        """SPICE_RING_POP; returns whether the producer asked to be told."""
        u = self._u32
        cons = (u[CONS] + 1) & _M32
        u[CONS] = cons
        return cons == u[NOTIFY_ON_CONS]

    def push(self) -> bool:
        """SPICE_RING_PUSH; returns whether the consumer asked to be told."""
        u = self._u32
        prod = (u[PROD] + 1) & _M32
        u[PROD] = prod
        return prod == u[NOTIFY_ON_PROD]

    def space(self) -> int:
        """Free item slots (u32 arithmetic, as the guest sees them)."""
        u = self._u32
        return (u[NUM_ITEMS] - u[PROD] + u[CONS]) & _M32

    def cons_wait(self) -> bool:
        """SPICE_RING_CONS_WAIT: True when empty (and the doorbell is armed)."""
        u = self._u32
        if u[CONS] == u[PROD]:
            u[NOTIFY_ON_PROD] = (u[PROD] + 1) & _M32
            return u[CONS] == u[PROD]
        return False

    def prod_wait(self) -> bool:
        """SPICE_RING_PROD_WAIT: True when full (and the doorbell is armed)."""
        if self.is_full():
            self.set(NOTIFY_ON_CONS, self.get(CONS) + 1)
            return self.is_full()
        return False

"""Memory slots: how a guest pointer (QXLPHYSICAL) becomes host memory.

A QXLPHYSICAL is ``slot id (8 bits) | generation (8 bits) | offset (48
bits)``.  The guest registers a slot with QXL_IO_MEMSLOT_ADD: a range
``[mem_start, mem_end)`` of guest-physical addresses that must lie inside
one of the device's memory BARs (RAM, VRAM or the 64-bit VRAM).  The slot
remembers *which backing array and where in it*, so moving the BAR later
does not change what the slot points at (as in QEMU, which keeps a memory
region and an offset).  An offset is relative to ``delta``: 0 for slots
the guest adds (offsets count from the slot start), the BAR0 address for
the compat slot SET_MODE creates (offsets are guest-physical addresses).

Every translation checks the *whole* object against the slot: slot id in
range, slot active, generation equal, ``delta <= offset`` and
``offset - delta + size <= slot size``.  That combines QEMU's
``qxl_phys2virt`` checks (including the size check added for
CVE-2022-4144) with spice-server's ``memslot_get_virt`` (which aborts the
process on a bad slot id or generation; here it is a guest bug).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.qxl.layout import NUM_MEMSLOTS

OFFSET_BITS = 48
OFFSET_MASK = (1 << OFFSET_BITS) - 1
SLOT_GENERATION = 0  # QEMU never bumps it; the ROM says 0


class GuestBug(Exception):
    """A malformed guest request.  Raised inside the device's parsing and
    validation code and turned into the device's guest-bug state at the top
    (never escapes a port write or an interface call)."""


def split(phys: int) -> tuple[int, int, int]:
    """(slot id, generation, offset) of a QXLPHYSICAL."""
    return (phys >> 56) & 0xFF, (phys >> 48) & 0xFF, phys & OFFSET_MASK


def make_phys(slot: int, offset: int, generation: int = SLOT_GENERATION) -> int:
    return (slot << 56) | (generation << 48) | (offset & OFFSET_MASK)


def add_offset(phys: int, n: int) -> int:
    """``phys + n`` without letting the offset carry into the generation."""
    if (phys & OFFSET_MASK) + n > OFFSET_MASK:
        raise GuestBug(f"address {phys:#x} + {n:#x} overflows the 48-bit offset")
    return phys + n


@dataclass(frozen=True, slots=True)
class MemSlot:
    array: np.ndarray  # the BAR's backing uint8 array
    start: int  # where the slot begins inside ``array``
    size: int  # mem_end - mem_start
    delta: int
    bar: int  # which BAR it was carved from (0, 1 or 4)
    mem_start: int
    mem_end: int


@dataclass(frozen=True, slots=True)
class BarWindow:
    """One memory BAR as MEMSLOT_ADD sees it: where the guest placed it
    (None = not mapped) and its backing array."""

    index: int
    address: int | None
    array: np.ndarray


class MemSlots:
    """The eight guest slots.  Reads of the slot table are lock-free (a
    slot is replaced as a whole, never edited), so the worker thread may
    translate while the vCPU thread adds or deletes slots."""

    def __init__(self) -> None:
        self._slots: list[MemSlot | None] = [None] * NUM_MEMSLOTS

    def reset(self) -> None:
        self._slots = [None] * NUM_MEMSLOTS

    def is_active(self, slot_id: int) -> bool:
        return 0 <= slot_id < NUM_MEMSLOTS and self._slots[slot_id] is not None

    def add(self, slot_id: int, mem_start: int, mem_end: int, delta: int,
            bars: list[BarWindow]) -> MemSlot:
        """Register a slot; raises GuestBug when QEMU's rules reject it."""
        if slot_id >= NUM_MEMSLOTS:
            raise GuestBug(f"memslot id {slot_id} >= {NUM_MEMSLOTS}")
        if mem_start > mem_end:
            raise GuestBug(f"memslot {slot_id}: start {mem_start:#x} > end {mem_end:#x}")
        for bar in bars:
            if bar.address is None:
                continue
            bar_end = bar.address + bar.array.nbytes
            # QEMU's test: the start may equal the BAR end (an empty slot).
            if bar.address <= mem_start <= bar_end and mem_end <= bar_end:
                slot = MemSlot(bar.array, mem_start - bar.address, mem_end - mem_start,
                               delta, bar.index, mem_start, mem_end)
                self._slots[slot_id] = slot
                return slot
        raise GuestBug(f"memslot {slot_id}: range {mem_start:#x}-{mem_end:#x} "
                       "is not inside a mapped RAM/VRAM BAR")

    def delete(self, slot_id: int) -> None:
        self._slots[slot_id] = None

    def backing_bytes(self) -> int:
        """How much device memory the active slots lie in.  Objects that do
        not overlap cannot hold more bytes than this between them, so a
        chunk chain that does is a guest reusing the same bytes."""
        sizes: dict[int, int] = {}
        for slot in self._slots:
            if slot is not None:  # BAR1 and BAR4 are views from the same start
                start = slot.array.ctypes.data
                sizes[start] = max(sizes.get(start, 0), slot.array.nbytes)
        return sum(sizes.values())

    def translate(self, phys: int, size: int) -> tuple[np.ndarray, int]:
        """(backing array, byte offset) of ``size`` bytes at ``phys``."""
        slot_id = (phys >> 56) & 0xFF  # split(phys), inline: three times per draw
        generation = (phys >> 48) & 0xFF
        offset = phys & OFFSET_MASK
        if slot_id >= NUM_MEMSLOTS:
            raise GuestBug(f"address {phys:#x}: slot {slot_id} >= {NUM_MEMSLOTS}")
        slot = self._slots[slot_id]
        if slot is None:
            raise GuestBug(f"address {phys:#x}: slot {slot_id} is not active")
        if generation != SLOT_GENERATION:
            raise GuestBug(f"address {phys:#x}: generation {generation} != "
                           f"{SLOT_GENERATION}")
        if offset < slot.delta:
            raise GuestBug(f"address {phys:#x}: offset < slot {slot_id} delta "
                           f"{slot.delta:#x}")
        offset -= slot.delta
        if size < 0 or offset + size > slot.size:
            raise GuestBug(f"address {phys:#x}: {size} bytes at offset {offset:#x} "
                           f"overrun slot {slot_id} (size {slot.size:#x}) by "
                           f"{offset + size - slot.size} bytes")
        return slot.array, slot.start + offset

    def available(self, phys: int) -> int:
        """How many bytes of the slot remain from ``phys`` (0 if invalid)."""
        try:
            array, start = self.translate(phys, 0)
        except GuestBug:
            return 0
        slot = self._slots[split(phys)[0]]
        assert slot is not None
        return slot.start + slot.size - start

    def view(self, phys: int, size: int) -> np.ndarray:
        """A zero-copy uint8 view of guest memory (for pixel data)."""
        array, start = self.translate(phys, size)
        return array[start:start + size]

    def copy(self, phys: int, size: int) -> np.ndarray:
        """A private copy of guest bytes (control data is parsed from copies
        so the guest cannot change it between check and use)."""
        return self.view(phys, size).copy()

    def read(self, phys: int, dtype: np.dtype) -> np.void:
        """One structure read once into host memory."""
        return self.copy(phys, dtype.itemsize).view(dtype)[0]

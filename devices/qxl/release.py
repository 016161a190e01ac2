"""Giving resources back to the guest: the release ring, batched as QEMU
does it.

Every guest resource starts with a QXLReleaseInfo, one u64 that holds the
guest's ``id`` on the way in and the ``next`` link on the way out.  A
released resource is chained into the list whose head sits in the release
ring's current producer slot: the first one becomes the head, later ones
are appended through the previous one's ``next``.  The list is pushed
(``prod++``, the new slot zeroed, DISPLAY raised if the guest armed
``notify_on_prod``) when 32 resources are collected, or on a flush
(FLUSH_RELEASE, the server's flush_resources, NOTIFY_OOM), but never while
the ring has no free slot and never in the middle of an OOM pass.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from devices.qxl.memslots import GuestBug
from devices.qxl.rings import PROD, Ring

FREE_BUNCH_SIZE = 32
_U64 = struct.Struct("<Q")  # a QXLReleaseInfo, read or written whole


class GuestRelease(NamedTuple):
    """``Command.release`` of a guest command: where its QXLReleaseInfo is,
    and the reset epoch it belongs to (a release that outlives a device
    reset is dropped, as QEMU's re-initialised RAM drops it).  Immutable;
    a tuple because one is built per command, and a frozen dataclass sets
    each field through object.__setattr__."""

    epoch: int
    array: np.ndarray
    offset: int


# GuestRelease((epoch, array, offset)) without the NamedTuple's Python-level
# __new__ (one call fewer per command)
guest_release = functools.partial(tuple.__new__, GuestRelease)


@dataclass(frozen=True, slots=True)
class HostRelease:
    """``Command.release`` of a command the device generated itself (VGA
    mode); releasing it only drops the host bitmap."""

    serial: int


class ReleaseBatcher:
    """State of the release list being built.  Not thread-safe: the device
    calls it under its lock."""

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.num_free_res = 0
        self.last: tuple[np.ndarray, int] | None = None
        self.oom_running = False

    def reset(self) -> None:
        self.num_free_res = 0
        self.last = None
        self.oom_running = False

    def _head_offset(self) -> int:
        return self.ring.item_offset(PROD)

    def release(self, info: GuestRelease) -> bool:
        """Chain one resource; returns whether DISPLAY should be raised."""
        mem = self.ring.mem
        head = self._head_offset()
        rid = _U64.unpack_from(info.array, info.offset)[0]
        if _U64.unpack_from(mem, head)[0] == 0 or self.last is None:
            _U64.pack_into(info.array, info.offset, 0)
            _U64.pack_into(mem, head, rid)
        else:
            arr, off = self.last
            _U64.pack_into(arr, off, rid)
            _U64.pack_into(info.array, info.offset, 0)
        self.last = (info.array, info.offset)
        self.num_free_res += 1
        return self.push(flush=False)

    def ring_full(self) -> bool:
        """QEMU keeps one slot free: the list being built lives there."""
        return self.ring.space() == 1

    def push(self, flush: bool) -> bool:
        """Publish the current list; returns whether DISPLAY should be raised."""
        # (QEMU tests the ring first; all three tests only return early, and
        # the batch test needs no guest memory, so it comes first here)
        if not flush and (self.oom_running or self.num_free_res < FREE_BUNCH_SIZE):
            return False
        if self.ring_full():
            return False
        notify = self.ring.push()
        try:
            head = self._head_offset()
        except GuestBug:
            self.num_free_res = 0
            self.last = None
            raise
        _U64.pack_into(self.ring.mem, head, 0)
        self.num_free_res = 0
        self.last = None
        return notify

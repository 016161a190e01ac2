"""Guest-physical memory on Unicorn: the ``devices.bus.MemoryMap`` the board
hands to devices.

RAM-like regions (guest RAM, ROMs, QXL BARs) are numpy arrays mapped with
``uc.mem_map_ptr``: the guest, the devices and the SPICE server all touch
the same bytes.  Moving a PCI BAR is ``unmap`` then ``map_ram`` of the same
array at the new address; Unicorn drops its TLB on every mapping change,
and doing so from an I/O hook in the middle of a translation block is safe
(the next access in the same block already sees the new map).

Unicorn facts this module relies on (Unicorn 2.1):

* ``mem_map_ptr`` needs 4 KiB-aligned addresses and sizes; the host buffer
  must stay alive while mapped, so every mapped array is referenced here.
* A guest access to an unmapped physical page reaches a
  ``UC_HOOK_MEM_*_UNMAPPED`` hook; the hook may map the page and return
  True to retry.  We map an "unassigned" MMIO region there that reads as
  all-ones and drops writes (a PC's master abort) and log the guest bug
  (the first few times).  The region spans the whole hole around the
  access (within its 4 GiB-aligned window), not one page: every mapping
  change makes Unicorn rebuild its whole map, so a guest probing memory
  page by page would otherwise cost time quadratic in the pages touched.
  A later real mapping over part of such a region replaces all of it.
  An instruction *fetch* from unmapped memory is not rescued: the CPU
  stops with a register dump.
* A write to a read-only mapping (the BIOS) reaches
  ``UC_HOOK_MEM_WRITE_PROT``.  Returning True from that hook does *not*
  drop the write: it lands in the array.  Real ROM ignores writes; here the
  write is logged once per region and the ROM image is restored at machine
  reset (:meth:`GuestMemory.restore_roms`).
* Mapping calls are not thread-safe against a running ``emu_start`` on
  another thread, so a mapping change requested off the vCPU thread while
  the CPU runs is handed to the vCPU thread (``run_on_vcpu``) and waited for.
* Guest stores invalidate translated code they overwrite; host writes into
  a mapped array (``ram_view``, device rings) do not.  Nothing needs them
  to: the BIOS copies the kernel in with ``in`` instructions and its own
  stores, and devices write only data.  A device that ever copies code
  into RAM (fw_cfg DMA, say) must use :meth:`GuestMemory.write`.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from unicorn import (
    UC_HOOK_MEM_READ_UNMAPPED,
    UC_HOOK_MEM_WRITE_PROT,
    UC_HOOK_MEM_WRITE_UNMAPPED,
    UC_MEM_WRITE_UNMAPPED,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
    Uc,
)

from devices.bus import MMIOHandler

log = logging.getLogger(__name__)

PAGE = 0x1000
_ALL_ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}
_UNASSIGNED_PREFIX = "unassigned@"
_UNASSIGNED_LOG_LIMIT = 16
_HOLE_WINDOW = 1 << 32  # an unassigned region never crosses a multiple of this


@dataclass
class Region:
    name: str
    base: int
    size: int
    array: np.ndarray | None = None  # RAM-like backing
    readonly: bool = False
    mmio: MMIOHandler | None = None
    pristine: bytes | None = None  # ROM image restored at reset

    @property
    def end(self) -> int:
        return self.base + self.size


class _Unassigned:
    """Reads of memory nobody decodes return all-ones; writes vanish."""

    def mmio_read(self, offset: int, size: int) -> int:
        return _ALL_ONES.get(size, 0xFFFFFFFF)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        pass


class GuestMemory:
    """Guest-physical address space (implements ``devices.bus.MemoryMap``).

    ``run_on_vcpu(fn)`` runs ``fn`` on the vCPU thread and returns its result
    (it runs ``fn`` directly when called on that thread or when the CPU is
    not running); the CPU provides it.
    """

    def __init__(self, uc: Uc, run_on_vcpu: Callable[[Callable[[], object]], object] | None = None
                 ) -> None:
        self._uc = uc
        self._run_on_vcpu = run_on_vcpu or (lambda fn: fn())
        self._lock = threading.Lock()
        self._regions: dict[str, Region] = {}
        self._sorted: list[Region] = []
        self._starts: list[int] = []
        self._unassigned_logged = 0
        self._rom_write_logged: set[str] = set()
        self._device_errors_logged: set[str] = set()
        self._unassigned = _Unassigned()
        uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED, self._on_unmapped)
        uc.hook_add(UC_HOOK_MEM_WRITE_PROT, self._on_write_prot)

    def set_vcpu_runner(self, run_on_vcpu: Callable[[Callable[[], object]], object]) -> None:
        self._run_on_vcpu = run_on_vcpu

    # ------------------------------------------------------------ MemoryMap
    def map_ram(self, name: str, base: int, array: np.ndarray, readonly: bool = False) -> None:
        if array.dtype != np.uint8 or array.ndim != 1 or not array.flags.c_contiguous:
            raise ValueError(f"{name}: backing must be a 1-D C-contiguous uint8 array")
        size = array.nbytes
        self._check_range(name, base, size)
        region = Region(name, base, size, array=array, readonly=readonly)
        self._run_on_vcpu(lambda: self._add(region))

    def map_rom(self, name: str, base: int, image: bytes | np.ndarray) -> np.ndarray:
        """Map a read-only copy of ``image`` (padded to whole pages) and
        remember the image so :meth:`restore_roms` can undo guest writes."""
        data = bytes(image)
        size = (len(data) + PAGE - 1) & ~(PAGE - 1)
        array = np.zeros(size, dtype=np.uint8)
        array[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        self._check_range(name, base, size)
        region = Region(name, base, size, array=array, readonly=True, pristine=array.tobytes())
        self._run_on_vcpu(lambda: self._add(region))
        return array

    def map_mmio(self, name: str, base: int, size: int, handler: MMIOHandler) -> None:
        self._check_range(name, base, size)
        region = Region(name, base, size, mmio=handler)
        self._run_on_vcpu(lambda: self._add(region))

    def unmap(self, name: str) -> None:
        self._run_on_vcpu(lambda: self._remove(name))

    def is_mapped(self, name: str) -> bool:
        return name in self._regions

    def ram_view(self, addr: int, size: int) -> np.ndarray:
        region = self.find(addr)
        if region is None or region.array is None or addr + size > region.end or size < 0:
            raise ValueError(f"guest memory {addr:#x}+{size:#x} is not inside one RAM region")
        off = addr - region.base
        return region.array[off : off + size]

    # -------------------------------------------------------------- queries
    def find(self, addr: int) -> Region | None:
        """The region containing guest-physical ``addr``, or None."""
        with self._lock:
            i = bisect.bisect_right(self._starts, addr) - 1
            if i >= 0 and addr < self._sorted[i].end:
                return self._sorted[i]
        return None

    def regions(self) -> list[Region]:
        with self._lock:
            return [r for r in self._sorted if not r.name.startswith(_UNASSIGNED_PREFIX)]

    def read(self, addr: int, size: int) -> bytes:
        """Read guest-physical memory (any mapping; MMIO reads have side
        effects, unassigned space reads as all-ones)."""
        out = bytearray()
        while size > 0:
            region = self.find(addr)
            chunk = size if region is None else min(size, region.end - addr)
            if region is None:
                nxt = self._next_start(addr)
                chunk = min(size, (nxt - addr) if nxt is not None else size)
                out += b"\xff" * chunk
            elif region.array is not None:
                off = addr - region.base
                out += region.array[off : off + chunk].tobytes()
            else:
                out += bytes(self._uc.mem_read(addr, chunk))
            addr += chunk
            size -= chunk
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        """Write guest-physical memory from the host, bypassing ROM
        protection and discarding writes to unassigned space.  Uses Unicorn
        for RAM so translated code covering the bytes is invalidated."""
        data = bytes(data)
        pos = 0
        while pos < len(data):
            region = self.find(addr + pos)
            if region is None:
                nxt = self._next_start(addr + pos)
                if nxt is None:
                    return
                pos = nxt - addr
                continue
            chunk = min(len(data) - pos, region.end - (addr + pos))
            piece = data[pos : pos + chunk]
            if region.array is not None and region.readonly:
                off = addr + pos - region.base
                region.array[off : off + chunk] = np.frombuffer(piece, dtype=np.uint8)
            else:
                self._uc.mem_write(addr + pos, piece)
            pos += chunk

    def poke(self, addr: int, data: bytes) -> None:
        """Write data (an interrupt frame, say) straight into the RAM array
        under ``addr``; falls back to :meth:`write` elsewhere.  Translated
        code covering the bytes is not invalidated: not for code."""
        region = self.find(addr)
        if (region is not None and region.array is not None and not region.readonly
                and addr + len(data) <= region.end):
            off = addr - region.base
            region.array[off : off + len(data)] = np.frombuffer(data, dtype=np.uint8)
        else:
            self.write(addr, data)

    def restore_roms(self) -> bool:
        """Undo guest writes to ROM images (called at machine reset);
        True if any byte changed."""
        with self._lock:
            roms = [r for r in self._sorted if r.pristine is not None]
        changed = False
        for r in roms:
            assert r.array is not None and r.pristine is not None
            pristine = np.frombuffer(r.pristine, dtype=np.uint8)
            if not np.array_equal(r.array, pristine):
                r.array[:] = pristine
                changed = True
        self._rom_write_logged.clear()
        return changed

    # ------------------------------------------------------------- internals
    @staticmethod
    def _check_range(name: str, base: int, size: int) -> None:
        if base % PAGE or size % PAGE or size <= 0:
            raise ValueError(f"{name}: {base:#x}+{size:#x} is not a whole number of 4 KiB pages")
        if base < 0 or base + size > 1 << 52:
            raise ValueError(f"{name}: {base:#x}+{size:#x} is outside the physical address space")

    def _next_start(self, addr: int) -> int | None:
        with self._lock:
            i = bisect.bisect_right(self._starts, addr)
            return self._starts[i] if i < len(self._starts) else None

    def _overlapping(self, base: int, end: int) -> list[Region]:
        with self._lock:
            return [r for r in self._sorted if r.base < end and base < r.end]

    def _add(self, region: Region) -> None:
        if region.name in self._regions:
            raise ValueError(f"memory region {region.name} is already mapped")
        for other in self._overlapping(region.base, region.end):
            if other.name.startswith(_UNASSIGNED_PREFIX):
                self._remove(other.name)
            else:
                raise ValueError(f"{region.name} at {region.base:#x}+{region.size:#x} overlaps "
                                 f"{other.name} at {other.base:#x}+{other.size:#x}")
        if region.array is not None:
            perms = (UC_PROT_READ | UC_PROT_EXEC) if region.readonly else UC_PROT_ALL
            self._uc.mem_map_ptr(region.base, region.size, perms, region.array.ctypes.data)
        else:
            handler = region.mmio
            assert handler is not None

            name = region.name

            def read(uc: Uc, off: int, size: int, _ud: object) -> int:
                try:
                    return handler.mmio_read(off, size)
                except Exception:
                    self._device_error(name, off)
                    return _ALL_ONES.get(size, 0xFFFFFFFF)

            def write(uc: Uc, off: int, size: int, value: int, _ud: object) -> None:
                try:
                    handler.mmio_write(off, size, value)
                except Exception:
                    self._device_error(name, off)

            self._uc.mmio_map(region.base, region.size, read, None, write, None)
        with self._lock:
            self._regions[region.name] = region
            i = bisect.bisect_right(self._starts, region.base)
            self._starts.insert(i, region.base)
            self._sorted.insert(i, region)
        log.debug("mapped %s at %#x+%#x", region.name, region.base, region.size)

    def _remove(self, name: str) -> None:
        with self._lock:
            region = self._regions.pop(name, None)
            if region is None:
                raise ValueError(f"memory region {name} is not mapped")
            i = self._sorted.index(region)
            del self._sorted[i]
            del self._starts[i]
        self._uc.mem_unmap(region.base, region.size)
        log.debug("unmapped %s from %#x", name, region.base)

    def _device_error(self, name: str, offset: int) -> None:
        if name not in self._device_errors_logged:
            self._device_errors_logged.add(name)
            log.exception("device failed on MMIO %s+%#x (further failures not logged)",
                          name, offset)

    # ---------------------------------------------------------------- hooks
    def _on_unmapped(self, uc: Uc, access: int, addr: int, size: int, value: int,
                     _ud: object) -> bool:
        page = addr & ~(PAGE - 1)
        if self._unassigned_logged < _UNASSIGNED_LOG_LIMIT:
            self._unassigned_logged += 1
            what = "write" if access == UC_MEM_WRITE_UNMAPPED else "read"
            log.warning("guest bug: %s of unassigned memory at %#x (size %d)", what, addr, size)
        # An access straddling two holes calls us once per hole.
        hole = self._hole(page)
        if hole is None:
            return False
        base, end = hole
        region = Region(f"{_UNASSIGNED_PREFIX}{base:#x}", base, end - base, mmio=self._unassigned)
        try:
            self._add(region)
        except ValueError:
            return False
        return True

    def _hole(self, page: int) -> tuple[int, int] | None:
        """The unmapped range around ``page``, within its 4 GiB window."""
        window = page & ~(_HOLE_WINDOW - 1)
        with self._lock:
            i = bisect.bisect_right(self._starts, page) - 1
            if i >= 0 and page < self._sorted[i].end:
                return None  # mapped after all: not ours to paper over
            base = max(window, self._sorted[i].end if i >= 0 else 0)
            nxt = self._starts[i + 1] if i + 1 < len(self._starts) else window + _HOLE_WINDOW
            return base, min(nxt, window + _HOLE_WINDOW)

    def _on_write_prot(self, uc: Uc, access: int, addr: int, size: int, value: int,
                       _ud: object) -> bool:
        region = self.find(addr)
        name = region.name if region is not None else "?"
        if name not in self._rom_write_logged:
            self._rom_write_logged.add(name)
            # Often the CPU itself setting a descriptor's accessed bit in a
            # GDT kept in ROM, which real ROM would silently drop.
            log.info("write to read-only %s at %#x; it stays until reset", name, addr)
        return True

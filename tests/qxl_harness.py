"""Test-side pieces for driving the QXL device as a guest and a server would.

* :class:`HarnessWorker` implements ``spice.interfaces.QXLWorker`` (the
  server side): it records every request and completes asynchronous ones
  by calling ``async_complete`` -- at once, or when the test says so.
* :class:`QXLMachine` is the guest's view: the real ``vm.memory.GuestMemory``
  and ``devices.bus.IOPortSpace`` with a ``devices.pci.PCIBus``; the
  device's BARs are placed with PCI configuration cycles through ports
  0xCF8/0xCFC, its INTx pin is routed through the PIIX3 to ISA IRQ 11, and
  every guest access goes through guest-physical memory and port writes.
  Helpers build QXL structures in device memory the way a driver does.
* :meth:`QXLMachine.pull` / :meth:`QXLMachine.pull_cursor` play the
  server's worker: pull commands through the QXLInterface and release them.
"""

from __future__ import annotations

import numpy as np
from unicorn import UC_ARCH_X86, UC_MODE_32, Uc

from devices.bus import IOPortSpace
from devices.pci import PCIBus
from devices.qxl import QXLDevice
from devices.qxl import layout as L
from devices.qxl.memslots import make_phys
from spice import qxl as Q
from tests.clocks import ManualClock, RecordingIrq
from vm.memory import GuestMemory

BAR0_BASE = 0xE0000000
BAR1_BASE = 0xD0000000
BAR2_BASE = 0xCFFFE000
BAR3_BASE = 0xC000
BAR4_BASE = 0xB0000000
IRQ_LINE = 11
MS = 1_000_000


class HarnessWorker:
    """A QXLWorker that records calls.  ``auto_complete`` completes each
    async request immediately (from inside the call, as a fast worker
    thread might); otherwise cookies wait in :attr:`pending`."""

    def __init__(self, device: QXLDevice | None = None, auto_complete: bool = True) -> None:
        self.device = device
        self.auto_complete = auto_complete
        self.calls: list[tuple[str, tuple]] = []
        self.pending: list[int] = []
        self.primary: Q.SurfaceCreate | None = None
        self.wakeups = 0

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))

    def _async(self, name: str, *args: object) -> None:
        self._record(name, *args)
        cookie = args[-1]
        assert isinstance(cookie, int)
        if self.auto_complete:
            assert self.device is not None
            self.device.async_complete(cookie)
        else:
            self.pending.append(cookie)

    def complete_all(self) -> None:
        assert self.device is not None
        pending, self.pending = self.pending, []
        for cookie in pending:
            self.device.async_complete(cookie)

    # QXLWorker
    def wakeup(self) -> None:
        self.wakeups += 1
        self._record("wakeup")

    def oom(self) -> None:
        self._record("oom")
        if self.device is not None:  # spice-server flushes what it released
            self.device.flush_resources()

    def start(self) -> None:
        self._record("start")

    def stop(self) -> None:
        self._record("stop")

    def update_area(self, surface_id: int, area: Q.Rect, clear_dirty: bool) -> list[Q.Rect]:
        self._record("update_area", surface_id, area, clear_dirty)
        return []

    def update_area_async(self, surface_id: int, area: Q.Rect, clear_dirty: bool,
                          cookie: int) -> None:
        self._async("update_area_async", surface_id, area, clear_dirty, cookie)

    def create_primary_surface(self, create: Q.SurfaceCreate) -> None:
        self.primary = create
        self._record("create_primary_surface", create)

    def create_primary_surface_async(self, create: Q.SurfaceCreate, cookie: int) -> None:
        self.primary = create
        self._async("create_primary_surface_async", create, cookie)

    def destroy_primary_surface(self) -> None:
        self.primary = None
        self._record("destroy_primary_surface")

    def destroy_primary_surface_async(self, cookie: int) -> None:
        self.primary = None
        self._async("destroy_primary_surface_async", cookie)

    def destroy_surface_wait(self, surface_id: int) -> None:
        self._record("destroy_surface_wait", surface_id)

    def destroy_surface_async(self, surface_id: int, cookie: int) -> None:
        self._async("destroy_surface_async", surface_id, cookie)

    def destroy_surfaces(self) -> None:
        self.primary = None
        self._record("destroy_surfaces")

    def destroy_surfaces_async(self, cookie: int) -> None:
        self.primary = None
        self._async("destroy_surfaces_async", cookie)

    def flush_surfaces_async(self, cookie: int) -> None:
        self._async("flush_surfaces_async", cookie)

    def monitors_config_async(self, config: Q.MonitorsConfig, cookie: int) -> None:
        self._async("monitors_config_async", config, cookie)

    def reset_cursor(self) -> None:
        self._record("reset_cursor")

    def reset_image_cache(self) -> None:
        self._record("reset_image_cache")

    def reset_memslots(self) -> None:
        self._record("reset_memslots")


class QXLMachine:
    """A QXL device on a PCI bus, with the guest's means to drive it."""

    def __init__(self, *, attach: bool = True, auto_complete: bool = True,
                 clock: ManualClock | None = None, **qxl_options: object) -> None:
        qxl_options.setdefault("ram_size_mb", 16)
        qxl_options.setdefault("vram_size_mb", 1)
        qxl_options.setdefault("vgamem_mb", 8)
        self.uc = Uc(UC_ARCH_X86, UC_MODE_32)
        self.memory = GuestMemory(self.uc)
        self.ioports = IOPortSpace()
        self.irqs = {n: RecordingIrq() for n in range(16)}
        self.bus = PCIBus(self.ioports, self.memory, lambda n: self.irqs[n])
        self.clock = clock or ManualClock()
        self.dev = QXLDevice(self.memory, self.ioports, self.clock, **qxl_options)
        self.devfn = self.bus.plug(self.dev)
        self.worker = HarnessWorker(self.dev, auto_complete)
        if attach:
            self.dev.attach_worker(self.worker)
        self.place_bars()
        self._alloc_next = 0
        self.released: list[Q.Command] = []

    # -- PCI configuration through ports 0xCF8/0xCFC
    def config_write(self, reg: int, size: int, value: int, devfn: int | None = None) -> None:
        devfn = self.devfn if devfn is None else devfn
        self.ioports.write(0xCF8, 4, 0x80000000 | devfn << 8 | (reg & 0xFC))
        self.ioports.write(0xCFC + (reg & 3), size, value)

    def config_read(self, reg: int, size: int, devfn: int | None = None) -> int:
        devfn = self.devfn if devfn is None else devfn
        self.ioports.write(0xCF8, 4, 0x80000000 | devfn << 8 | (reg & 0xFC))
        return self.ioports.read(0xCFC + (reg & 3), size)

    def place_bars(self) -> None:
        self.config_write(0x10, 4, BAR0_BASE)
        self.config_write(0x14, 4, BAR1_BASE)
        self.config_write(0x18, 4, BAR2_BASE)
        self.config_write(0x1C, 4, BAR3_BASE)
        if 4 in self.dev.bars:
            self.config_write(0x20, 4, BAR4_BASE & 0xFFFFFFFF)
            self.config_write(0x24, 4, BAR4_BASE >> 32)
        self.config_write(0x04, 2, 0x0007)  # I/O, memory, bus master
        pirq = ((self.devfn >> 3) - 1) & 3  # INTA of this slot (PIIX3 swizzle)
        self.config_write(0x60 + pirq, 1, IRQ_LINE, devfn=0x08)  # PIIX3 PIRQ route

    @property
    def irq(self) -> RecordingIrq:
        return self.irqs[IRQ_LINE]

    # -- ports and guest memory
    def out(self, port: int, value: int = 0, size: int = 1) -> None:
        self.ioports.write(BAR3_BASE + port, size, value)

    def inb(self, port: int) -> int:
        return self.ioports.read(BAR3_BASE + port, 1)

    def write(self, addr: int, data: bytes | np.ndarray) -> None:
        self.memory.write(addr, data if isinstance(data, bytes) else data.tobytes())

    def read(self, addr: int, size: int) -> bytes:
        return self.memory.read(addr, size)

    @property
    def ram_header(self) -> int:
        return BAR0_BASE + self.dev.ram_header_offset

    def ram_set(self, field: str, value: object) -> None:
        dt = L.RAM.fields[field][0]
        rec = np.zeros(1, dt)
        rec[0] = value
        self.write(self.ram_header + L.OFF[field], rec.tobytes())

    def ram_get(self, field: str) -> np.void:
        dt = L.RAM.fields[field][0]
        return np.frombuffer(self.read(self.ram_header + L.OFF[field], dt.itemsize), dt)[0]

    def rom_get(self, field: str) -> object:
        raw = np.frombuffer(self.read(BAR2_BASE, L.ROM.itemsize), L.ROM)[0]
        return raw[field]

    @property
    def int_pending(self) -> int:
        return int(self.ram_get("int_pending"))

    def set_mask(self, mask: int) -> None:
        self.ram_set("int_mask", mask)
        self.out(Q.QXL_IO_UPDATE_IRQ)

    def ack(self, bits: int = 0xFFFFFFFF) -> None:
        """What a driver's interrupt handler does: clear, then UPDATE_IRQ."""
        self.ram_set("int_pending", self.int_pending & ~bits)
        self.out(Q.QXL_IO_UPDATE_IRQ)

    # -- memory slots and allocation in the RAM BAR's page area
    def add_memslot(self, slot: int = 1, start: int = BAR0_BASE, end: int | None = None,
                    port: int = Q.QXL_IO_MEMSLOT_ADD) -> None:
        end = BAR0_BASE + self.dev.ram_size if end is None else end
        self.ram_set("mem_slot", (start, end))
        self.out(port, slot)

    def alloc(self, size: int, align: int = 8) -> int:
        """Guest-physical address of ``size`` free bytes in the page area."""
        base = BAR0_BASE + self.dev.surface0_area_size
        self._alloc_next = (self._alloc_next + align - 1) // align * align
        addr = base + self._alloc_next
        self._alloc_next += size
        assert addr + size <= self.ram_header, "test allocator ran out of device pages"
        return addr

    def free_all(self) -> None:
        """Let :meth:`alloc` hand out the page area from its start again
        (the caller knows the device holds nothing there any more)."""
        self._alloc_next = 0

    def phys(self, addr: int, slot: int = 1) -> int:
        """QXLPHYSICAL of a guest address in slot ``slot`` (based at BAR0)."""
        return make_phys(slot, addr - BAR0_BASE)

    def put(self, dtype: np.dtype, fields: dict | None = None, extra: bytes = b"",
            align: int = 8) -> int:
        """Write a zeroed ``dtype`` record with ``fields`` (and trailing bytes);
        returns its guest address.  A ``release_info`` field defaults to the
        record's own address, so released chains can be walked."""
        addr = self.alloc(dtype.itemsize + len(extra), align)
        values = dict(fields or {})
        if dtype.names and "release_info" in dtype.names:
            values.setdefault("release_info", addr)
        self.write(addr, record(dtype, values).tobytes() + extra)
        return addr

    def put_bytes(self, data: bytes, align: int = 8) -> int:
        addr = self.alloc(len(data), align)
        self.write(addr, data)
        return addr

    def chunk(self, data: bytes, next_addr: int = 0) -> int:
        """A QXLDataChunk holding ``data``; returns its address."""
        nxt = self.phys(next_addr) if next_addr else 0
        return self.put(L.DATA_CHUNK, {"data_size": len(data), "next_chunk": nxt}, data)

    def chunk_chain(self, pieces: list[bytes]) -> int:
        nxt = 0
        for piece in reversed(pieces):
            nxt = self.chunk(piece, nxt)
        return nxt

    # -- rings, driver side
    def _ring(self, name: str) -> tuple[int, int]:
        base = self.ram_header + L.OFF[name]
        return base, (L.COMMAND.itemsize if name != "release_ring" else 8)

    def ring_counters(self, name: str) -> tuple[int, ...]:
        base, _ = self._ring(name)
        return tuple(int(v) for v in np.frombuffer(self.read(base, 20), "<u4"))

    def push(self, ring: str, addr_or_phys: int, ctype: int, notify: bool = True,
             raw_phys: bool = False) -> bool:
        """SPICE_RING_PUSH of a QXLCommand, ringing the doorbell like a driver."""
        base, item = self._ring(ring)
        num, prod, notify_on_prod, cons, _ = self.ring_counters(ring)
        assert (prod - cons) & 0xFFFFFFFF < num, "ring full"
        data = addr_or_phys if raw_phys else self.phys(addr_or_phys)
        cmd = np.zeros(1, L.COMMAND)
        cmd["data"], cmd["type"] = data, ctype
        self.write(base + 20 + (prod & (num - 1)) * item, cmd.tobytes())
        prod = (prod + 1) & 0xFFFFFFFF
        self.write(base + 4, np.uint32(prod).tobytes())
        rang = prod == notify_on_prod
        if rang and notify:
            self.out(Q.QXL_IO_NOTIFY_CMD if ring == "cmd_ring" else Q.QXL_IO_NOTIFY_CURSOR)
        return rang

    def pop_release(self) -> list[int]:
        """Pop one release-ring entry and walk its chain; [] when empty."""
        base, _ = self._ring("release_ring")
        num, prod, _, cons, _ = self.ring_counters("release_ring")
        if prod == cons:
            return []
        head = int(np.frombuffer(self.read(base + 20 + (cons & (num - 1)) * 8, 8), "<u8")[0])
        self.write(base + 12, np.uint32((cons + 1) & 0xFFFFFFFF).tobytes())
        ids = []
        while head:
            ids.append(head)
            head = int(np.frombuffer(self.read(head, 8), "<u8")[0])
        return ids

    # -- surfaces
    def create_primary(self, width: int = 640, height: int = 480, stride: int | None = None,
                       fmt: int = Q.SPICE_SURFACE_FMT_32_xRGB, mem: int | None = None,
                       port: int = Q.QXL_IO_CREATE_PRIMARY, value: int = 0) -> None:
        stride = -width * 4 if stride is None else stride
        mem = self.phys(BAR0_BASE) if mem is None else mem
        self.ram_set("create_surface", (width, height, stride, fmt, 0, 1, 0, 0, mem))
        self.out(port, value)

    def native(self, width: int = 640, height: int = 480) -> None:
        """The usual driver start: unmask everything, slot 1 over BAR0, primary."""
        self.set_mask(0x3F)
        self.add_memslot(1)
        self.create_primary(width, height)

    # -- the server's worker
    def pull(self, release: bool = True) -> list[Q.Command]:
        out = []
        while (cmd := self.dev.get_command()) is not None:
            out.append(cmd)
            if release:
                self.dev.release_resource(cmd.release)
                self.released.append(cmd)
        return out

    def pull_cursor(self, release: bool = True) -> list[Q.Command]:
        out = []
        while (cmd := self.dev.get_cursor_command()) is not None:
            out.append(cmd)
            if release:
                self.dev.release_resource(cmd.release)
        return out

    def refresh(self, ms: int = 30) -> None:
        """Let the VGA refresh timer run for ``ms`` milliseconds."""
        self.clock.advance(ms * MS)


# -- structure builders a driver would use ------------------------------------

def rect(top: int, left: int, bottom: int, right: int) -> tuple[int, int, int, int]:
    return (top, left, bottom, right)


def record(dtype: np.dtype, fields: dict | None = None) -> np.ndarray:
    """A zeroed one-element structured array; ``fields`` may name nested
    fields with dots (``"brush.color"``)."""
    rec = np.zeros(1, dtype)
    for name, value in (fields or {}).items():
        target = rec
        *path, last = name.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    return rec


def drawable_bytes(head: dict, union: np.ndarray | None = None,
                   compat: bool = False) -> bytes:
    dtype_head = L.COMPAT_DRAWABLE_HEAD if compat else L.DRAWABLE_HEAD
    size = L.COMPAT_DRAWABLE_SIZE if compat else L.DRAWABLE_SIZE
    fields = dict(head)
    if not compat:
        fields.setdefault("surfaces_dest", (-1, -1, -1))
    h = record(dtype_head, fields)
    raw = bytearray(size)
    raw[:dtype_head.itemsize] = h.tobytes()
    if union is not None:
        ub = union.tobytes()
        raw[dtype_head.itemsize:dtype_head.itemsize + len(ub)] = ub
    return bytes(raw)


def put_drawable(m: QXLMachine, dtype: int, union: np.ndarray | None = None,
                 compat: bool = False, **head: object) -> int:
    """A QXLDrawable (or QXLCompatDrawable) of draw type ``dtype``."""
    head.setdefault("type", dtype)
    head.setdefault("effect", Q.QXL_EFFECT_OPAQUE)
    head.setdefault("bbox", rect(0, 0, 10, 10))
    addr = m.alloc(L.COMPAT_DRAWABLE_SIZE if compat else L.DRAWABLE_SIZE)
    head.setdefault("release_info", addr)
    m.write(addr, drawable_bytes(head, union, compat))
    return addr


def put_bitmap_image(m: QXLMachine, pixels: bytes, width: int, height: int, stride: int,
                     fmt: int = Q.SPICE_BITMAP_FMT_32BIT, flags: int = Q.QXL_BITMAP_DIRECT,
                     palette: int = 0, image_id: int = 0x1234_0000_0000,
                     chunks: list[bytes] | None = None) -> int:
    """A QXLImage of type BITMAP; ``chunks`` makes the data a chunk chain."""
    if chunks is not None:
        data = m.phys(m.chunk_chain(chunks))
        flags &= ~Q.QXL_BITMAP_DIRECT
    else:
        data = m.phys(m.put_bytes(pixels))
    img = np.zeros(1, L.IMAGE)
    img["descriptor"] = (image_id, Q.SPICE_IMAGE_TYPE_BITMAP, 0, width, height)
    img["bitmap"] = (fmt, flags, width, height, stride, m.phys(palette) if palette else 0, data)
    return m.put_bytes(img.tobytes())

"""The QXL paravirtual GPU (PCI 1b36:0100) with QEMU 7.2's semantics.

This module holds the device's identity, its BARs, all of its register
state and the transitions between its modes; the I/O port handlers live in
:mod:`devices.qxl.io` and the interface the SPICE server pulls from in
:mod:`devices.qxl.interface`.

BARs (sizes are QEMU's defaults, all powers of two):

====  ======================  =====================================================
BAR   what                    contents
====  ======================  =====================================================
0     RAM, 64 MiB             [0, vgamem) VGA/VBE framebuffer and primary surface,
                              then ``num_pages`` driver pages, QXLRam in the last
                              8 KiB
1     VRAM, 64 MiB            off-screen surfaces (the first part of BAR4's memory)
2     ROM, 8 KiB, read-only   QXLRom then the mode list
3     I/O, 32 ports           QXL_IO_*, byte writes only, reads return 0xff
4     64-bit VRAM             only when ``vram64_size_mb`` exceeds ``vram_size_mb``
====  ======================  =====================================================

Modes: VGA (legacy text and Bochs VBE, shown through host-generated draw
commands), COMPAT (the qxl-1 SET_MODE path), NATIVE (the driver created a
primary surface) and UNDEFINED (no primary).

Locks: ``_lock`` guards rings, releases, the async state, the guest-bug
flag and the VGA update queue (the worker thread takes it in every
interface call); ``_mode_lock`` serialises mode transitions and primary
surface creation between the vCPU thread and the VGA refresh timer.  No
lock is held while the worker is called synchronously, except
``_mode_lock``, which the worker never takes.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

import numpy as np

from devices.bus import Clock, IOPortSpace, MemoryMap
from devices.hostmem import guest_memory
from devices.pci import Bar, BarKind, PCIDevice
from devices.qxl import layout as L
from devices.qxl.interface import QXLInterfaceMixin
from devices.qxl.io import QXLIOBar, QXLPortsMixin, VGAPortGuard
from devices.qxl.layout import QXLMode
from devices.qxl.memslots import BarWindow, GuestBug, MemSlots, make_phys
from devices.qxl.parse import CommandParser, validate_surface
from devices.qxl.release import ReleaseBatcher
from devices.qxl.rings import Ring
from devices.qxl.vga import VGA
from devices.qxl.vgadisplay import VGADisplay
from spice import qxl as Q
from spice.interfaces import QXLWorker

log = logging.getLogger(__name__)

MiB = 1 << 20
VENDOR_REDHAT = 0x1B36
DEVICE_QXL = 0x0100
SUBSYSTEM_VENDOR = 0x1AF4  # QEMU's default subsystem ids
SUBSYSTEM_ID = 0x1100
CLASS_VGA = 0x030000
CLASS_DISPLAY_OTHER = 0x038000

VGA_REFRESH_MS = 30
GUEST_BUG_LOG_BURST = 20  # messages per window before suppression
GUEST_BUG_LOG_WINDOW_S = 10.0


def _pow2ceil(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class _NullWorker:
    """What the device talks to before a SPICE server attaches: nothing is
    displayed, synchronous requests do nothing, asynchronous ones complete
    at once (so a driver waiting for IO_CMD is not stranded)."""

    def __init__(self, device: QXLDevice) -> None:
        self._device = device

    def __getattr__(self, name: str):
        if name.endswith("_async"):
            return lambda *args: self._device.async_complete(args[-1])
        if name == "update_area":
            return lambda *args: []
        return lambda *args: None


class QXLDevice(QXLPortsMixin, QXLInterfaceMixin, PCIDevice):
    """``qxl-vga`` (``vga=True``, the primary display, VGA compatible) or
    ``qxl`` (secondary).  Sizes and options use QEMU's property names."""

    def __init__(self, memory: MemoryMap, ioports: IOPortSpace, clock: Clock, *,
                 vga: bool = True, revision: int = 5, ram_size_mb: int = 64,
                 vram_size_mb: int = 64, vram64_size_mb: int = 0, vgamem_mb: int = 16,
                 surfaces: int = 1024, guestdebug: int = 0, max_outputs: int = 0) -> None:
        if revision not in range(1, 6):
            raise ValueError(f"invalid revision {revision} for the qxl device (1..5)")
        for name, value in (("ram_size_mb", ram_size_mb), ("vram_size_mb", vram_size_mb),
                            ("vram64_size_mb", vram64_size_mb), ("vgamem_mb", vgamem_mb),
                            ("guestdebug", guestdebug), ("max_outputs", max_outputs)):
            if value < 0:
                raise ValueError(f"{name} must not be negative (got {value})")
        if not 0 <= surfaces < 1 << 31:
            raise ValueError(f"surfaces must be between 1 and 2^31-1 (got {surfaces})")
        if max_outputs > 0xFFFF:
            raise ValueError(f"max_outputs must fit in 16 bits (got {max_outputs})")
        super().__init__("qxl-vga" if vga else "qxl", VENDOR_REDHAT, DEVICE_QXL,
                         CLASS_VGA if vga else CLASS_DISPLAY_OTHER, revision=revision,
                         subsystem_vendor_id=SUBSYSTEM_VENDOR, subsystem_id=SUBSYSTEM_ID,
                         interrupt_pin=1)
        self.memory = memory
        self.ioports = ioports
        self.clock = clock
        self.have_vga = vga
        self.revision = revision
        self.guestdebug = guestdebug
        self.max_outputs = max_outputs
        self.n_surfaces = surfaces or 1024

        # -- sizes (QEMU's qxl_init_ramsize)
        vgamem_mb = min(max(vgamem_mb, 8), 256)
        self.vgamem_size = _pow2ceil(vgamem_mb * MiB)
        ram_size = max(ram_size_mb * MiB, 2 * vgamem_mb * MiB)
        vram32_size = max(vram_size_mb * MiB, 4096)
        vram_size = max(vram64_size_mb * MiB, vram32_size)
        if revision == 1:
            vram32_size = vram_size = 4096
        self.ram_size = _pow2ceil(ram_size)
        self.vram32_size = _pow2ceil(vram32_size)
        self.vram_size = _pow2ceil(vram_size)

        # -- backing memory
        self.ram = guest_memory(self.ram_size)
        self.vram = guest_memory(self.vram_size)
        self.rom_mem = guest_memory(L.ROM_SIZE)
        self.surface0_area_size = (self.vgamem_size + L.PAGE_SIZE - 1) // L.PAGE_SIZE * L.PAGE_SIZE
        self.ram_header_offset = self.ram_size - L.RAM_HEADER_SIZE
        self.num_pages = (self.ram_size - L.RAM_HEADER_SIZE - self.surface0_area_size) \
            // L.PAGE_SIZE
        self.modes = L.offered_modes(self.vgamem_size)
        self._rom = self.rom_mem[:L.ROM.itemsize].view(L.ROM)
        self._init_rom()
        self._shadow_rom = self._rom.copy()
        self._ramh = self.ram[self.ram_header_offset:self.ram_header_offset + L.RAM.itemsize]
        self._ram_u32 = self._ramh[:12].view("<u4")  # magic, int_pending, int_mask
        base = self.ram_header_offset
        self.cmd_ring = Ring(self.ram, base + L.OFF["cmd_ring"], L.COMMAND_RING_SIZE,
                             L.COMMAND.itemsize, "command")
        self.cursor_ring = Ring(self.ram, base + L.OFF["cursor_ring"], L.CURSOR_RING_SIZE,
                                L.COMMAND.itemsize, "cursor")
        self.release_ring = Ring(self.ram, base + L.OFF["release_ring"], L.RELEASE_RING_SIZE,
                                 8, "release")

        # -- BARs
        self.io_bar = QXLIOBar(self)
        self._ports = self._port_table()
        io_size = {1: 8, 2: 16}.get(revision, 32)
        self.add_bar(0, Bar(BarKind.MEM32, self.ram_size, array=self.ram))
        self.add_bar(1, Bar(BarKind.MEM32, self.vram32_size, array=self.vram[:self.vram32_size]))
        self.add_bar(2, Bar(BarKind.MEM32, L.ROM_SIZE, array=self.rom_mem, readonly=True))
        self.add_bar(3, Bar(BarKind.IO, io_size, io=self.io_bar))
        if self.vram_size > self.vram32_size:
            self.add_bar(4, Bar(BarKind.MEM64, self.vram_size, array=self.vram,
                                prefetchable=True))

        # -- register state (everything a reset puts back lives here)
        self._lock = threading.RLock()
        self._mode_lock = threading.RLock()
        self._irq_lock = threading.Lock()
        self.slots = MemSlots()
        self.parser = CommandParser(self.slots, self.n_surfaces)
        self.releases = ReleaseBatcher(self.release_ring)
        self.mode = QXLMode.UNDEFINED
        self.cmdflags = 0
        self.guest_bug = False
        self.current_async: int | None = None
        self._cookies: dict[int, int] = {}
        self._next_cookie = 1
        self._epoch = 0  # bumped by every hard reset
        self.guest_monitors_config = 0
        self._worker: QXLWorker | None = None
        self._null_worker = _NullWorker(self)
        self._bug_log_times: collections.deque[float] = collections.deque()
        self._bug_log_suppressed = 0

        # -- VGA compatibility (qxl-vga only)
        self.vga: VGA | None = None
        self._vga_display = VGADisplay()
        self._vga_updates: collections.deque[Q.Command] = collections.deque()
        self._vga_epoch = 0
        self._host_primary: tuple[int, int] | None = None
        self._host_buffer: np.ndarray | None = None
        self._timer = clock.new_timer(self._refresh)
        if vga:
            self.vga = VGA(self.ram, self.vgamem_size, clock)
            guard = VGAPortGuard(self)
            ioports.register(0x3B0, 0x30, guard.wrap(self.vga.ports), "qxl-vga.vga")
            ioports.register(0x1CE, 3, self.vga.vbe_ports, "qxl-vga.vbe")
            memory.map_ram("qxl-vga.lowmem", VGA.LOWMEM_BASE, self.vga.lowmem)
        self._hard_reset()

    # ------------------------------------------------------------------
    # ROM / RAM contents

    def _init_rom(self) -> None:
        self.rom_mem[:] = 0
        r = self._rom
        r["magic"] = Q.QXL_ROM_MAGIC
        r["id"] = 0
        r["log_level"] = self.guestdebug
        r["modes_offset"] = L.ROM.itemsize
        r["slot_gen_bits"] = L.MEMSLOT_GENERATION_BITS
        r["slot_id_bits"] = L.MEMSLOT_SLOT_BITS
        r["slots_start"] = 1
        r["slots_end"] = L.NUM_MEMSLOTS - 1
        r["n_surfaces"] = self.n_surfaces
        r["draw_area_offset"] = 0
        r["surface0_area_size"] = self.surface0_area_size
        r["pages_offset"] = self.surface0_area_size
        r["num_pages"] = self.num_pages
        r["ram_header_offset"] = self.ram_header_offset
        modes_at = L.ROM.itemsize
        self.rom_mem[modes_at:modes_at + 4].view("<u4")[0] = len(self.modes)
        table = self.modes.view(np.uint8)
        self.rom_mem[modes_at + 4:modes_at + 4 + table.size] = table

    def _init_ram(self) -> None:
        u32 = self._ram_u32
        u32[0] = Q.QXL_RAM_MAGIC
        u32[1] = 0
        u32[2] = 0
        self._ramh[L.OFF["update_surface"]:L.OFF["update_surface"] + 4] = 0
        self._ramh[L.OFF["monitors_config"]:L.OFF["monitors_config"] + 8] = 0
        for ring in (self.cmd_ring, self.cursor_ring, self.release_ring):
            ring.init()
        self.ram[self.release_ring.items_offset:self.release_ring.items_offset + 8] = 0

    def ram_field(self, name: str) -> np.void:
        """A private copy of one QXLRam field (read once, then validated)."""
        off = L.OFF[name]
        dt = L.RAM.fields[name][0]
        raw = self._ramh[off:off + dt.itemsize].copy()
        if dt.subdtype is not None:  # an array field (log_buf)
            return raw.view(dt.base).reshape(dt.shape)
        return raw.view(dt)[0]

    # ------------------------------------------------------------------
    # interrupts and guest bugs

    def _send_events(self, events: int) -> None:
        with self._irq_lock:
            pending = int(self._ram_u32[1])
            if pending & events == events:
                return
            self._ram_u32[1] = pending | events
            self.set_irq(bool((pending | events) & int(self._ram_u32[2])))

    def _update_irq(self) -> None:
        with self._irq_lock:
            self.set_irq(bool(int(self._ram_u32[1]) & int(self._ram_u32[2])))

    def _guest_bug(self, message: str) -> None:
        """Enter the guest-bug state: ERROR raised, the command ring no longer
        consumed and every port but RESET ignored, until a reset."""
        self._send_events(Q.QXL_INTERRUPT_ERROR)
        with self._lock:
            self.guest_bug = True
        now = time.monotonic()
        times = self._bug_log_times
        while times and now - times[0] > GUEST_BUG_LOG_WINDOW_S:
            times.popleft()
        if len(times) < GUEST_BUG_LOG_BURST:
            times.append(now)
            extra = (f" ({self._bug_log_suppressed} earlier messages suppressed)"
                     if self._bug_log_suppressed else "")
            self._bug_log_suppressed = 0
            log.warning("%s: guest bug: %s%s", self.name, message, extra)
        else:
            self._bug_log_suppressed += 1

    def _internal_error(self, where: str) -> None:
        """A device bug met while serving the guest: logged with its
        traceback, and the device parks itself in the guest-bug state so the
        VM keeps running."""
        log.exception("%s: internal error in %s", self.name, where)
        self._guest_bug(f"internal error in {where} (see the traceback above)")

    @property
    def worker(self) -> QXLWorker:
        return self._worker if self._worker is not None else self._null_worker  # type: ignore

    # ------------------------------------------------------------------
    # reset

    def reset(self) -> None:
        """Machine reset: the PCI header and the VGA registers return to their
        power-on values, then the device does a hard reset."""
        super().reset()
        if self.vga is not None:
            self.vga.reset()
        with self._mode_lock:
            self._hard_reset()

    def _hard_reset(self) -> None:
        """QEMU's qxl_hard_reset (the RESET port and machine reset)."""
        with self._lock:
            self._epoch += 1
            self._drop_vga_updates()
        w = self.worker
        # QEMU stops the display around a hard reset; restarting it makes the
        # server report the client state again (a CLIENT interrupt)
        w.stop()
        w.reset_cursor()
        w.reset_image_cache()
        self.mode = QXLMode.UNDEFINED
        w.destroy_surfaces()
        self._host_primary = None
        w.reset_memslots()
        self.slots.reset()
        with self._lock:
            self._shadow_rom["update_id"] = 0
            self._rom[:] = self._shadow_rom
            self._init_ram()
            self.releases.reset()
            self.guest_monitors_config = 0
        self._update_irq()
        self._soft_reset()
        w.start()

    def _soft_reset(self) -> None:
        with self._lock:
            self.guest_bug = False
            self.current_async = None
            self._cookies.clear()
        if self.have_vga:
            self._enter_vga_mode()
        else:
            self.mode = QXLMode.UNDEFINED

    # ------------------------------------------------------------------
    # modes and the primary surface

    def _enter_vga_mode(self) -> None:
        if self.mode == QXLMode.VGA:
            return
        with self._lock:
            self._drop_vga_updates()
        self.cmdflags = 0
        self.mode = QXLMode.VGA
        # The host primary is created by the refresh tick, on the main loop:
        # the port write that got us here does not wait for the worker.
        if self._worker is not None:
            self._timer.start_ns(self.clock.now_ns())

    def _exit_vga_mode(self) -> None:
        if self.mode != QXLMode.VGA:
            return
        with self._lock:
            self._drop_vga_updates()
        self._destroy_primary(None)

    def _drop_vga_updates(self) -> None:
        self._vga_epoch += 1
        self._vga_updates.clear()

    def _destroy_primary(self, cookie: int | None) -> bool:
        """QEMU's qxl_destroy_primary; False if there was nothing to destroy."""
        if self.mode == QXLMode.UNDEFINED:
            return False
        was_vga = self.mode == QXLMode.VGA
        self.mode = QXLMode.UNDEFINED
        w = self.worker
        if not was_vga:
            if cookie is None:
                w.destroy_primary_surface()
            else:
                w.destroy_primary_surface_async(cookie)
        elif self._host_primary is not None:
            w.destroy_primary_surface()
        self._host_primary = None
        w.reset_cursor()
        return True

    def _create_guest_primary(self, sc: np.void, cookie: int | None) -> None:
        """QEMU's qxl_create_guest_primary plus spice-server's checks of the
        surface, in QEMU's order."""
        width, height, stride = int(sc["width"]), int(sc["height"]), int(sc["stride"])
        fmt = int(sc["format"])
        if stride == -(1 << 31) or abs(stride) * height > self.vgamem_size:
            self._guest_bug(f"primary of stride {stride} x height {height} is larger than "
                            f"the {self.vgamem_size} byte framebuffer")
            return
        if self.mode == QXLMode.NATIVE:
            self._guest_bug("CREATE_PRIMARY while a native primary exists")
        self._exit_vga_mode()
        if stride % 4:
            self._guest_bug(f"primary surface stride {stride} is not a multiple of 4")
            return
        try:
            size = validate_surface(width, height, stride, fmt, "primary surface")
            data = self.slots.view(int(sc["mem"]), size)
        except GuestBug as bug:
            self._guest_bug(str(bug))
            return
        self.mode = QXLMode.NATIVE
        self.cmdflags = 0
        create = Q.SurfaceCreate(width, height, stride, fmt, int(sc["position"]), 1,
                                 int(sc["flags"]), int(sc["type"]), data)
        if cookie is None:
            self.worker.create_primary_surface(create)
        else:
            self.worker.create_primary_surface_async(create, cookie)

    def _set_mode(self, modenr: int) -> None:
        """QXL_IO_SET_MODE (the qxl-1 path): reset, slot 0 over BAR0 with
        guest-physical offsets, a bottom-up 32-bit primary from the table."""
        if modenr >= len(self.modes):
            self._guest_bug(f"SET_MODE: mode {modenr} out of range (0..{len(self.modes) - 1})")
            return
        bar0 = self.bars[0].address
        if bar0 is None:
            self._guest_bug("SET_MODE while the RAM BAR is not mapped")
            return
        mode = self.modes[modenr]
        self._hard_reset()
        self.slots.add(0, bar0, bar0 + self.ram_size, bar0, self._bar_windows())
        xres, yres = int(mode["x_res"]), int(mode["y_res"])
        sc = np.zeros(1, L.SURFACE_CREATE)[0]
        sc["width"], sc["height"], sc["stride"] = xres, yres, -xres * 4
        sc["format"] = Q.SPICE_SURFACE_FMT_32_xRGB
        sc["mouse_mode"] = 1
        sc["mem"] = make_phys(0, bar0 + int(self._shadow_rom["draw_area_offset"][0]))
        self._create_guest_primary(sc, None)
        self.mode = QXLMode.COMPAT
        self.cmdflags = Q.QXL_COMMAND_FLAG_COMPAT
        if int(mode["bits"]) == 16:
            self.cmdflags |= Q.QXL_COMMAND_FLAG_COMPAT_16BPP
        self._shadow_rom["mode"] = modenr
        self._rom["mode"] = modenr

    def _bar_windows(self) -> list[BarWindow]:
        windows = [BarWindow(0, self.bars[0].address, self.ram),
                   BarWindow(1, self.bars[1].address, self.vram[:self.vram32_size])]
        if 4 in self.bars:
            windows.append(BarWindow(4, self.bars[4].address, self.vram))
        return windows

    # ------------------------------------------------------------------
    # VGA mode display: the refresh timer turns the legacy framebuffer into
    # host draw commands the worker pulls (as QEMU's spice-display does)

    def _refresh(self) -> None:
        """The refresh timer: runs every 30 ms while in VGA mode (entering VGA
        mode or attaching a worker starts it)."""
        try:
            self._refresh_vga()
        except Exception:
            log.exception("%s: VGA refresh failed", self.name)
        if self.mode == QXLMode.VGA:
            self._timer.start_ns(self.clock.now_ns() + VGA_REFRESH_MS * 1_000_000)

    def _refresh_vga(self) -> None:
        worker = self._worker
        if self.vga is None or worker is None or self.mode != QXLMode.VGA:
            return
        frame = self.vga.render()
        with self._mode_lock:
            if self.mode != QXLMode.VGA:
                return
            size = (frame.shape[1], frame.shape[0])
            if self._host_primary != size:
                with self._lock:
                    self._drop_vga_updates()
                if self._host_primary is not None:
                    worker.destroy_primary_surface()
                width, height = size
                self._host_buffer = np.zeros(width * height * 4, np.uint8)
                worker.create_primary_surface(Q.SurfaceCreate(
                    width, height, -width * 4, Q.SPICE_SURFACE_FMT_32_xRGB, 0, 1, 0,
                    Q.QXL_SURF_TYPE_PRIMARY, self._host_buffer))
                self._host_primary = size
                self._vga_display.resize(width, height)
            epoch = self._vga_epoch
        with self._lock:
            if self._vga_updates:
                return  # as QEMU: new updates only once the last batch is taken
        commands = self._vga_display.diff(frame)
        if not commands:
            return
        with self._lock:
            if epoch != self._vga_epoch:
                return
            self._vga_updates.extend(commands)
        worker.wakeup()

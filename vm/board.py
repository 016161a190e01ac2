"""The PC: RAM, BIOS, the ISA platform devices, the PCI bus, and the wiring.

Memory map (as QEMU's ``pc`` machine):

====================  =========================================================
0 - 0x9FFFF           RAM
0xA0000 - 0xBFFFF     VGA window: left to the display device
0xC0000 - 0xDFFFF     RAM (option ROM space on a real PC)
0xE0000 - 0xFFFFF     BIOS (the upper 128 KiB of the ROM image), read-only
1 MiB - below_4g      RAM
PCI hole              BARs placed by the firmware
0xFFFE0000 - 4 GiB    BIOS, read-only
4 GiB -               RAM beyond below_4g, if any
====================  =========================================================

RAM is one numpy array; each RAM range above is a view of it at the same
offset, so RAM at physical address A is ``ram[A]`` below 4 GiB.  RAM below
4 GiB is all of it when it is smaller than 3.5 GiB, else 3 GiB with the rest
above 4 GiB (QEMU's split for ``pc``, hw/i386/pc_piix.c).

Devices: 8259 pair (0x20/0xA0, ELCR 0x4D0), 8254 PIT (0x40, IRQ0), COM1
16550 (0x3F8, IRQ4), CMOS/RTC (0x70, IRQ8), fw_cfg (0x510), isa-debug-exit
(0xF4/4), i8042 (0x60/0x64, IRQ1/IRQ12; its reset line resets the
machine), PCI (i440FX at 00.0, PIIX3 at 01.0, display devices from 02.0).
Machine reset (triple fault, i8042 pulse) resets every device, restores
the ROM image and re-enters the BIOS at the reset vector.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from devices.bus import IOPortSpace
from devices.debugexit import DebugExit
from devices.fw_cfg import E820_RAM, FwCfg
from devices.hostmem import guest_memory
from devices.i8042 import I8042
from devices.pci import PCIBus, PCIDevice
from devices.pic import PICPair
from devices.pit import PIT
from devices.rtc import CMOS
from devices.uart import UART16550
from vm.console import SerialBackend
from vm.core import Core
from vm.cpu import CPU, CPUStop, StopReason

log = logging.getLogger(__name__)

MiB = 1 << 20
GiB = 1 << 30
BIOS_SIZE = 128 * 1024
LOW_RAM_SPLIT_THRESHOLD = 0xE0000000  # QEMU: RAM this large is split ...
LOW_RAM_WHEN_SPLIT = 0xC0000000       # ... with this much below 4 GiB
VGA_WINDOW = (0xA0000, 0xC0000)
BIOS_ISA_BASE = 0xE0000
COM1 = (0x3F8, 4)
DEBUG_EXIT = (0xF4, 4)
GIL_SWITCH_INTERVAL = 0.0005  # seconds; see Board.__init__
_CLOSE_TIMEOUT = 5.0  # seconds close() waits for a running vCPU to stop


def ram_split(ram_size: int) -> tuple[int, int]:
    """(bytes below 4 GiB, bytes above 4 GiB) for ``ram_size`` bytes of RAM."""
    if ram_size >= LOW_RAM_SPLIT_THRESHOLD:
        return LOW_RAM_WHEN_SPLIT, ram_size - LOW_RAM_WHEN_SPLIT
    return ram_size, 0


@dataclass
class BoardConfig:
    """What the machine is made of.  ``qxl`` lists the keyword arguments of
    each QXL device (``devices.qxl.options.parse_device_options``)."""

    ram_size: int = 128 * MiB
    bios: bytes = b""
    kernel: bytes | None = None
    cmdline: str = ""
    initrd: bytes | None = None
    no_reboot: bool = False
    serial: str = "none"
    qxl: list[dict[str, Any]] = field(default_factory=list)
    spice: Any = None  # spice.options.SpiceOptions, or None for no SPICE server
    vv_file: str | None = None  # where to write the remote-viewer file (default: a temp file)
    display: str = "none"  # "sdl": a local window (vm.display_sdl)
    vdiport: bool = False  # the legacy agent device (PCI 1b36:0105), its stream to SPICE


class Board:
    """A PC built from :class:`BoardConfig`.  Nothing runs until :meth:`run`
    (or ``cpu.start()`` plus ``core.run()``)."""

    def __init__(self, config: BoardConfig, core: Core | None = None) -> None:
        if len(config.bios) != BIOS_SIZE:
            raise ValueError(f"the BIOS image must be {BIOS_SIZE} bytes, not {len(config.bios)}")
        if config.ram_size < 2 * MiB or config.ram_size % MiB:
            raise ValueError("RAM must be a whole number of MiB, at least 2 MiB")
        # The vCPU's I/O hooks need the GIL; with Python's default 5 ms switch
        # interval a busy main or worker thread would stall each port access
        # by up to 5 ms.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self.config = config
        self._own_core = core is None
        self.core = core or Core()
        try:
            self._build(config)
        except BaseException:
            self._release_partial()
            raise

    def _build(self, config: BoardConfig) -> None:
        self.ioports = IOPortSpace()
        self.cpu = CPU(self.ioports, no_reboot=config.no_reboot)
        self.memory = self.cpu.memory
        self.below_4g, self.above_4g = ram_split(config.ram_size)
        self.ram = guest_memory(config.ram_size)
        self._map_ram()
        self.bios = self.memory.map_rom("bios", 0x100000000 - BIOS_SIZE, config.bios)
        self.memory.map_rom("bios-isa", BIOS_ISA_BASE, config.bios)

        self.pic = PICPair(self.ioports, self.cpu.kick)
        self.cpu.interrupt_controller = self.pic
        self.pit = PIT(self.ioports, self.core, self.pic.irq(0))
        self.serial = SerialBackend(config.serial, self.core)
        output = None if config.serial == "none" else self.serial.output
        self.uart = UART16550(self.ioports, self.core, self.pic.irq(COM1[1]), base=COM1[0],
                              output=output)
        self.cmos = CMOS(self.ioports, self.core, self.pic.irq(8), config.ram_size,
                         below_4g=self.below_4g)
        self.fw_cfg = FwCfg(self.ioports)
        self._configure_fw_cfg()
        self.debug_exit = DebugExit(self.ioports, self._on_debug_exit, *DEBUG_EXIT)
        self.i8042 = I8042(self.ioports, self.pic.irq(1), self.pic.irq(12),
                           self.cpu.request_reset)
        self.pci = PCIBus(self.ioports, self.memory, isa_irqs=self.pic.irq,
                          on_reset=self.cpu.request_reset)
        self.resettable: list[Any] = [self.pic, self.pit, self.uart, self.cmos, self.fw_cfg,
                                      self.i8042]
        self.display_devices: list[PCIDevice] = []
        for options in config.qxl:
            self.add_qxl(**options)
        self.vdiport: PCIDevice | None = None
        if config.vdiport:
            from devices.vdiport import VDIPortDevice

            self.vdiport = VDIPortDevice(self.core)
            self.add_pci_device(self.vdiport)
        self.spice = None
        self.display: Any = None  # the local window, opened by start()
        self.vv_path: str | None = None
        self._vv_temporary = False
        self._closed = False
        if config.spice is not None:
            self._create_spice(config.spice)

        self.cpu.reset_handler = self._reset_devices
        self.cpu.on_stop = self._on_cpu_stop
        self.cpu.reset_state()

    # ----------------------------------------------------------- extension
    def add_pci_device(self, dev: PCIDevice, slot: int | None = None) -> int:
        """Plug ``dev`` into the PCI bus (first free slot from 2 by default);
        it is reset with the machine.  Returns its devfn."""
        devfn = self.pci.plug(dev, slot)
        return devfn

    def add_qxl(self, **options: Any) -> PCIDevice:
        """Create and plug a QXL device (``vga=True`` for qxl-vga)."""
        from devices.qxl.device import QXLDevice

        dev = QXLDevice(self.memory, self.ioports, self.core, **options)
        self.add_pci_device(dev)
        self.display_devices.append(dev)
        return dev

    # ------------------------------------------------------------- running
    def start(self) -> None:
        """Connect the serial line, start the SPICE server (writing the
        remote-viewer file) and the vCPU thread.  If any of it fails the
        host side is released (:meth:`close`) before the error propagates."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        self.serial.attach(self.uart.receive)
        if self.spice is not None:
            self.spice.start()
            path = self.config.vv_file
            if path is None:  # ours to delete at close: it holds the password
                fd, path = tempfile.mkstemp(prefix="spicevm-", suffix=".vv")
                os.close(fd)
                self._vv_temporary = True
            self.vv_path = self.spice.write_vv_file(path)
        if self.config.display == "sdl":
            from vm.display_sdl import open_sdl_display

            self.display = open_sdl_display(self)
        self.cpu.start()

    def wait(self) -> CPUStop:
        """Run the main loop on this thread until the CPU stops; tidy up and
        say why it stopped."""
        try:
            while self.cpu.join(0) is None:
                self.core.run(timeout=1.0)
            stop = self.cpu.join()
            assert stop is not None
            return stop
        finally:
            self.close()

    def run(self) -> CPUStop:
        """:meth:`start` then :meth:`wait`."""
        self.start()
        return self.wait()

    def stop(self, reason: StopReason = StopReason.SHUTDOWN, message: str = "") -> None:
        """Stop the machine (any thread, or a signal handler)."""
        self.cpu.request_stop(reason, message=message)
        self.core.call_soon(lambda: None)  # wake the loop so run() notices

    def close(self) -> None:
        """Release the host side (terminal, window, SPICE, files); idempotent.
        A vCPU still running is stopped first: nothing of the machine may
        keep running against a closed event loop."""
        if self._closed:
            return
        self._closed = True
        if self.cpu.running:
            self.cpu.request_stop(StopReason.SHUTDOWN, message="the machine was closed")
            if self.cpu.join(_CLOSE_TIMEOUT) is None:
                log.warning("the vCPU did not stop within %.0f s of closing the machine",
                            _CLOSE_TIMEOUT)
        self.serial.close()
        if self.display is not None:
            self.display.close()
            self.display = None
        if self.spice is not None:
            self.spice.close()
            self.spice = None
        if self._vv_temporary and self.vv_path:
            try:
                os.unlink(self.vv_path)
            except OSError:
                pass
        if self._own_core:
            self.core.close()

    # ------------------------------------------------------------ internals
    def _release_partial(self) -> None:
        """Undo a constructor that failed part way: the loop's fds, an open
        serial file and a SPICE server would otherwise stay open."""
        for part in (getattr(self, "spice", None), getattr(self, "serial", None)):
            if part is not None:
                part.close()
        if self._own_core:
            self.core.close()

    def _map_ram(self) -> None:
        ram, low = self.ram, self.below_4g
        self.memory.map_ram("ram-low", 0, ram[: VGA_WINDOW[0]])
        self.memory.map_ram("ram-c0000", VGA_WINDOW[1], ram[VGA_WINDOW[1] : BIOS_ISA_BASE])
        if low > 0x100000:
            self.memory.map_ram("ram-high", 0x100000, ram[0x100000:low])
        if self.above_4g:
            self.memory.map_ram("ram-above-4g", 1 << 32, ram[low:])

    def _configure_fw_cfg(self) -> None:
        cfg = self.config
        self.fw_cfg.set_ram_size(cfg.ram_size)
        self.fw_cfg.set_cpus(1)
        e820 = [(0, self.below_4g, E820_RAM)]
        if self.above_4g:
            e820.append((1 << 32, self.above_4g, E820_RAM))
        self.fw_cfg.set_e820(e820)
        if cfg.kernel is not None:
            self.fw_cfg.set_kernel(cfg.kernel, cfg.cmdline.encode(), cfg.initrd)

    def _create_spice(self, options: Any) -> None:
        from spice.server import SpiceServer

        generated = options.password is None and not options.disable_ticketing
        if generated:
            options.password = secrets.token_urlsafe(12)
        self.spice = SpiceServer(self.core, options)
        for dev in self.display_devices:
            self.spice.add_qxl(dev)
        self.spice.add_kbd(self.i8042)
        self.spice.add_mouse(self.i8042)
        # PS/2 LED bits (scroll 1, num 2, caps 4) are SPICE's modifier bits.
        self.i8042.on_leds = self.spice.kbd_leds
        if self.vdiport is not None:
            self.spice.add_char_device(self.vdiport)

    def _reset_devices(self) -> None:
        for dev in self.resettable:
            dev.reset()
        self.pci.reset()

    def _on_debug_exit(self, status: int) -> None:
        self.cpu.request_stop(StopReason.EXIT, status)

    def _on_cpu_stop(self, stop: CPUStop) -> None:
        self.core.call_soon(self.core.stop)

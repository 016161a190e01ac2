"""PCI: configuration mechanism #1, BARs, INTx routing, i440FX + PIIX3.

A :class:`PCIDevice` declares its identity and BARs; the :class:`PCIBus`
owns configuration space access (ports 0xCF8/0xCFC), BAR sizing and
placement, and routes each device's INTx pin through the PIIX3 PIRQ
registers to an ISA interrupt line.  When firmware or a guest moves a BAR
the same backing numpy array (or port handler) is mapped at the new place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from devices.bus import IOPortSpace, IrqLine, MemoryMap, MMIOHandler, PortHandler, PortRange

log = logging.getLogger(__name__)

# Configuration-space offsets and bits used here.
PCI_VENDOR_ID = 0x00
PCI_DEVICE_ID = 0x02
PCI_COMMAND = 0x04
PCI_STATUS = 0x06
PCI_REVISION_ID = 0x08
PCI_CLASS_PROG = 0x09
PCI_HEADER_TYPE = 0x0E
PCI_BAR0 = 0x10
PCI_SUBSYSTEM_VENDOR_ID = 0x2C
PCI_SUBSYSTEM_ID = 0x2E
PCI_ROM_ADDRESS = 0x30
PCI_INTERRUPT_LINE = 0x3C
PCI_INTERRUPT_PIN = 0x3D

CMD_IO = 1 << 0
CMD_MEMORY = 1 << 1
CMD_MASTER = 1 << 2
CMD_INTX_DISABLE = 1 << 10
STATUS_INTERRUPT = 1 << 3

BAR_IO = 0x1
BAR_MEM_64 = 0x4
BAR_PREFETCH = 0x8
ROM_ENABLE = 0x1

# Where a memory BAR may end.  QEMU's pci_bar_address leaves a 32-bit BAR
# whose last byte would be 0xffffffff unmapped (so sizing one with decoding
# on maps nothing); 64-bit BARs are bounded by what the host maps (48 bits).
MEM32_LIMIT = 0xFFFFFFFF
MEM64_LIMIT = 1 << 48


class BarKind(Enum):
    IO = "io"
    MEM32 = "mem32"
    MEM64 = "mem64"


@dataclass
class Bar:
    """One base address register.

    Exactly one backing is given: ``array`` (RAM-like memory, mapped
    zero-copy; ``readonly`` for ROMs), ``mmio`` (register callbacks), or
    ``io`` (a port handler, for I/O BARs).  ``size`` is a power of two.
    ``on_map`` is told the new guest address (or None when unmapped).
    """

    kind: BarKind
    size: int
    array: np.ndarray | None = None
    readonly: bool = False
    mmio: MMIOHandler | None = None
    io: PortHandler | None = None
    prefetchable: bool = False
    on_map: Callable[[int | None], None] | None = None
    address: int | None = field(default=None, init=False)  # where it is mapped now

    def __post_init__(self) -> None:
        if self.size & (self.size - 1) or self.size == 0:
            raise ValueError(f"BAR size {self.size:#x} is not a power of two")
        if self.kind is BarKind.IO:
            if self.io is None or self.size < 4:
                raise ValueError("an I/O BAR needs a port handler and at least 4 ports")
        else:
            if (self.array is None) == (self.mmio is None) or self.size < 0x1000:
                raise ValueError("a memory BAR needs exactly one of array/mmio and >= 4 KiB")
            if self.array is not None and self.array.nbytes != self.size:
                raise ValueError("BAR array size differs from the BAR size")


class PCIDevice:
    """Base class for a PCI function.  Subclasses set identity in __init__
    (via the constructor arguments), add BARs with :meth:`add_bar`, and raise
    their interrupt with :meth:`set_irq`.

    ``config`` is the 256-byte configuration space; ``wmask`` marks the bits a
    guest may write.  Device-specific registers can be handled by overriding
    :meth:`config_write` (call super first).
    """

    def __init__(
        self,
        name: str,
        vendor_id: int,
        device_id: int,
        class_code: int,
        revision: int = 0,
        subsystem_vendor_id: int = 0,
        subsystem_id: int = 0,
        interrupt_pin: int = 0,
        header_type: int = 0,
    ) -> None:
        self.name = name
        self.config = np.zeros(256, dtype=np.uint8)
        self.wmask = np.zeros(256, dtype=np.uint8)
        self.bars: dict[int, Bar] = {}
        self.rom: Bar | None = None
        self.bus: PCIBus | None = None
        self.devfn = -1
        self._irq_level = False
        # The pin is driven from device threads (the QXL worker) while the
        # vCPU writes the command register: both update the bus's per-PIRQ
        # count, which must see each assert and deassert exactly once.
        self._intx_lock = threading.Lock()
        self._intx_asserted = False
        self._set16(PCI_VENDOR_ID, vendor_id)
        self._set16(PCI_DEVICE_ID, device_id)
        self.config[PCI_REVISION_ID] = revision
        self.config[PCI_CLASS_PROG] = class_code & 0xFF
        self.config[PCI_CLASS_PROG + 1] = (class_code >> 8) & 0xFF
        self.config[PCI_CLASS_PROG + 2] = (class_code >> 16) & 0xFF
        self.config[PCI_HEADER_TYPE] = header_type
        self._set16(PCI_SUBSYSTEM_VENDOR_ID, subsystem_vendor_id)
        self._set16(PCI_SUBSYSTEM_ID, subsystem_id)
        self.config[PCI_INTERRUPT_PIN] = interrupt_pin
        # Command: I/O, memory, bus master, INTx disable are writable.
        self._set16(PCI_COMMAND, 0)
        self.wmask[PCI_COMMAND] = CMD_IO | CMD_MEMORY | CMD_MASTER
        self.wmask[PCI_COMMAND + 1] = CMD_INTX_DISABLE >> 8
        self.wmask[PCI_INTERRUPT_LINE] = 0xFF
        self.wmask[0x0C] = 0xFF  # cache line size
        self.wmask[0x0D] = 0xFF  # latency timer

    # -- identity helpers
    def _set16(self, off: int, v: int) -> None:
        self.config[off] = v & 0xFF
        self.config[off + 1] = (v >> 8) & 0xFF

    def _get32(self, off: int) -> int:
        return int.from_bytes(self.config[off : off + 4].tobytes(), "little")

    def _set32(self, off: int, v: int) -> None:
        self.config[off : off + 4] = np.frombuffer((v & 0xFFFFFFFF).to_bytes(4, "little"), np.uint8)

    @property
    def vendor_id(self) -> int:
        return int(self.config[0]) | int(self.config[1]) << 8

    @property
    def device_id(self) -> int:
        return int(self.config[2]) | int(self.config[3]) << 8

    @property
    def command(self) -> int:
        return int(self.config[PCI_COMMAND]) | int(self.config[PCI_COMMAND + 1]) << 8

    # -- BARs
    def add_bar(self, index: int, bar: Bar) -> Bar:
        """Declare BAR ``index`` (a 64-bit BAR also occupies ``index + 1``)."""
        if index in self.bars or index > 5 or (bar.kind is BarKind.MEM64 and index > 4):
            raise ValueError(f"{self.name}: bad BAR index {index}")
        self.bars[index] = bar
        off = PCI_BAR0 + 4 * index
        if bar.kind is BarKind.IO:
            low_bits = BAR_IO
            mask = ~(bar.size - 1) & 0xFFFFFFFC
        else:
            low_bits = (BAR_MEM_64 if bar.kind is BarKind.MEM64 else 0) | (
                BAR_PREFETCH if bar.prefetchable else 0
            )
            mask = ~(bar.size - 1) & 0xFFFFFFF0
        self._set32(off, low_bits)
        self.wmask[off : off + 4] = np.frombuffer(
            (mask & 0xFFFFFFFF).to_bytes(4, "little"), np.uint8)
        if bar.kind is BarKind.MEM64:
            hi_mask = (~(bar.size - 1) >> 32) & 0xFFFFFFFF
            self.wmask[off + 4 : off + 8] = np.frombuffer(hi_mask.to_bytes(4, "little"), np.uint8)
        return bar

    def add_rom(self, bar: Bar) -> Bar:
        """Declare the expansion ROM BAR (read-only memory)."""
        if bar.kind is not BarKind.MEM32 or bar.array is None:
            raise ValueError("an expansion ROM is a 32-bit memory BAR backed by an array")
        bar.readonly = True
        self.rom = bar
        mask = (~(bar.size - 1) & 0xFFFFF800) | ROM_ENABLE
        self.wmask[PCI_ROM_ADDRESS : PCI_ROM_ADDRESS + 4] = np.frombuffer(
            mask.to_bytes(4, "little"), np.uint8
        )
        return bar

    def bar_address(self, index: int) -> int:
        """The address programmed into BAR ``index`` (mapped or not)."""
        bar = self.bars[index]
        off = PCI_BAR0 + 4 * index
        if bar.kind is BarKind.IO:
            return self._get32(off) & 0xFFFFFFFC
        addr = self._get32(off) & 0xFFFFFFF0
        if bar.kind is BarKind.MEM64:
            addr |= self._get32(off + 4) << 32
        return addr

    # -- config access (the bus calls these; subclasses may extend)
    def config_read(self, offset: int, size: int) -> int:
        v = int.from_bytes(self.config[offset : offset + size].tobytes(), "little")
        if offset <= PCI_STATUS < offset + size and self._irq_level:
            v |= STATUS_INTERRUPT << (8 * (PCI_STATUS - offset))
        return v

    def config_write(self, offset: int, size: int, value: int) -> None:
        for i in range(size):
            b = (value >> (8 * i)) & 0xFF
            m = int(self.wmask[offset + i])
            self.config[offset + i] = (int(self.config[offset + i]) & ~m) | (b & m)
        touched = range(offset, offset + size)
        if PCI_COMMAND in touched or PCI_COMMAND + 1 in touched:
            self._route_intx()
        if any(PCI_BAR0 <= o < PCI_BAR0 + 24 or PCI_ROM_ADDRESS <= o < PCI_ROM_ADDRESS + 4
               for o in touched) or PCI_COMMAND in touched:
            if self.bus is not None:
                self.bus.update_mappings(self)

    # -- interrupts
    def set_irq(self, level: bool) -> None:
        """Drive this function's INTx pin (level-triggered).  Any thread."""
        with self._intx_lock:
            level = bool(level)
            if level == self._irq_level:
                return
            self._irq_level = level
            self._route_intx_locked()

    def _route_intx(self) -> None:
        with self._intx_lock:
            self._route_intx_locked()

    def _route_intx_locked(self) -> None:
        if self.bus is None or not self.config[PCI_INTERRUPT_PIN]:
            return
        asserted = self._irq_level and not (self.command & CMD_INTX_DISABLE)
        if asserted != self._intx_asserted:
            self._intx_asserted = asserted
            self.bus.intx_changed(self, asserted)

    def reset(self) -> None:
        """Power-on state of the PCI header: decoding off, BARs cleared."""
        self._set16(PCI_COMMAND, 0)
        for index, bar in self.bars.items():
            off = PCI_BAR0 + 4 * index
            self._set32(off, self._get32(off) & (0x1 if bar.kind is BarKind.IO else 0xF))
            if bar.kind is BarKind.MEM64:
                self._set32(off + 4, 0)
        self._set32(PCI_ROM_ADDRESS, 0)
        self.config[PCI_INTERRUPT_LINE] = 0
        if self.bus is not None:
            self.bus.update_mappings(self)
        self.set_irq(False)


class PIIX3(PCIDevice):
    """PIIX3 PCI-to-ISA bridge (function 0): the PIRQ routing registers.

    PIRQA..D route registers live at 0x60..0x63: bits 0-3 the ISA IRQ,
    bit 7 set = not routed.  Power-on value 0x80 (disabled), as on the chip.
    """

    PIRQ_BASE = 0x60

    def __init__(self, isa_irqs: Callable[[int], IrqLine]) -> None:
        super().__init__("piix3", 0x8086, 0x7000, 0x060100, header_type=0x80)
        self._isa_irqs = isa_irqs
        self._lock = threading.Lock()
        self._pirq_level = [0, 0, 0, 0]  # count of asserting devices per PIRQ
        self._routed_irq: list[int | None] = [None] * 4
        for i in range(4):
            self.config[self.PIRQ_BASE + i] = 0x80
            self.wmask[self.PIRQ_BASE + i] = 0x8F

    def config_write(self, offset: int, size: int, value: int) -> None:
        super().config_write(offset, size, value)
        if offset < self.PIRQ_BASE + 4 and offset + size > self.PIRQ_BASE:
            for pirq in range(4):
                self._update_pirq(pirq)

    def route(self, pirq: int) -> int | None:
        reg = int(self.config[self.PIRQ_BASE + pirq])
        if reg & 0x80:
            return None
        irq = reg & 0x0F
        # IRQs 0, 1, 2, 8, 13 are not routable on PIIX3.
        return None if irq in (0, 1, 2, 8, 13) else irq

    def pirq_set(self, pirq: int, delta: int) -> None:
        with self._lock:
            self._pirq_level[pirq] += delta
            self._update_pirq_locked(pirq)

    def _update_pirq(self, pirq: int) -> None:
        with self._lock:
            self._update_pirq_locked(pirq)

    def _update_pirq_locked(self, pirq: int) -> None:
        # The ISA line is driven under the lock too: two threads changing
        # the same PIRQ must not deliver their levels out of order.
        new = self.route(pirq)
        old = self._routed_irq[pirq]
        level = self._pirq_level[pirq] > 0
        self._routed_irq[pirq] = new
        if old is not None and old != new:
            self._isa_irqs(old).set_level(False)
        if new is not None:
            self._isa_irqs(new).set_level(level)

    def reset(self) -> None:
        super().reset()
        for i in range(4):
            self.config[self.PIRQ_BASE + i] = 0x80
            self._update_pirq(i)


class I440FX(PCIDevice):
    """i440FX host bridge (PMC).  The PAM/SMRAM registers are storage only:
    our firmware runs from ROM and never shadows itself."""

    def __init__(self) -> None:
        super().__init__("i440fx", 0x8086, 0x1237, 0x060000, revision=0x02)
        self.wmask[0x59:0x60] = 0xFF  # PAM0..PAM6
        self.wmask[0x72] = 0xFF  # SMRAM


RCR_SYS_RST = 0x02  # reset control: hard (system) reset when RST_CPU fires
RCR_RST_CPU = 0x04  # reset control: writing it set resets the machine


class ConfigPorts:
    """Ports 0xCF8 (address, 32-bit), 0xCF9 (the PIIX3 reset control
    register, byte-wide, shared with the address register) and 0xCFC..0xCFF
    (data)."""

    def __init__(self, bus: PCIBus) -> None:
        self.bus = bus
        self.address = 0
        self.rcr = 0

    def io_read(self, offset: int, size: int) -> int:
        if offset < 4:
            if offset == 0 and size == 4:
                return self.address
            if offset == 1 and size == 1:
                return self.rcr
            return (1 << (8 * size)) - 1
        return self.bus.config_read(self.address, offset - 4, size)

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset < 4:
            if offset == 0 and size == 4:
                self.address = value & 0x80FFFFFC
            elif offset == 1 and size == 1:
                # As QEMU's PIIX3: RST_CPU asks for a machine reset (how
                # firmware and OSes reboot a PC); only SYS_RST is kept.
                self.rcr = value & RCR_SYS_RST
                if value & RCR_RST_CPU and self.bus.on_reset is not None:
                    self.bus.on_reset()
            return
        self.bus.config_write(self.address, offset - 4, size, value)


class PCIBus:
    """Bus 0 of an i440FX/PIIX3 machine."""

    def __init__(self, ioports: IOPortSpace, memory: MemoryMap,
                 isa_irqs: Callable[[int], IrqLine],
                 on_reset: Callable[[], None] | None = None) -> None:
        self.ioports = ioports
        self.memory = memory
        self.on_reset = on_reset  # port 0xCF9 reset requests
        self.devices: dict[int, PCIDevice] = {}
        self._io_ranges: dict[tuple[str, int], PortRange] = {}
        self._ports = ConfigPorts(self)
        ioports.register(0xCF8, 8, self._ports, "pci-config")
        self.host = I440FX()
        self.isa_bridge = PIIX3(isa_irqs)
        self.plug(self.host, slot=0)
        self.plug(self.isa_bridge, slot=1)

    # -- topology
    def plug(self, dev: PCIDevice, slot: int | None = None, function: int = 0) -> int:
        """Attach ``dev``; returns its devfn.  ``slot=None`` picks the first
        free slot from 2 (as QEMU numbers devices after the chipset)."""
        if slot is None:
            slot = next(s for s in range(2, 32) if (s << 3) not in self.devices)
        devfn = (slot << 3) | function
        if devfn in self.devices:
            raise ValueError(f"PCI slot {slot:02x}.{function} is taken")
        dev.bus = self
        dev.devfn = devfn
        self.devices[devfn] = dev
        return devfn

    def intx_changed(self, dev: PCIDevice, asserted: bool) -> None:
        """``dev``'s routed INTx output changed (the device reports each
        change once)."""
        pin = int(dev.config[PCI_INTERRUPT_PIN])
        # PIIX3 swizzle as QEMU's pci_slot_get_pirq (and SeaBIOS's tables):
        # slot 1 (the PIIX3 itself) INTA is PIRQA.
        pirq = ((dev.devfn >> 3) - 1 + pin - 1) & 3
        self.isa_bridge.pirq_set(pirq, 1 if asserted else -1)

    # -- configuration space
    def _target(self, address: int) -> tuple[PCIDevice | None, int]:
        if not address & 0x80000000 or (address >> 16) & 0xFF != 0:
            return None, 0
        return self.devices.get((address >> 8) & 0xFF), address & 0xFC

    def config_read(self, address: int, byte: int, size: int) -> int:
        dev, reg = self._target(address)
        if dev is None or byte + size > 4:
            return (1 << (8 * size)) - 1
        return dev.config_read(reg + byte, size)

    def config_write(self, address: int, byte: int, size: int, value: int) -> None:
        dev, reg = self._target(address)
        if dev is not None and byte + size <= 4:
            dev.config_write(reg + byte, size, value)

    # -- BAR placement
    def update_mappings(self, dev: PCIDevice) -> None:
        cmd = dev.command
        for index, bar in dev.bars.items():
            addr: int | None = dev.bar_address(index)
            if bar.kind is BarKind.IO:
                ok = bool(cmd & CMD_IO) and addr != 0 and addr + bar.size <= 0x10000
            else:
                limit = MEM64_LIMIT if bar.kind is BarKind.MEM64 else MEM32_LIMIT
                ok = bool(cmd & CMD_MEMORY) and addr != 0 and addr + bar.size <= limit
            self._place(dev, f"bar{index}", bar, addr if ok else None)
        if dev.rom is not None:
            reg = dev._get32(PCI_ROM_ADDRESS)
            addr = reg & 0xFFFFF800
            ok = (bool(cmd & CMD_MEMORY) and bool(reg & ROM_ENABLE) and addr != 0
                  and addr + dev.rom.size <= MEM32_LIMIT)
            self._place(dev, "rom", dev.rom, addr if ok else None)

    def _place(self, dev: PCIDevice, what: str, bar: Bar, addr: int | None) -> None:
        if bar.address == addr:
            return
        name = f"{dev.name}.{what}"
        if bar.address is not None:
            if bar.kind is BarKind.IO:
                self.ioports.unregister(self._io_ranges.pop((dev.name, id(bar))))
            else:
                self.memory.unmap(name)
        bar.address = None
        if addr is not None:
            try:
                if bar.kind is BarKind.IO:
                    assert bar.io is not None
                    self._io_ranges[(dev.name, id(bar))] = self.ioports.register(
                        addr, bar.size, bar.io, name)
                elif bar.array is not None:
                    self.memory.map_ram(name, addr, bar.array, readonly=bar.readonly)
                else:
                    assert bar.mmio is not None
                    self.memory.map_mmio(name, addr, bar.size, bar.mmio)
                bar.address = addr
            except ValueError as exc:
                # A guest may program overlapping BARs; real hardware would
                # decode garbage.  We leave the BAR unmapped and say so.
                log.warning("%s: cannot map at %#x: %s", name, addr, exc)
        log.debug("%s -> %s", name, "unmapped" if bar.address is None else hex(bar.address))
        if bar.on_map is not None:
            bar.on_map(bar.address)

    def reset(self) -> None:
        self._ports.rcr = 0
        for dev in self.devices.values():
            dev.reset()

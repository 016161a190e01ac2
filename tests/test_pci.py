"""PCI bus: configuration mechanism #1 at 0xCF8/0xCFC, BAR sizing and
placement (memory, I/O, 64-bit, expansion ROM) on the machine's real memory
map, BAR moves that remap the same array, and INTx -> PIIX3 PIRQ -> ISA
IRQ routing into the real 8259 pair."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from unicorn import UC_ARCH_X86, UC_MODE_32, Uc

from devices.bus import IOPortSpace
from devices.pci import Bar, BarKind, PCIBus, PCIDevice
from devices.pic import PICPair
from vm.memory import GuestMemory

MEM_SIZE = 0x10000
IO_SIZE = 0x20
MEM64_SIZE = 0x200000
ROM_SIZE = 0x10000


class Ports:
    """A tiny I/O BAR backing: 32 byte registers."""

    def __init__(self) -> None:
        self.regs = bytearray(IO_SIZE)

    def io_read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.regs[offset:offset + size], "little")

    def io_write(self, offset: int, size: int, value: int) -> None:
        self.regs[offset:offset + size] = value.to_bytes(size, "little")


class Regs:
    def mmio_read(self, offset: int, size: int) -> int:
        return 0x5A

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        pass


class TestDevice(PCIDevice):
    __test__ = False

    def __init__(self, name: str = "testdev", pin: int = 1) -> None:
        super().__init__(name, 0x1AF4, 0x10F0, 0x030000, revision=3,
                         subsystem_vendor_id=0x1AF4, subsystem_id=0x1100, interrupt_pin=pin)
        self.ram = np.zeros(MEM_SIZE, dtype=np.uint8)
        self.ports = Ports()
        self.big = np.zeros(MEM64_SIZE, dtype=np.uint8)
        self.rom_image = np.full(ROM_SIZE, 0x55, dtype=np.uint8)
        self.moves: list[int | None] = []
        self.add_bar(0, Bar(BarKind.MEM32, MEM_SIZE, array=self.ram, on_map=self.moves.append))
        self.add_bar(1, Bar(BarKind.IO, IO_SIZE, io=self.ports))
        self.add_bar(2, Bar(BarKind.MEM64, MEM64_SIZE, array=self.big, prefetchable=True))
        self.add_bar(4, Bar(BarKind.MEM32, 0x1000, mmio=Regs()))
        self.add_rom(Bar(BarKind.MEM32, ROM_SIZE, array=self.rom_image))


class Machine:
    def __init__(self) -> None:
        self.io = IOPortSpace()
        self.memory = GuestMemory(Uc(UC_ARCH_X86, UC_MODE_32))
        self.pic = PICPair(self.io, lambda: None)
        self.resets = 0
        self.bus = PCIBus(self.io, self.memory, isa_irqs=self.pic.irq,
                          on_reset=self._reset)

    def _reset(self) -> None:
        self.resets += 1

    # configuration mechanism #1, as firmware does it
    def addr(self, slot: int, reg: int, fn: int = 0, bus: int = 0) -> int:
        return 0x80000000 | bus << 16 | slot << 11 | fn << 8 | (reg & 0xFC)

    def cfg_read(self, slot: int, reg: int, size: int = 4) -> int:
        self.io.write(0xCF8, 4, self.addr(slot, reg))
        return self.io.read(0xCFC + (reg & 3), size)

    def cfg_write(self, slot: int, reg: int, value: int, size: int = 4) -> None:
        self.io.write(0xCF8, 4, self.addr(slot, reg))
        self.io.write(0xCFC + (reg & 3), size, value)

    def size_bar(self, slot: int, reg: int) -> int:
        old = self.cfg_read(slot, reg)
        self.cfg_write(slot, reg, 0xFFFFFFFF)
        mask = self.cfg_read(slot, reg)
        self.cfg_write(slot, reg, old)
        return mask


@pytest.fixture
def m() -> Machine:
    return Machine()


@pytest.fixture
def dev(m: Machine) -> TestDevice:
    d = TestDevice()
    m.bus.plug(d, slot=3)
    return d


# -- configuration mechanism #1


def test_address_register_and_chipset_identity(m: Machine) -> None:
    m.io.write(0xCF8, 4, 0x80001804)
    assert m.io.read(0xCF8, 4) == 0x80001804
    assert m.cfg_read(0, 0) == 0x12378086  # i440FX
    assert m.cfg_read(1, 0) == 0x70008086  # PIIX3
    assert m.cfg_read(1, 0x0E, 1) == 0x80  # multi-function header
    assert m.cfg_read(1, 0x08) >> 8 == 0x060100  # ISA bridge class
    assert m.cfg_read(5, 0) == 0xFFFFFFFF  # empty slot


def test_sub_dword_access_and_disabled_cycles(m: Machine, dev: TestDevice) -> None:
    assert m.cfg_read(3, 0x02, 2) == 0x10F0  # word at 0xCFE
    assert m.cfg_read(3, 0x0B, 1) == 0x03  # class byte at 0xCFF
    assert m.cfg_read(3, 0x08, 1) == 0x03  # revision
    assert m.cfg_read(3, 0x2C) == 0x11001AF4
    assert m.cfg_read(3, 0x3D, 1) == 1  # INTA
    m.io.write(0xCF8, 4, 0x00001800)  # enable bit clear: no config cycle
    assert m.io.read(0xCFC, 4) == 0xFFFFFFFF
    m.io.write(0xCF8, 4, m.addr(3, 0, bus=1))  # no bus 1
    assert m.io.read(0xCFC, 4) == 0xFFFFFFFF
    m.io.write(0xCF8, 1, 0)  # only dword writes change the address
    assert m.io.read(0xCF8, 4) == m.addr(3, 0, bus=1)


def test_read_only_fields_ignore_writes(m: Machine, dev: TestDevice) -> None:
    m.cfg_write(3, 0x00, 0)
    m.cfg_write(3, 0x08, 0)
    assert m.cfg_read(3, 0x00) == 0x10F01AF4
    assert m.cfg_read(3, 0x08) == 0x03000003
    m.cfg_write(3, 0x3C, 0x0B, size=1)  # interrupt line is firmware scratch
    assert m.cfg_read(3, 0x3C, 1) == 0x0B


# -- BAR sizing


def test_bar_sizing_masks(m: Machine, dev: TestDevice) -> None:
    assert m.size_bar(3, 0x10) == 0xFFFF0000  # 64 KiB memory
    assert m.size_bar(3, 0x14) == 0xFFFFFFE1  # 32 ports, I/O space bit
    # 2 MiB 64-bit prefetchable: type bits 0b10 and prefetch in the low dword
    assert m.size_bar(3, 0x18) == 0xFFE0000C
    assert m.size_bar(3, 0x1C) == 0xFFFFFFFF  # upper half: all writable
    assert m.size_bar(3, 0x20) == 0xFFFFF000  # 4 KiB register window
    assert m.size_bar(3, 0x24) == 0  # unimplemented BAR
    # Expansion ROM: the enable bit is writable, the size mask above bit 11.
    assert m.size_bar(3, 0x30) == 0xFFFF0001
    m.cfg_write(3, 0x30, 0xFFFFFFFE)
    assert m.cfg_read(3, 0x30) == 0xFFFF0000


def test_large_64bit_bar_sizes_into_upper_dword() -> None:
    m = Machine()
    d = PCIDevice("huge", 0x1234, 0x1111, 0x030000)
    d.add_bar(0, Bar(BarKind.MEM64, 8 << 30, mmio=Regs()))
    m.bus.plug(d, slot=4)
    assert m.size_bar(4, 0x10) == 0x00000004
    assert m.size_bar(4, 0x14) == 0xFFFFFFFE  # 8 GiB


# -- placement on the memory map


def enable(m: Machine, slot: int, io: bool = True, mem: bool = True) -> None:
    m.cfg_write(slot, 0x04, (1 if io else 0) | (2 if mem else 0), size=2)


def test_bars_map_only_when_decoding_is_enabled(m: Machine, dev: TestDevice) -> None:
    m.cfg_write(3, 0x10, 0xE0000000)
    m.cfg_write(3, 0x14, 0xC000)
    assert dev.moves == []
    with pytest.raises(ValueError):
        m.memory.ram_view(0xE0000000, 16)
    assert m.io.read(0xC000, 1) == 0xFF
    enable(m, 3, io=False, mem=True)
    assert dev.moves == [0xE0000000]
    assert m.io.read(0xC000, 1) == 0xFF  # I/O decoding still off
    enable(m, 3)
    dev.ports.regs[0] = 0x42
    assert m.io.read(0xC000, 1) == 0x42
    enable(m, 3, io=False, mem=False)
    assert dev.moves == [0xE0000000, None]
    assert m.io.read(0xC000, 1) == 0xFF


def test_memory_bar_is_the_device_array_and_moves_with_it(m: Machine, dev: TestDevice) -> None:
    m.cfg_write(3, 0x10, 0xE0000000)
    enable(m, 3)
    view = m.memory.ram_view(0xE0000000, MEM_SIZE)
    assert np.shares_memory(view, dev.ram)
    m.memory.write(0xE0000100, b"\xde\xad\xbe\xef")  # as the guest would
    assert bytes(dev.ram[0x100:0x104]) == b"\xde\xad\xbe\xef"
    m.cfg_write(3, 0x10, 0xE1230000)  # the firmware moves it
    assert dev.moves == [0xE0000000, 0xE1230000]
    assert dev.bars[0].address == 0xE1230000
    with pytest.raises(ValueError):
        m.memory.ram_view(0xE0000000, 16)
    assert m.memory.read(0xE1230100, 4) == b"\xde\xad\xbe\xef"  # same bytes
    assert np.shares_memory(m.memory.ram_view(0xE1230000, MEM_SIZE), dev.ram)
    assert [r.name for r in m.memory.regions()].count("testdev.bar0") == 1


def test_io_bar_moves(m: Machine, dev: TestDevice) -> None:
    m.cfg_write(3, 0x14, 0xC001)
    enable(m, 3)
    m.io.write(0xC004, 2, 0xBEEF)
    m.cfg_write(3, 0x14, 0xD000)
    assert m.cfg_read(3, 0x14) == 0xD001
    assert m.io.read(0xC004, 2) == 0xFFFF
    assert m.io.read(0xD004, 2) == 0xBEEF


def test_64bit_bar_above_4g(m: Machine, dev: TestDevice) -> None:
    m.cfg_write(3, 0x18, 0x00000000)
    m.cfg_write(3, 0x1C, 0x00000008)
    enable(m, 3)
    assert dev.bars[2].address == 0x8_0000_0000
    dev.big[0x1234] = 0x77
    assert m.memory.read(0x8_0000_1234, 1) == b"\x77"
    m.cfg_write(3, 0x18, 0xF0000000)
    m.cfg_write(3, 0x1C, 0)
    assert dev.bars[2].address == 0xF0000000
    assert np.shares_memory(m.memory.ram_view(0xF0000000, 16), dev.big)


def test_32bit_bar_reaching_4g_stays_unmapped(m: Machine, dev: TestDevice) -> None:
    # QEMU's pci_bar_address: a 32-bit BAR whose last byte is 0xffffffff is
    # not decoded, so sizing a BAR with decoding on maps nothing.
    enable(m, 3)
    m.cfg_write(3, 0x10, 0xFFFFFFFF)
    assert dev.moves == []
    assert m.memory.find(0xFFFF0000) is None
    m.cfg_write(3, 0x30, 0xFFFFFFFF)  # the expansion ROM, enabled, at 0xffff0000
    assert m.memory.find(0xFFFF0000) is None
    m.cfg_write(3, 0x10, 0xFFFE0000)  # ends one byte short of 4 GiB: decoded
    assert dev.moves == [0xFFFE0000]
    m.cfg_write(3, 0x10, 0xE0000000)
    m.cfg_write(3, 0x18, 0xFFE00000)  # a 64-bit BAR may reach 4 GiB
    m.cfg_write(3, 0x1C, 0)
    assert dev.bars[2].address == 0xFFE00000


def test_mmio_bar_and_rom(m: Machine, dev: TestDevice) -> None:
    m.cfg_write(3, 0x20, 0xE2000000)
    m.cfg_write(3, 0x30, 0xE3000000)  # ROM address, not enabled yet
    enable(m, 3)
    region = m.memory.find(0xE2000000)
    assert region is not None and region.mmio is not None
    assert m.memory.find(0xE3000000) is None
    m.cfg_write(3, 0x30, 0xE3000001)
    rom = m.memory.find(0xE3000000)
    assert rom is not None and rom.readonly
    assert m.memory.read(0xE3000000, 2) == b"\x55\x55"
    m.cfg_write(3, 0x30, 0xE3000000)
    assert m.memory.find(0xE3000000) is None


def test_overlapping_bars_are_refused_not_fatal(m: Machine, dev: TestDevice) -> None:
    other = TestDevice("other")
    m.bus.plug(other, slot=4)
    m.cfg_write(3, 0x10, 0xE0000000)
    enable(m, 3)
    m.cfg_write(4, 0x10, 0xE0000000)
    enable(m, 4)
    assert dev.bars[0].address == 0xE0000000
    assert other.bars[0].address is None
    m.cfg_write(4, 0x10, 0xE0100000)
    assert other.bars[0].address == 0xE0100000


def test_reset_clears_bars_and_unmaps(m: Machine, dev: TestDevice) -> None:
    m.cfg_write(3, 0x10, 0xE0000000)
    m.cfg_write(3, 0x14, 0xC000)
    m.cfg_write(1, 0x60, 0x0B, size=1)
    enable(m, 3)
    m.bus.reset()
    assert m.cfg_read(3, 0x04, 2) == 0
    assert m.cfg_read(3, 0x10) == 0
    assert m.cfg_read(3, 0x14) == 1
    assert m.cfg_read(3, 0x18) == 0x0C
    assert m.cfg_read(1, 0x60, 1) == 0x80
    assert dev.bars[0].address is None
    assert m.io.read(0xC000, 1) == 0xFF
    assert m.memory.find(0xE0000000) is None


# -- interrupts


def init_pic(m: Machine, level_irqs: int) -> None:
    for port, data in ((0x20, (0x11, 0x20, 0x04, 0x01)), (0xA0, (0x11, 0x28, 0x02, 0x01))):
        m.io.write(port, 1, data[0])
        for b in data[1:]:
            m.io.write(port + 1, 1, b)
    m.io.write(0x4D0, 2, level_irqs)  # PCI interrupts are level-triggered


def test_intx_routed_through_pirq_to_the_pic(m: Machine, dev: TestDevice) -> None:
    init_pic(m, 1 << 11)
    # Slot 3, INTA: PIRQ (3 - 1 + 0) & 3 = PIRQC, register 0x62.
    m.cfg_write(1, 0x62, 11, size=1)
    dev.set_irq(True)
    assert m.pic.has_interrupt()
    assert m.cfg_read(3, 0x06, 2) & 0x08  # interrupt status
    assert m.pic.acknowledge() == 0x28 + 3
    m.io.write(0xA0, 1, 0x20)
    m.io.write(0x20, 1, 0x20)
    assert m.pic.has_interrupt()  # level: still asserted
    dev.set_irq(False)
    assert not m.cfg_read(3, 0x06, 2) & 0x08
    # The master latched the cascade edge; with the request gone the INTA
    # cycle yields the slave's spurious vector, as on the 8259A.
    assert m.pic.acknowledge() == 0x28 + 7
    m.io.write(0x20, 1, 0x20)
    assert not m.pic.has_interrupt()


def test_unrouted_and_unroutable_pirqs(m: Machine, dev: TestDevice) -> None:
    init_pic(m, 0xFFFF)
    dev.set_irq(True)  # PIRQC still 0x80: not routed
    assert not m.pic.has_interrupt()
    m.cfg_write(1, 0x62, 2, size=1)  # IRQ2 cannot take a PIRQ
    assert not m.pic.has_interrupt()
    m.cfg_write(1, 0x62, 10, size=1)  # routing while asserted delivers it
    assert m.pic.has_interrupt()
    assert m.pic.acknowledge() == 0x2A


def test_rerouting_moves_the_level(m: Machine, dev: TestDevice) -> None:
    init_pic(m, (1 << 10) | (1 << 11))
    m.cfg_write(1, 0x62, 10, size=1)
    dev.set_irq(True)
    m.io.write(0xA0, 1, 0x0A)
    assert m.io.read(0xA0, 1) & 0x04  # IRR bit for IRQ10
    m.cfg_write(1, 0x62, 11, size=1)
    m.io.write(0xA0, 1, 0x0A)
    assert m.io.read(0xA0, 1) & 0x0C == 0x08  # now IRQ11, IRQ10 released


def test_swizzle_and_shared_lines(m: Machine) -> None:
    init_pic(m, 1 << 5)
    a = TestDevice("a", pin=1)  # slot 4 INTA -> (4 - 1 + 0) & 3 = PIRQD
    b = TestDevice("b", pin=4)  # slot 5 INTD -> (5 - 1 + 3) & 3 = PIRQD
    m.bus.plug(a, slot=4)
    m.bus.plug(b, slot=5)
    m.cfg_write(1, 0x63, 5, size=1)
    a.set_irq(True)
    b.set_irq(True)
    a.set_irq(False)
    assert m.pic.has_interrupt()  # b still holds the shared line
    b.set_irq(False)
    assert not m.pic.has_interrupt()


def test_intx_disable_bit(m: Machine, dev: TestDevice) -> None:
    init_pic(m, 1 << 11)
    m.cfg_write(1, 0x62, 11, size=1)
    m.cfg_write(3, 0x04, 0x0400, size=2)
    dev.set_irq(True)
    assert not m.pic.has_interrupt()
    assert m.cfg_read(3, 0x06, 2) & 0x08  # status still shows the request
    m.cfg_write(3, 0x04, 0, size=2)
    assert m.pic.has_interrupt()


def _slave_irr(m: Machine) -> int:
    m.io.write(0xA0, 1, 0x0A)  # OCW3: read IRR
    return m.io.read(0xA0, 1)


def test_intx_stays_consistent_when_another_thread_writes_the_command_register(
        m: Machine, dev: TestDevice) -> None:
    # A device raises and lowers its pin on its own thread (the QXL worker
    # does) while the vCPU thread writes the command register; the line
    # must end up following the pin, never stuck high or deaf.
    init_pic(m, 1 << 11)
    m.cfg_write(1, 0x62, 11, size=1)
    done = threading.Event()

    def toggler() -> None:
        for i in range(20000):
            dev.set_irq(i % 2 == 0)
        dev.set_irq(False)
        done.set()

    def vcpu() -> None:
        while not done.is_set():
            m.cfg_write(3, 0x04, 0x0007, size=2)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # make the threads interleave as often as possible
    try:
        threads = [threading.Thread(target=vcpu), threading.Thread(target=toggler)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert not _slave_irr(m) & 0x08, "IRQ11 stuck high with the pin deasserted"
    dev.set_irq(True)
    assert _slave_irr(m) & 0x08, "IRQ11 no longer follows the pin"
    dev.set_irq(False)
    assert not _slave_irr(m) & 0x08


def test_reset_control_register_at_0xcf9(m: Machine) -> None:
    """PIIX3 RCR: RST_CPU requests a machine reset; SYS_RST is kept; the
    32-bit address register at 0xCF8 is unaffected."""
    m.io.write(0xCF8, 4, 0x80000800)
    assert m.io.read(0xCF9, 1) == 0
    m.io.write(0xCF9, 1, 0x02)
    assert m.io.read(0xCF9, 1) == 0x02 and m.resets == 0
    assert m.io.read(0xCF8, 4) == 0x80000800
    m.io.write(0xCF9, 1, 0x06)  # hard reset, as firmware reboots
    assert m.resets == 1
    m.bus.reset()
    assert m.io.read(0xCF9, 1) == 0

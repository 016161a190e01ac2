"""Guest-physical memory: RAM shared zero-copy with the host, PCI BARs that
move with the same backing array, unassigned space, ROM, and mapping from
another thread while the guest runs."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from vm_asm import TestMachine

from devices.bus import NullIrq
from devices.hostmem import guest_memory
from devices.pci import Bar, BarKind, PCIBus, PCIDevice
from vm.cpu import StopReason

EXIT = "mov $0, %al\n    out %al, $0xE1\n"


def test_ram_is_one_array_shared_with_the_guest() -> None:
    m = TestMachine("""
    mov (0x200000), %eax
    out %eax, $0xE0
    movl $0xC0FFEE11, (0x200004)
    """ + EXIT)
    m.ram[0x200000:0x200004] = np.frombuffer((0x11223344).to_bytes(4, "little"), np.uint8)
    assert m.run().reason is StopReason.EXIT
    assert m.values == [0x11223344]
    assert int.from_bytes(m.ram[0x200004:0x200008].tobytes(), "little") == 0xC0FFEE11
    view = m.cpu.memory.ram_view(0x200000, 16)
    assert np.shares_memory(view, m.ram)


class RamBarDevice(PCIDevice):
    def __init__(self) -> None:
        super().__init__("testbar", 0x1234, 0x5678, 0xFF0000)
        self.array = np.zeros(0x10000, dtype=np.uint8)
        self.add_bar(0, Bar(BarKind.MEM32, 0x10000, array=self.array))


def config_write(bus_dev: int, reg: int, value: int) -> str:
    addr = 0x80000000 | (bus_dev << 11) | reg
    return f"""
    mov $0xCF8, %dx
    mov ${addr:#x}, %eax
    out %eax, %dx
    mov $0xCFC, %dx
    mov ${value:#x}, %eax
    out %eax, %dx
"""


def test_bar_move_maps_the_same_array_at_the_new_address() -> None:
    slot = 3
    body = (config_write(slot, 0x10, 0xE0000000) + config_write(slot, 0x04, 0x2) + """
    movl $0xA5A5A5A5, (0xE0000010)
    """ + config_write(slot, 0x10, 0xE1000000) + """
    mov (0xE1000010), %eax
    out %eax, $0xE0
    mov (0xE0000010), %eax
    out %eax, $0xE0
    """ + EXIT)
    m = TestMachine(body)
    bus = PCIBus(m.ioports, m.cpu.memory, isa_irqs=lambda n: NullIrq())
    dev = RamBarDevice()
    bus.plug(dev, slot=slot)
    assert m.run().reason is StopReason.EXIT
    assert m.values == [0xA5A5A5A5, 0xFFFFFFFF]
    assert dev.bars[0].address == 0xE1000000
    assert int.from_bytes(dev.array[0x10:0x14].tobytes(), "little") == 0xA5A5A5A5
    assert np.shares_memory(m.cpu.memory.ram_view(0xE1000000, 0x100), dev.array)
    with pytest.raises(ValueError):
        m.cpu.memory.ram_view(0xE0000000, 0x100)


def test_mapping_from_another_thread_while_the_guest_runs() -> None:
    m = TestMachine("""
1:  mov (0xD0000000), %eax
    cmp $0x600DF00D, %eax
    jne 1b
    out %eax, $0xE0
    """ + EXIT)
    late = np.zeros(0x1000, dtype=np.uint8)
    late[:4] = np.frombuffer((0x600DF00D).to_bytes(4, "little"), np.uint8)
    m.cpu.start()
    time.sleep(0.1)  # the guest is spinning on unassigned memory
    mapper = threading.Thread(target=m.cpu.memory.map_ram, args=("late", 0xD0000000, late))
    mapper.start()
    mapper.join(5)
    stop = m.cpu.join(5)
    assert stop is not None and stop.reason is StopReason.EXIT
    assert m.values == [0x600DF00D]
    assert m.cpu.memory.is_mapped("late")


def test_overlapping_mappings_are_refused() -> None:
    m = TestMachine()
    with pytest.raises(ValueError, match="overlaps"):
        m.cpu.memory.map_ram("clash", 0x1000, np.zeros(0x1000, dtype=np.uint8))
    with pytest.raises(ValueError, match="4 KiB"):
        m.cpu.memory.map_ram("odd", 0xD0000800, np.zeros(0x1000, dtype=np.uint8))


def test_ram_view_must_stay_inside_one_region() -> None:
    m = TestMachine()
    assert m.cpu.memory.ram_view(0x9F000, 0x1000).nbytes == 0x1000
    with pytest.raises(ValueError):
        m.cpu.memory.ram_view(0x9F000, 0x2000)  # runs into the VGA hole
    with pytest.raises(ValueError):
        m.cpu.memory.ram_view(0xFFFFF000, 0x2000)


def test_rom_image_is_restored_after_a_guest_write() -> None:
    m = TestMachine("""
    movl $0xDEADBEEF, (0xFFFF0100)
    mov (0xFFFF0100), %eax
    out %eax, $0xE0
    """ + EXIT)
    before = m.cpu.memory.read(0xFFFF0100, 4)
    assert m.run().reason is StopReason.EXIT  # the guest keeps running
    m.cpu.memory.restore_roms()
    assert m.cpu.memory.read(0xFFFF0100, 4) == before
    assert m.cpu.memory.read(0xF0100, 4) == before


def test_a_scan_of_unassigned_memory_reads_ones_and_adds_few_mappings() -> None:
    # A guest probing for memory touches page after page nobody decodes;
    # each must read as all-ones without the engine's map growing a
    # mapping per page (every mapping change re-flattens the whole map).
    m = TestMachine("""
    mov $0x40000000, %esi
    mov $0xFFFFFFFF, %ebx
    mov $8192, %ecx
1:  and (%esi), %ebx
    add $0x1000, %esi
    loop 1b
    mov %ebx, %eax
    out %eax, $0xE0
    """ + EXIT)
    before = len(list(m.cpu.uc.mem_regions()))
    start = time.monotonic()
    assert m.run(timeout=60).reason is StopReason.EXIT
    elapsed = time.monotonic() - start
    assert m.values == [0xFFFFFFFF]
    assert len(list(m.cpu.uc.mem_regions())) - before <= 4, elapsed


def _vm_flags(address: int) -> list[str]:
    """The kernel's VmFlags of the mapping that holds ``address``."""
    flags: list[str] | None = None
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                flags = line.split()[1:]
                break
    assert flags is not None, f"no mapping holds {address:#x}"
    return flags


def test_guest_memory_is_zeroed_aligned_and_asks_for_huge_pages() -> None:
    mem = guest_memory(8 << 20)
    assert mem.dtype == np.uint8 and mem.size == 8 << 20 and mem.flags.writeable
    assert mem.ctypes.data % 4096 == 0
    assert not mem[::4096].any()
    mem[-1] = 7  # writable to the last byte
    # THP in "madvise" mode (Debian's default) only backs mappings marked
    # so, as QEMU marks its RAM blocks
    assert "hg" in _vm_flags(mem.ctypes.data)


def test_guest_memory_the_host_cannot_give_is_a_memory_error() -> None:
    with pytest.raises(MemoryError):
        guest_memory(1 << 60)

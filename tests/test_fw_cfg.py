"""fw_cfg through ports 0x510/0x511, read the way SeaBIOS and our firmware
read it: select with a 16-bit write, then byte reads."""

from __future__ import annotations

import struct

import pytest

from devices.bus import IOPortSpace
from devices.fw_cfg import (
    FW_CFG_CMDLINE_DATA,
    FW_CFG_CMDLINE_SIZE,
    FW_CFG_FILE_DIR,
    FW_CFG_ID,
    FW_CFG_INITRD_DATA,
    FW_CFG_INITRD_SIZE,
    FW_CFG_KERNEL_DATA,
    FW_CFG_KERNEL_SIZE,
    FW_CFG_MAX_CPUS,
    FW_CFG_NB_CPUS,
    FW_CFG_RAM_SIZE,
    FW_CFG_SIGNATURE,
    FwCfg,
)


class Guest:
    def __init__(self) -> None:
        self.io = IOPortSpace()
        self.fw = FwCfg(self.io)

    def select(self, key: int) -> None:
        self.io.write(0x510, 2, key)

    def read(self, n: int) -> bytes:
        return bytes(self.io.read(0x511, 1) for _ in range(n))

    def item(self, key: int, n: int) -> bytes:
        self.select(key)
        return self.read(n)

    def u32(self, key: int) -> int:
        return struct.unpack("<I", self.item(key, 4))[0]

    def directory(self) -> dict[str, tuple[int, int]]:
        self.select(FW_CFG_FILE_DIR)
        (count,) = struct.unpack(">I", self.read(4))
        files = {}
        for _ in range(count):
            size, key, _res, name = struct.unpack(">IHH56s", self.read(64))
            files[name.rstrip(b"\0").decode()] = (key, size)
        return files

    def file(self, name: str) -> bytes:
        key, size = self.directory()[name]
        return self.item(key, size)


@pytest.fixture
def g() -> Guest:
    return Guest()


def test_signature_is_selected_at_reset(g: Guest) -> None:
    assert g.read(4) == b"QEMU"
    g.fw.reset()
    assert g.read(4) == b"QEMU"


def test_id_has_no_dma_bit(g: Guest) -> None:
    assert g.u32(FW_CFG_ID) == 1


def test_reads_past_end_and_unknown_keys_return_zero(g: Guest) -> None:
    assert g.item(FW_CFG_SIGNATURE, 8) == b"QEMU\0\0\0\0"
    assert g.item(0x1F, 4) == bytes(4)  # never set
    assert g.item(0x3FFF, 4) == bytes(4)  # beyond the entry table


def test_cpus_and_ram_size(g: Guest) -> None:
    assert struct.unpack("<H", g.item(FW_CFG_NB_CPUS, 2))[0] == 1
    assert struct.unpack("<H", g.item(FW_CFG_MAX_CPUS, 2))[0] == 1
    g.fw.set_ram_size(5 << 30)
    assert struct.unpack("<Q", g.item(FW_CFG_RAM_SIZE, 8))[0] == 5 << 30


def test_kernel_cmdline_initrd(g: Guest) -> None:
    kernel = bytes(range(256)) * 40
    g.fw.set_kernel(kernel, b"console=ttyS0", b"INITRD")
    assert g.u32(FW_CFG_KERNEL_SIZE) == len(kernel)
    assert g.item(FW_CFG_KERNEL_DATA, len(kernel)) == kernel
    assert g.u32(FW_CFG_CMDLINE_SIZE) == 14
    assert g.item(FW_CFG_CMDLINE_DATA, 14) == b"console=ttyS0\0"
    assert g.u32(FW_CFG_INITRD_SIZE) == 6
    assert g.item(FW_CFG_INITRD_DATA, 6) == b"INITRD"
    g.fw.set_kernel(b"K", b"", None)
    assert g.u32(FW_CFG_CMDLINE_SIZE) == 1
    assert g.u32(FW_CFG_INITRD_SIZE) == 0  # gone


def test_file_directory_sorted_by_name(g: Guest) -> None:
    g.fw.add_file("opt/zeta", b"zz")
    g.fw.add_file("etc/alpha", b"a" * 300)
    g.fw.set_e820([(0, 0x9FC00, 1), (0x100000, 0x7F00000, 1), (0xFFFC0000, 0x40000, 2)])
    d = g.directory()
    assert list(d) == ["etc/alpha", "etc/e820", "opt/zeta"]
    assert [k for k, _ in d.values()] == [0x20, 0x21, 0x22]
    assert g.fw.file_key("opt/zeta") == 0x22
    assert g.file("etc/alpha") == b"a" * 300
    assert g.file("opt/zeta") == b"zz"
    e820 = g.file("etc/e820")
    assert len(e820) == 60
    assert struct.unpack_from("<QQI", e820, 20) == (0x100000, 0x7F00000, 1)
    # The directory blob is sized for all 32 slots, as QEMU's.
    g.select(FW_CFG_FILE_DIR)
    blob = g.read(4 + 64 * 32 + 4)
    assert blob[-4:] == bytes(4) and blob[4 + 64 * 3:4 + 64 * 32] == bytes(64 * 29)


def test_set_e820_twice_replaces(g: Guest) -> None:
    key = g.fw.set_e820([(0, 0x1000, 1)])
    assert g.fw.set_e820([(0, 0x2000, 1)]) == key
    assert struct.unpack("<QQI", g.file("etc/e820")) == (0, 0x2000, 1)


def test_add_file_errors(g: Guest) -> None:
    g.fw.add_file("a", b"")
    with pytest.raises(ValueError):
        g.fw.add_file("a", b"x")
    with pytest.raises(ValueError):
        g.fw.add_file("x" * 56, b"")
    for i in range(31):
        g.fw.add_file(f"f{i:02}", b"")
    with pytest.raises(ValueError):
        g.fw.add_file("one-too-many", b"")
    with pytest.raises(ValueError):
        g.fw.add_item(0x20, b"")


def test_arch_local_items(g: Guest) -> None:
    g.fw.add_item(0x8003, b"\x01\x02")
    assert g.item(0x8003, 2) == b"\x01\x02"
    assert g.item(0x0003, 2) == bytes(2)  # not the same as the generic key 3


def test_access_widths_as_qemu(g: Guest) -> None:
    g.select(FW_CFG_SIGNATURE)
    assert g.io.read(0x511, 2) == 0  # wider reads are refused...
    assert g.io.read(0x510, 4) == 0
    assert g.io.read(0x510, 1) == ord("Q")  # ...and consumed nothing
    g.io.write(0x510, 1, FW_CFG_ID)  # byte writes do not select
    g.io.write(0x511, 2, FW_CFG_ID)  # nor does an unaligned word
    assert g.read(3) == b"EMU"
    g.io.write(0x510, 4, FW_CFG_ID)
    g.select(FW_CFG_SIGNATURE | 0x4000)  # the write-channel bit still selects
    assert g.read(1) == b"Q"


def test_selecting_restarts_offset(g: Guest) -> None:
    g.read(2)
    g.select(FW_CFG_SIGNATURE)
    assert g.read(4) == b"QEMU"

"""QEMU's firmware configuration interface, port I/O flavour (x86).

The firmware writes a 16-bit item key to the selector at 0x510 and reads
the item byte by byte from 0x511; each read advances an offset, and reads
past the end of an item (or of an unknown item) return 0.  Item 0 is the
signature "QEMU", item 1 the feature bitmap (bit 0: this interface; no DMA
bit, since the DMA register at 0x514 is not implemented), item 0x19 the
file directory through which named blobs ("etc/e820", ...) are found.

Access widths follow QEMU's port variant exactly (hw/nvram/fw_cfg.c,
``fw_cfg_comb_valid``): the two ports are one combined register where a
16-bit write at 0x510 selects, a byte read at either port reads data, and
everything else (byte writes, wider reads, unaligned words) is refused --
refused reads return 0 without consuming data.  QEMU's wider data reads
exist only on the MMIO variant used by other architectures.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from devices.bus import IOPortSpace

log = logging.getLogger(__name__)

FW_CFG_PORT_SEL = 0x510
FW_CFG_PORT_DATA = 0x511

# Item keys (include/standard-headers/linux/qemu_fw_cfg.h).
FW_CFG_SIGNATURE = 0x00
FW_CFG_ID = 0x01
FW_CFG_UUID = 0x02
FW_CFG_RAM_SIZE = 0x03
FW_CFG_NOGRAPHIC = 0x04
FW_CFG_NB_CPUS = 0x05
FW_CFG_MACHINE_ID = 0x06
FW_CFG_KERNEL_ADDR = 0x07
FW_CFG_KERNEL_SIZE = 0x08
FW_CFG_KERNEL_CMDLINE = 0x09
FW_CFG_INITRD_ADDR = 0x0A
FW_CFG_INITRD_SIZE = 0x0B
FW_CFG_BOOT_DEVICE = 0x0C
FW_CFG_NUMA = 0x0D
FW_CFG_BOOT_MENU = 0x0E
FW_CFG_MAX_CPUS = 0x0F
FW_CFG_KERNEL_ENTRY = 0x10
FW_CFG_KERNEL_DATA = 0x11
FW_CFG_INITRD_DATA = 0x12
FW_CFG_CMDLINE_ADDR = 0x13
FW_CFG_CMDLINE_SIZE = 0x14
FW_CFG_CMDLINE_DATA = 0x15
FW_CFG_SETUP_ADDR = 0x16
FW_CFG_SETUP_SIZE = 0x17
FW_CFG_SETUP_DATA = 0x18
FW_CFG_FILE_DIR = 0x19
FW_CFG_FILE_FIRST = 0x20
FW_CFG_WRITE_CHANNEL = 0x4000
FW_CFG_ARCH_LOCAL = 0x8000
FW_CFG_ENTRY_MASK = 0x3FFF
FW_CFG_INVALID = 0xFFFF

FW_CFG_VERSION = 0x01
FILE_SLOTS = 0x20  # QEMU's default "x-file-slots"
MAX_ENTRY = FW_CFG_FILE_FIRST + FILE_SLOTS
MAX_FILE_PATH = 56  # including the terminating NUL

E820_RAM, E820_RESERVED, E820_ACPI, E820_NVS, E820_UNUSABLE = 1, 2, 3, 4, 5
_E820_ENTRY = struct.Struct("<QQI")
_FILE_ENTRY = struct.Struct(">IHH56s")


@dataclass
class FwCfgState:
    """What the guest can change: the selected item and the read offset."""

    selected: int = FW_CFG_SIGNATURE
    offset: int = 0


class FwCfg:
    def __init__(self, ioports: IOPortSpace) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[bool, int], bytes] = {}
        self._files: list[tuple[str, bytes]] = []  # sorted by name, as QEMU
        self.state = FwCfgState()
        self.add_item(FW_CFG_SIGNATURE, b"QEMU")
        self.add_item(FW_CFG_ID, struct.pack("<I", FW_CFG_VERSION))
        self.add_item(FW_CFG_UUID, bytes(16))
        self.add_item(FW_CFG_NOGRAPHIC, struct.pack("<H", 0))
        self.add_item(FW_CFG_BOOT_MENU, struct.pack("<H", 0))
        self.set_cpus(1, 1)
        self._write_directory()
        ioports.register(FW_CFG_PORT_SEL, 2, self, "fw_cfg")

    # -- the board's side

    def add_item(self, key: int, data: bytes) -> None:
        """Set (or replace) a numbered item.  File keys (0x20 and up) are
        managed by :meth:`add_file`."""
        arch = bool(key & FW_CFG_ARCH_LOCAL)
        index = key & FW_CFG_ENTRY_MASK
        if key & FW_CFG_WRITE_CHANNEL or index >= MAX_ENTRY or (
                not arch and index >= FW_CFG_FILE_FIRST) or (not arch and index == FW_CFG_FILE_DIR):
            raise ValueError(f"fw_cfg key {key:#x} cannot be set with add_item")
        with self._lock:
            self._items[(arch, index)] = bytes(data)

    def remove_item(self, key: int) -> None:
        with self._lock:
            self._items.pop((bool(key & FW_CFG_ARCH_LOCAL), key & FW_CFG_ENTRY_MASK), None)

    def add_file(self, name: str, data: bytes) -> int:
        """Add a named blob and return its key.  As in QEMU the directory is
        kept sorted by name, so adding a file that sorts earlier moves the
        keys of those after it; use :meth:`file_key` once all are added."""
        raw = name.encode()
        if not raw or len(raw) >= MAX_FILE_PATH or b"\0" in raw:
            raise ValueError(f"fw_cfg file name {name!r} is empty or too long")
        with self._lock:
            if any(n == name for n, _ in self._files):
                raise ValueError(f"duplicate fw_cfg file name {name!r}")
            if len(self._files) >= FILE_SLOTS:
                raise ValueError("no free fw_cfg file slot")
            self._files.append((name, bytes(data)))
            self._files.sort(key=lambda f: f[0].encode())
            self._write_directory()
            return FW_CFG_FILE_FIRST + [n for n, _ in self._files].index(name)

    def set_file(self, name: str, data: bytes) -> int:
        """Replace the contents of a file (adding it if new); returns its key."""
        with self._lock:
            for i, (n, _) in enumerate(self._files):
                if n == name:
                    self._files[i] = (name, bytes(data))
                    self._write_directory()
                    return FW_CFG_FILE_FIRST + i
        return self.add_file(name, data)

    def file_key(self, name: str) -> int:
        with self._lock:
            for i, (n, _) in enumerate(self._files):
                if n == name:
                    return FW_CFG_FILE_FIRST + i
        raise KeyError(name)

    def set_kernel(self, kernel: bytes, cmdline: bytes, initrd: bytes | None) -> None:
        """The -kernel/-append/-initrd items: the raw kernel file, the
        NUL-terminated command line and the initrd, each with its size."""
        if len(kernel) >= 1 << 32 or (initrd is not None and len(initrd) >= 1 << 32):
            raise ValueError("kernel and initrd must each be smaller than 4 GiB")
        cmd = bytes(cmdline).rstrip(b"\0") + b"\0"
        self.add_item(FW_CFG_KERNEL_SIZE, struct.pack("<I", len(kernel)))
        self.add_item(FW_CFG_KERNEL_DATA, kernel)
        self.add_item(FW_CFG_CMDLINE_SIZE, struct.pack("<I", len(cmd)))
        self.add_item(FW_CFG_CMDLINE_DATA, cmd)
        if initrd is None:
            self.remove_item(FW_CFG_INITRD_SIZE)
            self.remove_item(FW_CFG_INITRD_DATA)
        else:
            self.add_item(FW_CFG_INITRD_SIZE, struct.pack("<I", len(initrd)))
            self.add_item(FW_CFG_INITRD_DATA, initrd)

    def set_ram_size(self, n: int) -> None:
        self.add_item(FW_CFG_RAM_SIZE, struct.pack("<Q", n))

    def set_cpus(self, nb_cpus: int, max_cpus: int | None = None) -> None:
        """FW_CFG_NB_CPUS (CPUs present at boot) and FW_CFG_MAX_CPUS (QEMU
        puts the APIC id limit there: the highest APIC id + 1)."""
        self.add_item(FW_CFG_NB_CPUS, struct.pack("<H", nb_cpus))
        self.add_item(FW_CFG_MAX_CPUS, struct.pack("<H", max_cpus or nb_cpus))

    def set_e820(self, entries: Iterable[tuple[int, int, int]]) -> int:
        """The "etc/e820" file: (address, length, type) entries, 20 bytes
        each, little-endian, as QEMU's ``struct e820_entry``."""
        blob = b"".join(_E820_ENTRY.pack(a, n, t) for a, n, t in entries)
        return self.set_file("etc/e820", blob)

    def reset(self) -> None:
        """Select the signature again (QEMU's reset); items are the board's
        configuration and stay."""
        with self._lock:
            self.state = FwCfgState()

    # -- the guest's side

    def io_read(self, offset: int, size: int) -> int:
        if size != 1:
            log.debug("fw_cfg: %d-byte read refused", size)
            return 0
        with self._lock:
            s = self.state
            data = self._selected_data()
            if data is None or s.offset >= len(data):
                return 0
            value = data[s.offset]
            s.offset += 1
            return value

    def io_write(self, offset: int, size: int, value: int) -> None:
        if size != 2 or offset != 0:
            # Byte writes were the legacy write path (gone since QEMU 2.4).
            log.debug("fw_cfg: %d-byte write at +%d refused", size, offset)
            return
        with self._lock:
            index = value & FW_CFG_ENTRY_MASK
            self.state = FwCfgState(selected=value if index < MAX_ENTRY else FW_CFG_INVALID)

    # -- internals (lock held)

    def _selected_data(self) -> bytes | None:
        key = self.state.selected
        if key == FW_CFG_INVALID:
            return None
        arch = bool(key & FW_CFG_ARCH_LOCAL)
        index = key & FW_CFG_ENTRY_MASK
        if not arch and index >= FW_CFG_FILE_FIRST:
            i = index - FW_CFG_FILE_FIRST
            return self._files[i][1] if i < len(self._files) else None
        return self._items.get((arch, index))

    def _write_directory(self) -> None:
        # Sized for every slot, as QEMU allocates it; unused entries are 0.
        blob = bytearray(4 + _FILE_ENTRY.size * FILE_SLOTS)
        struct.pack_into(">I", blob, 0, len(self._files))
        for i, (name, data) in enumerate(self._files):
            _FILE_ENTRY.pack_into(blob, 4 + i * _FILE_ENTRY.size, len(data),
                                  FW_CFG_FILE_FIRST + i, 0, name.encode())
        self._items[(False, FW_CFG_FILE_DIR)] = bytes(blob)

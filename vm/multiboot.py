"""Checks on a Multiboot v1 kernel before the machine starts.

The firmware loads the kernel (it gets the raw file through fw_cfg, as
QEMU's ``-kernel`` does); the command line only wants to refuse a file the
firmware could not boot, with one sentence instead of a guest-side panic,
and to know how much RAM the kernel needs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MULTIBOOT_MAGIC = 0x1BADB002
MULTIBOOT_SEARCH = 8192
MB_AOUT_KLUDGE = 1 << 16
ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1


class KernelError(ValueError):
    """The kernel file cannot be booted; the message is one sentence."""


@dataclass(frozen=True)
class KernelInfo:
    header_offset: int
    flags: int
    load_end: int  # highest physical address the image occupies


def inspect_kernel(data: bytes, name: str = "kernel") -> KernelInfo:
    """Find the Multiboot header and the image's extent; raises KernelError."""
    if not data:
        raise KernelError(f"{name} is empty")
    for off in range(0, min(len(data), MULTIBOOT_SEARCH) - 11, 4):
        magic, flags, checksum = struct.unpack_from("<III", data, off)
        if magic == MULTIBOOT_MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
            return KernelInfo(off, flags, _load_end(data, off, flags, name))
    raise KernelError(f"{name} is not a Multiboot kernel (no Multiboot header in its "
                      f"first {MULTIBOOT_SEARCH} bytes)")


def _load_end(data: bytes, off: int, flags: int, name: str) -> int:
    if flags & MB_AOUT_KLUDGE:
        if off + 32 > len(data):
            raise KernelError(f"{name} has a truncated Multiboot header")
        _, load_addr, load_end, bss_end, _ = struct.unpack_from("<IIIII", data, off + 12)
        end = max(bss_end, load_end) or load_addr + len(data) - off
        return end
    if data[:4] != ELF_MAGIC:
        raise KernelError(f"{name} is neither an ELF file nor a Multiboot kernel "
                          f"with load addresses")
    if data[4] != 1 or data[5] != 1:
        raise KernelError(f"{name} is not a 32-bit little-endian ELF file")
    phoff, = struct.unpack_from("<I", data, 28)
    phentsize, phnum = struct.unpack_from("<HH", data, 42)
    end = 0
    for i in range(phnum):
        pos = phoff + i * phentsize
        if pos + 32 > len(data):
            raise KernelError(f"{name} has a truncated ELF program header table")
        p_type, _, _, p_paddr, _, p_memsz = struct.unpack_from("<IIIIII", data, pos)
        if p_type == PT_LOAD and p_memsz:
            end = max(end, p_paddr + p_memsz)
    if not end:
        raise KernelError(f"{name} has no loadable ELF segments")
    return end

"""Host memory behind guest-visible RAM: the machine's RAM and device BARs.

It is an anonymous mapping, zero-filled and page aligned (Unicorn maps it
with ``mem_map_ptr``), that asks the kernel for transparent huge pages, as
QEMU does for its RAM blocks.  On a host whose THP setting is ``madvise``
(Debian's default) plain allocations get 4 KiB pages only, and then every
frame the display worker reads from a BAR, and every page the vCPU writes
it to, costs hundreds of TLB misses more than it does under QEMU.
"""

from __future__ import annotations

import mmap

import numpy as np

HUGE_PAGE = 2 << 20


def guest_memory(size: int) -> np.ndarray:
    """``size`` zeroed bytes as a writable uint8 array, 4 KiB aligned and
    backed by huge pages where the kernel allows it.  Raises MemoryError
    when the host cannot give that much."""
    if size <= 0:
        raise ValueError(f"guest memory of {size} bytes")
    try:
        mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                        prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError as exc:  # ENOMEM: what numpy would report as MemoryError
        raise MemoryError(f"cannot map {size} bytes: {exc.strerror}") from exc
    if size >= HUGE_PAGE and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            mem.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass  # THP disabled or unsupported: ordinary pages then
    # the array keeps the mapping alive (numpy holds the buffer's exporter)
    return np.frombuffer(mem, dtype=np.uint8)

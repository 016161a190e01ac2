"""Stopping Unicorn at a translation-block boundary, from any thread.

Why not ``uc.emu_stop()``: Unicorn 2.1 emits an exit-request check after
*every* guest memory load and store, not only at the start of a
translation block as QEMU does.  When a stop request is seen in the middle
of a block, Unicorn rewinds EIP to the start of that block, although the
instructions before the load or store have already run; the next
``emu_start`` runs them again.  So ``emu_stop()`` called from another
thread (or from an I/O hook, with loads later in the same block)
re-executes guest instructions: a loop computes the wrong result, an
``out`` to the serial port prints its byte twice.  (Unicorn's own
``timeout`` stop has the same fault: upstream issue #1355.)

What we do instead: one ``UC_HOOK_BLOCK`` hook for every block.  Unicorn
calls block hooks at the start of each block, before the block's own exit
check and before any of its instructions, so a stop made there is exact.
With a single block hook Unicorn compiles a direct call to its callback
into every block, so the callback must be native code: a numba ``cfunc``
that reads a two-word state array:

* ``state[0]`` -- set to 1 by :meth:`BlockStop.arm` (any thread);
* ``state[1]`` -- how many times the hook has stopped the engine.

The callback clears ``state[0]``, counts, and calls ``uc_emu_stop``.  The
count tells the vCPU whether an ``emu_start`` ended by our stop or by
something else (``hlt``).

Cost: one native call per executed block (about 30 % on a tight loop of
seven instructions, less on ordinary code); no Python runs on that path.
Two block hooks would make Unicorn use its generic dispatcher instead,
which costs three times as much.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import numpy as np
from unicorn import UC_HOOK_BLOCK, Uc, UcError
from unicorn.unicorn_py3.unicorn import uc_hook_h, uclib

_HOOK_ALL_BEGIN, _HOOK_ALL_END = 1, 0  # begin > end: every address


@functools.cache
def _callback_address() -> int:
    # Compiled once per process: the cfunc calls uc_emu_stop through its
    # address in this process, so it is not cached on disk.
    from numba import cfunc, types

    uc_emu_stop: Callable[[int], int] = uclib.uc_emu_stop
    signature = types.void(types.voidptr, types.uint64, types.uint32, types.CPointer(types.int32))

    @cfunc(signature)
    def block_hook(uc, address, size, state):  # type: ignore[no-untyped-def]
        if state[0] != 0:
            state[0] = 0
            state[1] += 1
            uc_emu_stop(uc)

    return int(block_hook.address)


class BlockStop:
    """Arm to make the running (or the next) ``emu_start`` return at the
    next block start."""

    def __init__(self, uc: Uc) -> None:
        self.state = np.zeros(2, dtype=np.int32)
        handle = uc_hook_h()
        status = uclib.uc_hook_add(uc._uch, ctypes.byref(handle), UC_HOOK_BLOCK,
                                   ctypes.c_void_p(_callback_address()),
                                   ctypes.c_void_p(self.state.ctypes.data),
                                   ctypes.c_uint64(_HOOK_ALL_BEGIN), ctypes.c_uint64(_HOOK_ALL_END))
        if status:
            raise UcError(status)
        self._handle = handle

    def arm(self) -> None:
        """Any thread: an aligned 4-byte store the hook reads."""
        self.state[0] = 1

    def disarm(self) -> None:
        self.state[0] = 0

    @property
    def stops(self) -> int:
        """How many times the hook has stopped the engine."""
        return int(self.state[1])

"""isa-debug-exit: writes of any width end the machine with (v << 1) | 1."""

from __future__ import annotations

import pytest

from devices.bus import IOPortSpace
from devices.debugexit import DebugExit


@pytest.fixture
def setup() -> tuple[IOPortSpace, list[int]]:
    io = IOPortSpace()
    codes: list[int] = []
    DebugExit(io, codes.append)
    return io, codes


@pytest.mark.parametrize("port,size,value,status", [
    (0xF4, 1, 0x00, 1),
    (0xF4, 1, 0x10, 0x21),
    (0xF5, 1, 0x01, 3),       # any port of the window
    (0xF4, 2, 0x1234, 0x2469),
    (0xF4, 4, 0x7FFFFFFF, 0xFFFFFFFF),
])
def test_write_exits_with_shifted_status(setup, port, size, value, status) -> None:
    io, codes = setup
    io.write(port, size, value)
    assert codes == [status]


def test_reads_are_zero_and_do_not_exit(setup) -> None:
    io, codes = setup
    assert io.read(0xF4, 1) == 0
    assert io.read(0xF6, 2) == 0
    assert codes == []


def test_window_bounds() -> None:
    io = IOPortSpace()
    codes: list[int] = []
    DebugExit(io, codes.append, iobase=0x501, iosize=2)
    io.write(0x503, 1, 5)  # outside the window: unclaimed
    assert codes == []
    io.write(0x502, 1, 5)
    assert codes == [11]

"""Client input through the server into the real i8042, read back from its
ports as the guest would."""

from __future__ import annotations

import struct
import time

import pytest
from spice_client import Session

from devices.bus import IOPortSpace
from devices.i8042 import I8042
from spice.eventloop import LoopThread
from spice.options import SpiceOptions
from spice.protocol import ChannelType, MsgCInputs
from spice.server import SpiceServer
from tests.clocks import RecordingIrq


class Machine:
    def __init__(self) -> None:
        self.ports = IOPortSpace()
        self.irq1, self.irq12 = RecordingIrq(), RecordingIrq()
        self.kbc = I8042(self.ports, self.irq1, self.irq12, on_reset=lambda: None)
        self.core = LoopThread("test-core").start()
        self.server = self.core.call(
            lambda: SpiceServer(self.core.loop, SpiceOptions(port=0, disable_ticketing=True)))
        self.core.call(lambda: (self.server.add_kbd(self.kbc), self.server.add_mouse(self.kbc)))
        self.kbc.on_leds = self.server.kbd_leds
        self.core.call(self.server.start)

    def guest_read(self, timeout: float = 5.0) -> tuple[int, bool]:
        """Wait for the output buffer; returns (byte, from the mouse)."""
        deadline = time.monotonic() + timeout
        while not self.ports.read(0x64, 1) & 0x01:
            assert time.monotonic() < deadline, "nothing arrived at port 0x60"
            time.sleep(0.002)
        status = self.ports.read(0x64, 1)
        return self.ports.read(0x60, 1), bool(status & 0x20)

    def close(self) -> None:
        self.core.call(self.server.close)
        self.core.stop()


@pytest.fixture
def m():
    machine = Machine()
    yield machine
    machine.close()


def test_keys_and_mouse_reach_the_guest_ports(m):
    m.ports.write(0x64, 1, 0x60)  # write command byte:
    m.ports.write(0x60, 1, 0x47)  # kbd+aux interrupts, system flag, set-1 translation
    m.ports.write(0x64, 1, 0xD4)  # to the mouse:
    m.ports.write(0x60, 1, 0xF4)  # enable data reporting
    assert m.guest_read() == (0xFA, True)  # ack
    s = Session("127.0.0.1", m.server.port)
    ch = s.open(ChannelType.INPUTS)
    ch.send(MsgCInputs.KEY_DOWN, struct.pack("<I", 0x1E))
    ch.send(MsgCInputs.KEY_UP, struct.pack("<I", 0x9E))
    assert m.guest_read() == (0x1E, False)
    assert m.guest_read() == (0x9E, False)
    assert m.irq1.rises >= 2
    ch.send(MsgCInputs.MOUSE_MOTION, struct.pack("<iiH", 5, 3, 1))  # left button held
    packet = [m.guest_read() for _ in range(3)]
    assert all(aux for _, aux in packet)
    flags, dx, dy = (b for b, _ in packet)
    assert flags & 0x01 and flags & 0x08  # left button, always-one bit
    assert dx == 5 and (dy - 256 if flags & 0x20 else dy) == -3  # PS/2 y grows upward
    assert m.irq12.rises >= 1
    s.close()

"""VDIPort: the agent byte stream between a guest (driving the BARs like the
old agent driver) and the server (through CharDeviceInterface), with the
generation rule, interrupts and back-pressure."""

from __future__ import annotations

import logging
import threading

import numpy as np
from unicorn import UC_ARCH_X86, UC_MODE_32, Uc

from devices.bus import IOPortSpace
from devices.pci import PCIBus
from devices.vdiport import VDIPortDevice
from tests.clocks import ManualClock, RecordingIrq
from vm.memory import GuestMemory

IO_BASE = 0xC100
RAM_BASE = 0xF0000000
IRQ = 10
INPUT, OUTPUT = RAM_BASE + 16, RAM_BASE + 16 + 20 + 32 * 512


class Handle:
    """The server side of the char device: records what it is told."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def wakeup(self) -> None:
        self.events.append("wakeup")

    def port_event(self, opened: bool) -> None:
        self.events.append("open" if opened else "close")


class Guest:
    def __init__(self) -> None:
        self.uc = Uc(UC_ARCH_X86, UC_MODE_32)
        self.memory = GuestMemory(self.uc)
        self.io = IOPortSpace()
        self.irqs = {n: RecordingIrq() for n in range(16)}
        self.bus = PCIBus(self.io, self.memory, lambda n: self.irqs[n])
        self.clock = ManualClock()
        self.dev = VDIPortDevice(self.clock)
        self.devfn = self.bus.plug(self.dev)
        self.handle = Handle()
        self.dev.attach(self.handle)
        self.cfg(0x10, IO_BASE)
        self.cfg(0x14, RAM_BASE)
        self.cfg(0x04, 0x3)
        self.cfg(0x60 + (((self.devfn >> 3) - 1) & 3), IRQ, size=1, devfn=0x08)

    def cfg(self, reg: int, value: int, size: int = 4, devfn: int | None = None) -> None:
        devfn = self.devfn if devfn is None else devfn
        self.io.write(0xCF8, 4, 0x80000000 | devfn << 8 | reg & 0xFC)
        self.io.write(0xCFC + (reg & 3), size, value)

    def cfg_read(self, reg: int, size: int = 4) -> int:
        self.io.write(0xCF8, 4, 0x80000000 | self.devfn << 8 | reg & 0xFC)
        return self.io.read(0xCFC + (reg & 3), size)

    @property
    def irq(self) -> RecordingIrq:
        return self.irqs[IRQ]

    def events(self) -> list[str]:
        """Let the main loop deliver queued events; return and clear them."""
        self.clock.advance(0)
        out, self.handle.events = self.handle.events, []
        return out

    def u32(self, addr: int, value: int | None = None) -> int:
        if value is not None:
            self.memory.write(addr, np.uint32(value & 0xFFFFFFFF).tobytes())
        return int(np.frombuffer(self.memory.read(addr, 4), "<u4")[0])

    def connect(self) -> int:
        return self.io.read(IO_BASE, 4)

    def ring(self, base: int) -> tuple[int, ...]:
        return tuple(int(v) for v in np.frombuffer(self.memory.read(base, 20), "<u4"))

    # the agent driver's side of the rings
    def send(self, data: bytes, gen: int | None = None, notify: bool = True) -> None:
        gen = self.u32(RAM_BASE + 4) if gen is None else gen
        for i in range(0, len(data), 504):
            piece = data[i:i + 504]
            self.send_packet(gen, len(piece), piece)
        if notify:
            self.io.write(IO_BASE + 4, 4, 0)

    def send_packet(self, gen: int, size: int, data: bytes) -> None:
        _, prod, _, cons, _ = self.ring(INPUT)
        assert prod - cons < 32
        slot = INPUT + 20 + (prod % 32) * 512
        self.memory.write(slot, np.array([gen, size], "<u4").tobytes() + data)
        self.u32(INPUT + 4, prod + 1)

    def receive(self) -> tuple[bytes, list[int]]:
        """Drain the output ring; returns the bytes and the packet generations."""
        data, gens = b"", []
        while True:
            _, prod, _, cons, notify_on_cons = self.ring(OUTPUT)
            if prod == cons:
                return data, gens
            slot = OUTPUT + 20 + (cons % 32) * 512
            gen, size = np.frombuffer(self.memory.read(slot, 8), "<u4")
            gens.append(int(gen))
            data += self.memory.read(slot + 8, int(size))
            self.u32(OUTPUT + 12, cons + 1)
            if cons + 1 == notify_on_cons:  # the host waits for room
                self.io.write(IO_BASE + 4, 4, 0)


def test_identity_bars_and_ram():
    g = Guest()
    assert g.cfg_read(0x00) == 0x0105_1B36
    assert g.cfg_read(0x08) == 0x07800001  # class communication/other, revision 1
    assert g.cfg_read(0x3C) >> 8 & 0xFF == 1
    g.cfg(0x10, 0xFFFFFFFF)
    assert (~g.cfg_read(0x10) | 3) & 0xFFFF == 15  # 16 I/O ports
    g.cfg(0x10, IO_BASE)
    g.cfg(0x14, 0xFFFFFFFF)
    assert (~g.cfg_read(0x14) & 0xFFFFFFFF) + 1 & ~0xF == 64 * 1024
    g.cfg(0x14, RAM_BASE)
    assert g.memory.read(RAM_BASE, 4) == b"VDIP"
    assert g.u32(RAM_BASE + 4) == 0
    assert g.ring(INPUT) == (32, 0, 1, 0, 0) == g.ring(OUTPUT)
    assert g.dev.subtype == "vdagent"


def test_connection_and_generations():
    g = Guest()
    assert g.connect() == 1
    assert g.events() == ["open", "wakeup"]
    assert g.connect() == 0  # already connected
    g.io.write(IO_BASE, 4, 0)
    assert g.events() == ["close"]
    assert g.connect() == 2 == g.u32(RAM_BASE + 4)
    g.io.write(IO_BASE, 4, 0)
    g.u32(RAM_BASE + 4, 0xFFFFFFFF)
    assert g.connect() == 1  # the generation is never 0
    assert g.io.read(IO_BASE + 4, 4) == 0xFFFFFFFF
    assert g.io.read(IO_BASE, 2) == 0xFFFF  # not a dword access


def test_guest_to_host_stream():
    g = Guest()
    g.connect()
    g.events()
    message = bytes(range(256)) * 5  # 1280 bytes: three packets
    g.send(message)
    assert g.events() == ["wakeup"]
    got = g.dev.read(100) + g.dev.read(1000) + g.dev.read(5000)
    assert got == message
    assert g.dev.read(10) == b""
    assert g.ring(INPUT)[2] == g.ring(INPUT)[1] + 1  # doorbell armed when dry


def test_stale_and_oversized_packets_are_dropped(caplog):
    g = Guest()
    g.connect()
    g.send_packet(7, 3, b"old")  # another generation
    g.send_packet(1, 600, b"")  # larger than a packet can be
    g.send(b"fresh")
    with caplog.at_level(logging.WARNING):
        assert g.dev.read(100) == b"fresh"
    assert "600 bytes" in caplog.text


def test_host_to_guest_with_back_pressure():
    g = Guest()
    g.connect()
    g.events()
    g.u32(RAM_BASE + 12, 1)  # unmask
    payload = bytes((i * 31) & 0xFF for i in range(40 * 504 + 17))
    sent = g.dev.write(payload)
    assert sent == 32 * 504  # the ring is full: the rest waits
    assert g.irq.level  # the first packet hit notify_on_prod = 1
    assert g.ring(OUTPUT)[4] == g.ring(OUTPUT)[3] + 1  # waiting for room
    data, gens = g.receive()
    assert g.events() == ["wakeup"]  # the guest's NOTIFY after making room
    sent += g.dev.write(payload[sent:])
    more, gens2 = g.receive()
    assert sent == len(payload) and data + more == payload
    assert set(gens + gens2) == {1}


def test_interrupt_rules():
    g = Guest()
    g.connect()
    g.dev.write(b"x")  # mask 0: pending but the line stays low
    assert g.u32(RAM_BASE + 8) == 1 and not g.irq.level
    g.u32(RAM_BASE + 12, 1)
    g.io.write(IO_BASE + 8, 4, 0)  # UPDATE_IRQ
    assert g.irq.level
    g.u32(RAM_BASE + 8, 0)
    g.io.write(IO_BASE + 8, 4, 0)
    assert not g.irq.level
    # the guest waits for its input to be taken: popping rings its doorbell
    g.send(b"abc")
    g.u32(INPUT + 16, g.ring(INPUT)[3] + 1)
    g.dev.read(3)
    assert g.irq.level


def test_consumer_leaving_starts_a_new_generation():
    g = Guest()
    g.connect()
    g.u32(RAM_BASE + 12, 1)
    g.send(b"half a mess")
    assert g.dev.read(4) == b"half"
    g.dev.state(False)
    assert g.u32(RAM_BASE + 4) == 2 and g.irq.level
    assert g.dev.read(100) == b""  # the rest belonged to the old session
    g.send(b"new")
    g.dev.state(True)
    assert g.dev.read(100) == b"new"
    g.dev.write(b"hello")
    assert g.receive() == (b"hello", [2])


def test_disconnected_port_neither_reads_nor_writes():
    g = Guest()
    assert g.dev.write(b"data") == 0
    g.io.write(IO_BASE + 4, 4, 0)
    assert g.events() == []  # NOTIFY while disconnected is ignored


def test_reset():
    g = Guest()
    g.connect()
    g.send(b"x", notify=False)
    g.events()
    g.bus.reset()
    assert g.events() == ["close"]
    g.cfg(0x10, IO_BASE)
    g.cfg(0x14, RAM_BASE)
    g.cfg(0x04, 0x3)
    assert g.memory.read(RAM_BASE, 4) == b"VDIP"
    assert g.connect() == 1  # disconnected by the reset; the generation restarts
    g.io.write(IO_BASE, 4, 0)
    assert g.ring(INPUT) == (32, 0, 1, 0, 0)


def _read_with_deadline(dev: VDIPortDevice, n: int, seconds: float = 5.0) -> bytes:
    """``dev.read(n)`` on another thread; fails if it does not return in time
    (the server calls it on the main loop: it must never spin)."""
    box: list[bytes] = []
    t = threading.Thread(target=lambda: box.append(dev.read(n)), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "read() is still running: a guest can stall the main loop"
    return box[0]


def test_producer_index_far_beyond_the_ring_is_a_guest_bug_not_a_hang(caplog):
    g = Guest()
    g.connect()
    _, prod, _, _, _ = g.ring(INPUT)
    g.u32(INPUT + 4, prod + 0x7FFFFFFF)  # claims two billion packets in a 32-slot ring
    with caplog.at_level(logging.WARNING):
        assert _read_with_deadline(g.dev, 100) == b""
    assert "guest bug" in caplog.text
    # the ring is usable again from where the guest's producer index is
    g.send(b"after")
    assert g.dev.read(100) == b"after"


def test_empty_packets_are_consumed_a_ring_at_a_time():
    g = Guest()
    g.connect()
    gen = g.u32(RAM_BASE + 4)
    for _ in range(32):
        g.send_packet(gen, 0, b"")
    assert _read_with_deadline(g.dev, 100) == b""
    assert g.ring(INPUT)[3] == g.ring(INPUT)[1]  # all 32 taken
    g.send(b"next")
    assert g.dev.read(100) == b"next"

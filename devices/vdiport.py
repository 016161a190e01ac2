"""VDIPort: the legacy PCI transport of the SPICE guest agent (PCI 1b36:0105
revision 1), as spice-protocol's ``spice/vdi_dev.h`` declared it and the
old qemu-kvm device behaved.

It carries the agent's byte stream (VDIChunkHeader + VDAgentMessage, the
same stream virtio-serial carries today) between the guest and the server,
which sees it through ``spice.interfaces.CharDeviceInterface`` (subtype
``vdagent``).

BAR0 -- I/O, 16 ports (12 used), 32-bit accesses only:

======  ===========  =============================================================
offset  name         behaviour
======  ===========  =============================================================
0       CONNECTION   read: the agent connects -- the generation is bumped (never
                     0) and returned, and the server is told the port opened;
                     0 if already connected.  write: the agent disconnects.
4       NOTIFY       write: the guest added input or made room (ignored while
                     disconnected); wakes the server.
8       UPDATE_IRQ   write: INTx level := int_pending & int_mask.
======  ===========  =============================================================

BAR1 -- memory, 64 KiB (VDIPortRam is 32952 bytes; the BAR is the power of
two above it, as qemu-kvm sized it), little-endian, packed:

======  =====  ==================================================================
offset  size   field
======  =====  ==================================================================
0       4      magic "VDIP" (0x50494456)
4       4      generation
8       4      int_pending (bit 0: VDI_PORT_INTERRUPT)
12      4      int_mask
16      16404  input ring, guest -> host: num_items, prod, notify_on_prod,
               cons, notify_on_cons (u32 each), then 32 packets
16420   16404  output ring, host -> guest, same layout
32824   128    reserved, u32[32]
======  =====  ==================================================================

A packet is 512 bytes: ``gen`` (u32), ``size`` (u32), ``data[504]``.  The
rings follow spice/ipc_ring.h (prod/cons counters, notify_on_prod /
notify_on_cons doorbells).

Generations: every packet is stamped with the generation current when it
was written.  The generation changes when the agent connects and when the
server-side consumer goes away (``state(False)``); the host drops input
packets of another generation, so nothing of an old session leaks into a
new one, and the guest is interrupted so it can do the same.

Flow control: ``write`` takes what fits in the output ring and returns the
count (0 when full); the guest's NOTIFY after it consumed packets wakes the
server to write the rest.  ``read`` arms the input ring's doorbell when it
runs dry.  Nothing is dropped for lack of room.

Events for the server (port opened/closed, wake-ups) are delivered in order
on the main loop thread through a zero-delay timer.
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np

from devices.bus import Clock
from devices.pci import Bar, BarKind, PCIDevice
from spice.interfaces import CharDeviceHandle

log = logging.getLogger(__name__)

VENDOR_REDHAT = 0x1B36
DEVICE_VDIPORT = 0x0105
REVISION = 1
CLASS_COMM_OTHER = 0x078000

MAGIC = 0x50494456  # "VDIP"
INTERRUPT = 1 << 0
IO_CONNECTION, IO_NOTIFY, IO_UPDATE_IRQ = 0, 4, 8
IO_BAR_SIZE = 16
RAM_BAR_SIZE = 64 * 1024

PACKET_SIZE = 512
PACKET_DATA = PACKET_SIZE - 8
RING_SLOTS = 32
RING_BYTES = 20 + RING_SLOTS * PACKET_SIZE
INPUT_RING = 16
OUTPUT_RING = INPUT_RING + RING_BYTES
RAM_SIZE = OUTPUT_RING + RING_BYTES + 128
NUM_ITEMS, PROD, NOTIFY_ON_PROD, CONS, NOTIFY_ON_CONS = range(5)
_M32 = 0xFFFFFFFF


class _Ring:
    """A VDIPortRing over the RAM BAR (the same ipc_ring.h rules as QXL's)."""

    def __init__(self, ram: np.ndarray, offset: int) -> None:
        self.ram = ram
        self.offset = offset
        self.u32 = ram[offset:offset + 20].view("<u4")

    def init(self) -> None:
        self.u32[:] = (RING_SLOTS, 0, 1, 0, 0)

    def get(self, i: int) -> int:
        return int(self.u32[i])

    def empty(self) -> bool:
        return self.get(CONS) == self.get(PROD)

    def used(self) -> int:
        return (self.get(PROD) - self.get(CONS)) & _M32

    def full(self) -> bool:
        return self.used() >= RING_SLOTS

    def packet(self, counter: int) -> int:
        """Byte offset of the packet at ``prod`` or ``cons``.  The index uses
        the real slot count, not the guest-writable num_items."""
        return self.offset + 20 + (self.get(counter) % RING_SLOTS) * PACKET_SIZE

    def pop(self) -> bool:
        cons = (self.get(CONS) + 1) & _M32
        self.u32[CONS] = cons
        return cons == self.get(NOTIFY_ON_CONS)

    def push(self) -> bool:
        prod = (self.get(PROD) + 1) & _M32
        self.u32[PROD] = prod
        return prod == self.get(NOTIFY_ON_PROD)

    def cons_wait(self) -> bool:
        if self.empty():
            self.u32[NOTIFY_ON_PROD] = (self.get(PROD) + 1) & _M32
            return self.empty()
        return False

    def prod_wait(self) -> bool:
        if self.full():
            self.u32[NOTIFY_ON_CONS] = (self.get(CONS) + 1) & _M32
            return self.full()
        return False


class _IOBar:
    def __init__(self, device: VDIPortDevice) -> None:
        self._device = device

    def io_read(self, offset: int, size: int) -> int:
        if size == 4 and offset == IO_CONNECTION:
            return self._device._connect()
        return (1 << (8 * size)) - 1

    def io_write(self, offset: int, size: int, value: int) -> None:
        if size != 4:
            return
        handler = {IO_CONNECTION: self._device._disconnect, IO_NOTIFY: self._device._notify,
                   IO_UPDATE_IRQ: self._device._update_irq}.get(offset)
        if handler is not None:
            handler()


class VDIPortDevice(PCIDevice):
    """The VDIPort PCI function; also the server's ``CharDeviceInterface``."""

    subtype = "vdagent"

    def __init__(self, clock: Clock) -> None:
        super().__init__("vdiport", VENDOR_REDHAT, DEVICE_VDIPORT, CLASS_COMM_OTHER,
                         revision=REVISION, subsystem_vendor_id=0x1AF4, subsystem_id=0x1100,
                         interrupt_pin=1)
        self.clock = clock
        raw = np.zeros(RAM_BAR_SIZE + 4096, np.uint8)
        start = -raw.ctypes.data % 4096
        self.ram = raw[start:start + RAM_BAR_SIZE]
        self._u32 = self.ram[:16].view("<u4")  # magic, generation, int_pending, int_mask
        self.input = _Ring(self.ram, INPUT_RING)
        self.output = _Ring(self.ram, OUTPUT_RING)
        self.add_bar(0, Bar(BarKind.IO, IO_BAR_SIZE, io=_IOBar(self)))
        self.add_bar(1, Bar(BarKind.MEM32, RAM_BAR_SIZE, array=self.ram))
        self._lock = threading.Lock()
        self._handle: CharDeviceHandle | None = None
        self._events: collections.deque[tuple[str, bool]] = collections.deque()
        self._event_timer = clock.new_timer(self._deliver_events)
        self._bad_packets_logged = 0
        self.connected = False
        self._read_pos = 0
        self._reset_state()

    # -- state
    def _reset_state(self) -> None:
        with self._lock:
            self.ram[:RAM_SIZE] = 0
            self.input.init()
            self.output.init()
            self._u32[0] = MAGIC
            self.connected = False
            self._read_pos = 0

    def reset(self) -> None:
        """Machine reset: RAM cleared, rings and magic re-initialised,
        disconnected (the server is told the port closed)."""
        was_connected = self.connected
        super().reset()
        self._reset_state()
        if was_connected:
            self._post("port", False)

    @property
    def generation(self) -> int:
        return int(self._u32[1])

    def _new_generation(self) -> None:
        gen = (self.generation + 1) & _M32
        self._u32[1] = gen or 1

    def _notify_guest(self) -> None:
        """Raise VDI_PORT_INTERRUPT (only while the agent is connected)."""
        if not self.connected:
            return
        pending = int(self._u32[2])
        if pending & INTERRUPT:
            return
        self._u32[2] = pending | INTERRUPT
        self.set_irq(bool((pending | INTERRUPT) & int(self._u32[3])))

    # -- ports (vCPU thread)
    def _connect(self) -> int:
        with self._lock:
            if self.connected:
                log.debug("vdiport: CONNECTION read while connected")
                return 0
            self._new_generation()
            self.connected = True
            self._read_pos = 0
            gen = self.generation
        self._post("port", True)
        self._post("wakeup", True)  # the server may have output waiting
        return gen

    def _disconnect(self) -> None:
        with self._lock:
            if not self.connected:
                return
            self.connected = False
        self._post("port", False)

    def _notify(self) -> None:
        if self.connected:
            self._post("wakeup", True)

    def _update_irq(self) -> None:
        with self._lock:
            self.set_irq(bool(int(self._u32[2]) & int(self._u32[3])))

    # -- events to the server, in order, on the main loop
    def _post(self, kind: str, value: bool) -> None:
        with self._lock:
            self._events.append((kind, value))
        self._event_timer.start_ns(self.clock.now_ns())

    def _deliver_events(self) -> None:
        while True:
            with self._lock:
                if not self._events:
                    return
                kind, value = self._events.popleft()
            handle = self._handle
            if handle is None:
                continue
            if kind == "port":
                handle.port_event(value)
            else:
                handle.wakeup()

    # -- CharDeviceInterface (main loop thread)
    def attach(self, handle: CharDeviceHandle) -> None:
        self._handle = handle
        if self.connected:
            self._post("port", True)

    def state(self, connected: bool) -> None:
        """The server-side consumer came or went.  When it goes, a new
        generation starts, so the guest and the next consumer drop whatever
        half-sent message of this session is still in the rings."""
        if connected:
            return
        with self._lock:
            self._read_pos = 0
            self._new_generation()
            self._notify_guest()

    def write(self, data: bytes) -> int:
        """Host -> guest: as many bytes as fit in the output ring."""
        view = memoryview(bytes(data))
        written = 0
        notify = False
        with self._lock:
            if not self.connected:
                return 0
            gen = self.generation
            while written < len(view):
                if self.output.prod_wait():
                    break
                off = self.output.packet(PROD)
                chunk = view[written:written + PACKET_DATA]
                self.ram[off:off + 8].view("<u4")[:] = (gen, len(chunk))
                self.ram[off + 8:off + 8 + len(chunk)] = np.frombuffer(chunk, np.uint8)
                notify |= self.output.push()
                written += len(chunk)
            if notify:
                self._notify_guest()
        return written

    def read(self, max_bytes: int) -> bytes:
        """Guest -> host: up to ``max_bytes`` of the current generation."""
        out: list[bytes] = []
        want = max_bytes
        notify = False
        with self._lock:
            if not self.connected:
                return b""
            if self.input.used() > RING_SLOTS:
                # The guest's producer index claims more packets than the ring
                # holds; walking them would stall the main loop for hours.
                self._log_guest_bug("input ring prod %d cons %d is more than %d packets "
                                    "ahead; its contents are dropped", self.input.get(PROD),
                                    self.input.get(CONS), RING_SLOTS)
                self.input.u32[CONS] = self.input.get(PROD)
                self._read_pos = 0
                return b""
            gen = self.generation
            # A ring holds RING_SLOTS packets: looking at more in one call
            # would only chase a guest that keeps refilling it.
            budget = RING_SLOTS
            while want > 0 and budget > 0:
                if self.input.cons_wait():
                    break
                off = self.input.packet(CONS)
                pgen, size = (int(v) for v in self.ram[off:off + 8].view("<u4"))
                if pgen != gen or size > PACKET_DATA:
                    if size > PACKET_DATA:
                        self._log_guest_bug("input packet of %d bytes (at most %d); "
                                            "dropped", size, PACKET_DATA)
                    self._read_pos = 0
                    notify |= self.input.pop()
                    budget -= 1
                    continue
                start = off + 8 + self._read_pos
                now = min(want, size - self._read_pos)
                out.append(self.ram[start:start + now].tobytes())
                want -= now
                self._read_pos += now
                if self._read_pos >= size:
                    self._read_pos = 0
                    notify |= self.input.pop()
                    budget -= 1
            if notify:
                self._notify_guest()
        return b"".join(out)

    def _log_guest_bug(self, message: str, *args: object) -> None:
        if self._bad_packets_logged < 16:
            self._bad_packets_logged += 1
            log.warning("vdiport: guest bug: " + message, *args)

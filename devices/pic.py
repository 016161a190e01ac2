"""The PC's two cascaded 8259A programmable interrupt controllers.

Master at ports 0x20/0x21 (IRQ 0-7), slave at 0xA0/0xA1 (IRQ 8-15) wired
to the master's IRQ2, and the PIIX edge/level control registers (ELCR) at
0x4D0/0x4D1.  The CPU side is :meth:`PICPair.has_interrupt` (the INTR pin)
and :meth:`PICPair.acknowledge` (the INTA cycle that yields the vector).

Behaviour follows the 8259A data sheet as QEMU models it (i8259.c): edge
inputs latch a rising edge into IRR, level inputs (per ELCR) follow the
line, priorities rotate through ``priority_add``, and an acknowledge with
no request left yields the spurious vector of IRQ 7 (or 15 on the slave)
without touching ISR.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from devices.bus import IOPortSpace
from devices.byteports import BytePortTable

log = logging.getLogger(__name__)

# ICW1 / OCW2 / OCW3 bits on the command port.
ICW1_INIT = 0x10
ICW1_LTIM = 0x08
ICW1_SINGLE = 0x02
ICW1_IC4 = 0x01
OCW3_SELECT = 0x08
OCW3_POLL = 0x04
OCW3_READ_REG = 0x02
OCW3_READ_ISR = 0x01
OCW3_SMM_WRITE = 0x40
OCW3_SMM = 0x20
ICW4_SFNM = 0x10
ICW4_AEOI = 0x02

# On the PIIX the ELCR bits of IRQ 0, 1, 2 (master) and 8, 13 (slave) are
# hard-wired to edge.
ELCR_MASK_MASTER = 0xF8
ELCR_MASK_SLAVE = 0xDE

# ICW initialisation sequence states.
_READY, _WAIT_ICW2, _WAIT_ICW3, _WAIT_ICW4 = 0, 1, 2, 3

_NO_IRQ = 8


@dataclass
class ChipState:
    """Registers of one 8259A.  ``line`` is the sampled input levels, used
    for edge detection; ``elcr`` selects level triggering per input."""

    master: bool
    elcr_mask: int
    irr: int = 0
    imr: int = 0
    isr: int = 0
    line: int = 0
    elcr: int = 0
    priority_add: int = 0  # the input with the highest priority
    irq_base: int = 0
    read_isr: bool = False
    poll: bool = False
    special_mask: bool = False
    init_state: int = _READY
    init4: bool = False
    single: bool = False
    auto_eoi: bool = False
    rotate_on_auto_eoi: bool = False
    special_fully_nested: bool = False

    def init_reset(self) -> None:
        """What ICW1 (and power-on) does.  ELCR is a chipset register and
        survives; latched edge requests are dropped, level requests stay."""
        self.line = 0
        self.irr &= self.elcr
        self.imr = self.isr = 0
        self.priority_add = self.irq_base = 0
        self.read_isr = self.poll = self.special_mask = False
        self.init_state = _READY
        self.init4 = self.single = False
        self.auto_eoi = self.rotate_on_auto_eoi = self.special_fully_nested = False

    # -- priority logic

    def priority(self, mask: int) -> int:
        """Priority level (0 = highest) of the best bit in ``mask``, or 8."""
        if mask == 0:
            return _NO_IRQ
        p = 0
        while not mask & (1 << ((p + self.priority_add) & 7)):
            p += 1
        return p

    def pending(self) -> int:
        """The input this chip would interrupt for now, or -1."""
        p = self.priority(self.irr & ~self.imr)
        if p == _NO_IRQ:
            return -1
        in_service = self.isr
        if self.special_mask:
            in_service &= ~self.imr
        if self.special_fully_nested and self.master:
            # The slave may interrupt a slave interrupt in service.
            in_service &= ~(1 << 2)
        if p < self.priority(in_service):
            return (p + self.priority_add) & 7
        return -1

    def set_input(self, irq: int, level: bool) -> None:
        bit = 1 << irq
        if self.elcr & bit:
            if level:
                self.irr |= bit
                self.line |= bit
            else:
                self.irr &= ~bit
                self.line &= ~bit
        elif level:
            if not self.line & bit:
                self.irr |= bit
            self.line |= bit
        else:
            self.line &= ~bit

    def intack(self, irq: int) -> None:
        bit = 1 << irq
        if self.auto_eoi:
            if self.rotate_on_auto_eoi:
                self.priority_add = (irq + 1) & 7
        else:
            self.isr |= bit
        # A level request stays in IRR until the line drops.
        if not self.elcr & bit:
            self.irr &= ~bit


class _Input:
    """One ISA interrupt input of the pair (the :class:`IrqLine` a device
    is given)."""

    def __init__(self, pic: PICPair, irq: int) -> None:
        self._pic = pic
        self._irq = irq

    def set_level(self, level: bool) -> None:
        self._pic.set_irq(self._irq, bool(level))

    def pulse(self) -> None:
        self._pic.set_irq(self._irq, True)
        self._pic.set_irq(self._irq, False)


class PICPair:
    """Master and slave 8259A plus ELCR.  Thread-safe: inputs may change on
    any thread; port access and :meth:`acknowledge` come from the vCPU."""

    def __init__(self, ioports: IOPortSpace, on_intr: Callable[[], None]) -> None:
        self._on_intr = on_intr
        self._lock = threading.Lock()
        self.master = ChipState(master=True, elcr_mask=ELCR_MASK_MASTER)
        self.slave = ChipState(master=False, elcr_mask=ELCR_MASK_SLAVE)
        self._intr = False
        self._inputs = [_Input(self, n) for n in range(16)]
        m, s = self.master, self.slave
        self.ports = {
            0x20: BytePortTable({
                0: (lambda: self._read_port(m, 0), lambda v: self._write_command(m, v)),
                1: (lambda: self._read_port(m, 1), lambda v: self._write_data(m, v)),
            }, 2, "pic-master"),
            0xA0: BytePortTable({
                0: (lambda: self._read_port(s, 0), lambda v: self._write_command(s, v)),
                1: (lambda: self._read_port(s, 1), lambda v: self._write_data(s, v)),
            }, 2, "pic-slave"),
            0x4D0: BytePortTable({
                0: (lambda: self._read_elcr(m), lambda v: self._write_elcr(m, v)),
                1: (lambda: self._read_elcr(s), lambda v: self._write_elcr(s, v)),
            }, 2, "elcr"),
        }
        for base, table in self.ports.items():
            ioports.register(base, table.size, table, table.name)
        self.reset()

    # -- the interface the board and the CPU use

    def irq(self, n: int) -> _Input:
        """The input line for ISA IRQ ``n`` (0..15)."""
        if not 0 <= n < 16:
            raise ValueError(f"ISA IRQ {n} does not exist")
        return self._inputs[n]

    def set_irq(self, n: int, level: bool) -> None:
        with self._lock:
            if n < 8:
                self.master.set_input(n, level)
            else:
                self.slave.set_input(n - 8, level)
                self._cascade()
            kick = self._update()
        if kick:
            self._on_intr()

    def has_interrupt(self) -> bool:
        """The INTR pin: the master has an unmasked request of higher
        priority than anything in service."""
        with self._lock:
            return self._intr

    def acknowledge(self) -> int:
        """The INTA cycle: move the winning request to ISR and return its
        vector.  With nothing left to deliver (the request went away
        between INTR and INTA) the answer is the spurious IRQ 7 / 15
        vector and ISR is left alone."""
        with self._lock:
            m, s = self.master, self.slave
            irq = m.pending()
            if irq < 0:
                vector = m.irq_base + 7
            elif irq == 2 and not m.single:
                irq2 = s.pending()
                if irq2 >= 0:
                    s.intack(irq2)
                else:
                    irq2 = 7  # spurious on the slave
                vector = s.irq_base + irq2
                self._cascade()
                m.intack(2)
            else:
                vector = m.irq_base + irq
                m.intack(irq)
            kick = self._update()
        if kick:
            self._on_intr()
        return vector

    def reset(self) -> None:
        """Power-on: both chips uninitialised, all inputs edge-triggered."""
        with self._lock:
            for chip in (self.master, self.slave):
                chip.elcr = 0
                chip.irr = 0
                chip.init_reset()
            self._intr = False

    # -- internal state propagation (lock held)

    def _cascade(self) -> None:
        """The slave's INT output drives the master's IRQ2 input."""
        self.master.set_input(2, self.slave.pending() >= 0)

    def _update(self) -> bool:
        """Recompute INTR; True when it just went high (kick the CPU)."""
        was = self._intr
        self._intr = self.master.pending() >= 0
        return self._intr and not was

    def _after_register_change(self, chip: ChipState) -> bool:
        if not chip.master:
            self._cascade()
        return self._update()

    # -- ports

    def _read_port(self, chip: ChipState, offset: int) -> int:
        with self._lock:
            kick = False
            if chip.poll:
                # Poll mode: the read is the acknowledge.
                chip.poll = False
                irq = chip.pending()
                if irq >= 0:
                    chip.intack(irq)
                    value = 0x80 | irq
                else:
                    value = 0
                kick = self._after_register_change(chip)
            elif offset == 0:
                value = chip.isr if chip.read_isr else chip.irr
            else:
                value = chip.imr
        if kick:
            self._on_intr()
        return value

    def _write_command(self, chip: ChipState, value: int) -> None:
        with self._lock:
            if value & ICW1_INIT:
                chip.init_reset()
                chip.init_state = _WAIT_ICW2
                chip.init4 = bool(value & ICW1_IC4)
                chip.single = bool(value & ICW1_SINGLE)
                if value & ICW1_LTIM:
                    # The PIIX ignores LTIM: trigger mode comes from ELCR.
                    log.debug("8259: ICW1 LTIM ignored (ELCR decides edge/level)")
            elif value & OCW3_SELECT:
                self._ocw3(chip, value)
            else:
                self._ocw2(chip, value)
            kick = self._after_register_change(chip)
        if kick:
            self._on_intr()

    @staticmethod
    def _ocw3(chip: ChipState, value: int) -> None:
        if value & OCW3_POLL:
            chip.poll = True
        if value & OCW3_READ_REG:
            chip.read_isr = bool(value & OCW3_READ_ISR)
        if value & OCW3_SMM_WRITE:
            chip.special_mask = bool(value & OCW3_SMM)

    @staticmethod
    def _ocw2(chip: ChipState, value: int) -> None:
        cmd = value >> 5
        level = value & 7
        if cmd in (0, 4):  # clear / set rotate in automatic EOI mode
            chip.rotate_on_auto_eoi = cmd == 4
        elif cmd in (1, 5):  # non-specific EOI (5: and rotate)
            p = chip.priority(chip.isr)
            if p != _NO_IRQ:
                irq = (p + chip.priority_add) & 7
                chip.isr &= ~(1 << irq)
                if cmd == 5:
                    chip.priority_add = (irq + 1) & 7
        elif cmd == 3:  # specific EOI
            chip.isr &= ~(1 << level)
        elif cmd == 6:  # set priority: ``level`` becomes the lowest
            chip.priority_add = (level + 1) & 7
        elif cmd == 7:  # specific EOI and rotate
            chip.isr &= ~(1 << level)
            chip.priority_add = (level + 1) & 7
        # cmd 2 is a no-op on the 8259A.

    def _write_data(self, chip: ChipState, value: int) -> None:
        with self._lock:
            state = chip.init_state
            if state == _READY:
                chip.imr = value  # OCW1
            elif state == _WAIT_ICW2:
                chip.irq_base = value & 0xF8
                if chip.single:
                    chip.init_state = _WAIT_ICW4 if chip.init4 else _READY
                else:
                    chip.init_state = _WAIT_ICW3
            elif state == _WAIT_ICW3:
                # Cascade wiring is fixed on a PC; ICW3 is accepted as is.
                chip.init_state = _WAIT_ICW4 if chip.init4 else _READY
            else:
                chip.special_fully_nested = bool(value & ICW4_SFNM)
                chip.auto_eoi = bool(value & ICW4_AEOI)
                chip.init_state = _READY
            kick = self._after_register_change(chip)
        if kick:
            self._on_intr()

    def _read_elcr(self, chip: ChipState) -> int:
        with self._lock:
            return chip.elcr

    def _write_elcr(self, chip: ChipState, value: int) -> None:
        with self._lock:
            chip.elcr = value & chip.elcr_mask
            kick = self._after_register_change(chip)
        if kick:
            self._on_intr()

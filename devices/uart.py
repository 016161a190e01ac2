"""A 16550A UART (COM1 at 0x3F8 by default).

Transmission is instantaneous: a byte written to THR goes straight to the
``output`` callback (or back into the receiver in loopback mode) and THR is
empty again, so THRE and TEMT are set by the time the write returns and the
THRE interrupt fires at once, as in QEMU (hw/char/serial.c).

Host input arrives through :meth:`UART16550.receive` on any thread.  It is
queued in a host-side backlog and moved into the receiver as the guest
makes room (the flow control a QEMU chardev gets from ``can_receive``), so
host input is never dropped as an overrun.  Overruns still happen in
loopback mode, where the guest is the sender.

Interrupt sources and their IIR priority: receiver line status (OE/BI),
receive data at the FIFO trigger level (or any data without FIFOs),
character timeout (data waiting and untouched for four character times),
THR empty, modem status (never raised: there are no modem lines).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from devices.bus import Clock, IOPortSpace, IrqLine
from devices.byteports import BytePortTable

log = logging.getLogger(__name__)

FIFO_SIZE = 16
BAUD_BASE = 115200

IER_RDI, IER_THRI, IER_RLSI, IER_MSI = 0x01, 0x02, 0x04, 0x08

IIR_NO_INT = 0x01
IIR_MSI = 0x00
IIR_THRI = 0x02
IIR_RDI = 0x04
IIR_RLSI = 0x06
IIR_CTI = 0x0C
IIR_FIFO_ENABLED = 0xC0

FCR_FE, FCR_RFR, FCR_XFR = 0x01, 0x02, 0x04
FCR_STICKY = 0xC9  # trigger level, DMA mode, enable
TRIGGER_LEVELS = {0x00: 1, 0x40: 4, 0x80: 8, 0xC0: 14}

LCR_DLAB = 0x80

MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10

LSR_DR, LSR_OE, LSR_BI = 0x01, 0x02, 0x10
LSR_THRE, LSR_TEMT = 0x20, 0x40
LSR_INT_ANY = 0x1E  # OE, PE, FE, BI raise the line status interrupt

MSR_CTS, MSR_DSR, MSR_DCD = 0x10, 0x20, 0x80
MSR_ANY_DELTA = 0x0F


@dataclass
class UARTState:
    """Guest-visible registers plus the receive FIFO and interrupt latches."""

    rbr: int = 0
    ier: int = 0
    iir: int = IIR_NO_INT
    fcr: int = 0
    lcr: int = 0
    mcr: int = MCR_OUT2
    lsr: int = LSR_TEMT | LSR_THRE
    msr: int = MSR_DCD | MSR_DSR | MSR_CTS  # a terminal is always "there"
    scr: int = 0
    divider: int = 0x0C  # 9600 baud
    rx_fifo: deque[int] = field(default_factory=deque)
    thr_ipending: bool = False
    timeout_ipending: bool = False

    @property
    def fifo_enabled(self) -> bool:
        return bool(self.fcr & FCR_FE)

    @property
    def trigger_level(self) -> int:
        return TRIGGER_LEVELS[self.fcr & 0xC0]


class UART16550:
    def __init__(self, ioports: IOPortSpace, clock: Clock, irq: IrqLine, base: int = 0x3F8,
                 output: Callable[[bytes], None] | None = None) -> None:
        self._clock = clock
        self._irq = irq
        self._output = output
        self._lock = threading.Lock()
        self._backlog: deque[int] = deque()  # host input not yet in the receiver
        self._timeout_timer = clock.new_timer(self._on_timeout)
        self._irq_level = False
        self.state = UARTState()
        self.base = base
        self.ports = BytePortTable({
            0: (self._read_rbr, self._write_thr),
            1: (self._read_ier, self._write_ier),
            2: (self._read_iir, self._write_fcr),
            3: (lambda: self.state.lcr, self._write_lcr),
            4: (lambda: self.state.mcr, self._write_mcr),
            5: (self._read_lsr, None),
            6: (self._read_msr, None),
            7: (lambda: self.state.scr, self._write_scr),
        }, 8, f"uart@{base:#x}")
        ioports.register(base, 8, self.ports, self.ports.name)
        self.reset()

    # -- host side

    def receive(self, data: bytes) -> None:
        """Bytes from the host (a terminal, a test).  Thread-safe."""
        with self._lock:
            self._backlog.extend(data)
            self._fill()
            self._update_irq()

    def set_output(self, output: Callable[[bytes], None] | None) -> None:
        self._output = output

    def reset(self) -> None:
        """Power-on registers; host input still queued is kept for the
        guest (it belongs to the host side of the line)."""
        with self._lock:
            self.state = UARTState()
            self._timeout_timer.cancel()
            self._fill()
            self._irq_level = True  # force the line low below
            self._update_irq()

    # -- interrupt logic (lock held)

    def _update_irq(self) -> None:
        s = self.state
        if s.ier & IER_RLSI and s.lsr & LSR_INT_ANY:
            iid = IIR_RLSI
        elif s.ier & IER_RDI and s.timeout_ipending:
            iid = IIR_CTI
        elif (s.ier & IER_RDI and s.lsr & LSR_DR
              and (not s.fifo_enabled or len(s.rx_fifo) >= s.trigger_level)):
            iid = IIR_RDI
        elif s.ier & IER_THRI and s.thr_ipending:
            iid = IIR_THRI
        elif s.ier & IER_MSI and s.msr & MSR_ANY_DELTA:
            iid = IIR_MSI
        else:
            iid = IIR_NO_INT
        s.iir = iid | (IIR_FIFO_ENABLED if s.fifo_enabled else 0)
        level = iid != IIR_NO_INT
        if level != self._irq_level:
            self._irq_level = level
            self._irq.set_level(level)

    def _char_time_ns(self) -> int:
        """Time to send one frame at the programmed rate (for the RX
        timeout).  A zero divisor behaves like about 3500 baud."""
        lcr = self.state.lcr
        bits = 1 + (lcr & 3) + 5 + (2 if lcr & 0x04 else 1) + (1 if lcr & 0x08 else 0)
        speed = BAUD_BASE / self.state.divider if self.state.divider else 3500.0
        return int(1e9 * bits / speed)

    def _arm_timeout(self) -> None:
        self._timeout_timer.start_ns(self._clock.now_ns() + 4 * self._char_time_ns())

    def _fill(self) -> None:
        """Move host input into the receiver while it has room."""
        s = self.state
        if s.mcr & MCR_LOOP or not self._backlog:
            return  # in loopback the line from the host is disconnected
        if s.fifo_enabled:
            if len(s.rx_fifo) >= FIFO_SIZE:
                return
            while self._backlog and len(s.rx_fifo) < FIFO_SIZE:
                s.rx_fifo.append(self._backlog.popleft())
            s.lsr |= LSR_DR
            self._arm_timeout()
        elif not s.lsr & LSR_DR:
            s.rbr = self._backlog.popleft()
            s.lsr |= LSR_DR

    def _loopback_receive(self, byte: int) -> None:
        s = self.state
        if s.fifo_enabled:
            if len(s.rx_fifo) < FIFO_SIZE:
                s.rx_fifo.append(byte)
            else:
                s.lsr |= LSR_OE  # an overrun keeps the FIFO contents
            s.lsr |= LSR_DR
            self._arm_timeout()
        else:
            if s.lsr & LSR_DR:
                s.lsr |= LSR_OE
            s.rbr = byte
            s.lsr |= LSR_DR

    def _on_timeout(self) -> None:
        with self._lock:
            if self.state.rx_fifo:
                self.state.timeout_ipending = True
                self._update_irq()

    # -- registers

    def _read_rbr(self) -> int:
        with self._lock:
            s = self.state
            if s.lcr & LCR_DLAB:
                return s.divider & 0xFF
            if s.fifo_enabled:
                value = s.rx_fifo.popleft() if s.rx_fifo else 0
                s.timeout_ipending = False
                self._fill()
                if s.rx_fifo:
                    self._arm_timeout()
                else:
                    s.lsr &= ~(LSR_DR | LSR_BI)
                    self._timeout_timer.cancel()
            else:
                value = s.rbr
                s.lsr &= ~(LSR_DR | LSR_BI)
                self._fill()
            self._update_irq()
            return value

    def _write_thr(self, value: int) -> None:
        out = None
        with self._lock:
            s = self.state
            if s.lcr & LCR_DLAB:
                s.divider = (s.divider & 0xFF00) | value
                return
            # THR fills, then the shifter takes the byte at once.
            s.thr_ipending = False
            s.lsr &= ~(LSR_THRE | LSR_TEMT)
            self._update_irq()
            if s.mcr & MCR_LOOP:
                self._loopback_receive(value)
            else:
                out = bytes((value,))
            s.lsr |= LSR_THRE | LSR_TEMT
            s.thr_ipending = True
            self._update_irq()
        if out is not None and self._output is not None:
            self._output(out)

    def _read_ier(self) -> int:
        with self._lock:
            s = self.state
            return s.divider >> 8 if s.lcr & LCR_DLAB else s.ier

    def _write_ier(self, value: int) -> None:
        with self._lock:
            s = self.state
            if s.lcr & LCR_DLAB:
                s.divider = (s.divider & 0x00FF) | value << 8
                return
            changed = (s.ier ^ value) & 0x0F
            s.ier = value & 0x0F
            if changed & IER_THRI:
                # Enabling THRI with THR empty raises it again even if a
                # read of IIR had cleared it (drivers rely on this).
                s.thr_ipending = bool(s.ier & IER_THRI and s.lsr & LSR_THRE)
            self._update_irq()

    def _read_iir(self) -> int:
        with self._lock:
            s = self.state
            value = s.iir
            if value & 0x0F == IIR_THRI:
                s.thr_ipending = False  # reading the THRE source clears it
                self._update_irq()
            return value

    def _write_fcr(self, value: int) -> None:
        with self._lock:
            s = self.state
            if (value ^ s.fcr) & FCR_FE:
                value |= FCR_RFR | FCR_XFR  # toggling FIFO mode empties both
            if value & FCR_RFR:
                s.lsr &= ~(LSR_DR | LSR_BI)
                s.timeout_ipending = False
                self._timeout_timer.cancel()
                s.rx_fifo.clear()
            if value & FCR_XFR:
                s.lsr |= LSR_THRE
                s.thr_ipending = True
            s.fcr = value & FCR_STICKY
            self._fill()
            self._update_irq()

    def _write_lcr(self, value: int) -> None:
        with self._lock:
            self.state.lcr = value

    def _write_mcr(self, value: int) -> None:
        with self._lock:
            self.state.mcr = value & 0x1F
            self._fill()
            self._update_irq()

    def _read_lsr(self) -> int:
        with self._lock:
            s = self.state
            value = s.lsr
            if s.lsr & (LSR_BI | LSR_OE):
                s.lsr &= ~(LSR_BI | LSR_OE)
                self._update_irq()
            return value

    def _read_msr(self) -> int:
        with self._lock:
            s = self.state
            if s.mcr & MCR_LOOP:
                # Outputs wired back to inputs: OUT2->DCD, OUT1->RI,
                # RTS->CTS, DTR->DSR.
                return ((s.mcr & 0x0C) << 4) | ((s.mcr & MCR_RTS) << 3) | ((s.mcr & MCR_DTR) << 5)
            value = s.msr
            if s.msr & MSR_ANY_DELTA:
                s.msr &= 0xF0
                self._update_irq()
            return value

    def _write_scr(self, value: int) -> None:
        with self._lock:
            self.state.scr = value

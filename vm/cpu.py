"""The vCPU: a Unicorn x86 engine, its hooks, and the thread that runs it.

How the guest runs
------------------
The vCPU thread loops: service requests (reset, mapping changes, stop),
inject a pending external interrupt if the guest can take one, then
``uc.emu_start`` until something stops it.  Port I/O reaches
``devices.bus.IOPortSpace`` through ``UC_HOOK_INSN`` (IN/OUT); exceptions
and ``int n`` reach :class:`vm.interrupts.InterruptDelivery` through
``UC_HOOK_INTR``.  There are no per-instruction or per-block hooks.

External interrupts
-------------------
The interrupt controller's INTR output calls :meth:`CPU.kick` (any
thread).  ``kick`` arms :class:`vm.blockstop.BlockStop`, which ends
``emu_start`` at the start of the next translation block (an instruction
boundary: EIP is exact; see that module for why ``uc.emu_stop()`` from
another thread cannot be used).  The vCPU thread then asks the controller
(``has_interrupt``), and if
EFLAGS.IF is set and the one-instruction interrupt shadow after ``sti`` /
``mov ss`` is not active, runs the INTA cycle (``acknowledge``) and
delivers the vector through the IVT or IDT.

When an interrupt is pending but the guest cannot take it (IF=0 or the
shadow), we do not hook ``sti``/``popf``/``iret``: a small poller thread
stops the engine every ``poll_interval`` seconds (0.5 ms) while that lasts,
and the vCPU re-checks.  A stop armed while the engine is not running
stays armed, so no kick is lost: the next ``emu_start`` returns at once.

``hlt``
-------
Unicorn ends ``emu_start`` at ``hlt`` with EIP after it and no error.  An
``emu_start`` that returns without an error and without our block hook
having stopped it (the hook counts its stops) is therefore a ``hlt``.  A
halted vCPU blocks on an Event until ``kick`` (no host CPU used while the
guest idles).

Unicorn facts (2.1) established for this module
-----------------------------------------------
* The engine is created in ``UC_MODE_32`` even though the PC starts in real
  mode: in ``UC_MODE_16`` ``emu_start`` rewrites IP as a 16-bit value
  ``begin - CS*16``, which breaks resuming 32-bit code above 64 KiB.  Real
  mode is CR0.PE=0 with real-mode segment caches; translation follows
  the guest's CR0 and segment state, not the engine mode, and the guest's
  own switch to protected mode (``mov cr0`` + far jump) just works.
* ``emu_start(begin)`` writes ``begin`` into EIP (not a linear address).
* The reset vector's CS base 0xFFFF0000 cannot be written directly
  (``reg_write(CS)`` in real mode sets base = selector * 16).  We load CS
  = 0xF000 from a scratch GDT entry with base 0xFFFF0000 while PE=1, then
  clear PE: the hidden base survives, as on a real CPU after reset.
* Exits are disabled via ``ctl_exits_enabled(True)`` with an empty exit
  set, so no address stops emulation (``until`` is ignored).
* ``emu_stop`` is only exact at a block start: Unicorn checks for a stop
  after every load and store and then rewinds EIP to the block start,
  re-running the instructions before it (vm/blockstop.py).  A stop
  requested from an I/O hook therefore takes effect at the next block
  start; the rest of the current block runs first.
* EIP read inside an IN/OUT hook is the start of the translation block, not
  the I/O instruction.
* On UC_ERR_*_UNMAPPED errors EIP may also be the start of the block.
* Every vector-6 event (``ud2`` and ``int $6``) first goes to
  ``UC_HOOK_INSN_INVALID``.  Returning True there passes it on to
  ``UC_HOOK_INTR`` in 2.1.1, but from 2.1.2 on drops it and resumes at
  the faulting instruction, forever; which one this engine does is probed
  once, and in the second case the invalid-opcode hook delivers vector 6
  itself.
* The default CPU model is qemu64 up to 2.1.2 and Haswell from 2.1.3 on
  (other CPUID, CR4 bits at creation): the model is set explicitly.
* ``hlt`` ends ``emu_start`` normally with EIP after the ``hlt``; the
  next ``emu_start`` clears Unicorn's halted state itself.
* An IN/OUT hook round trip costs about 0.15 us with a bare ctypes
  callback and 0.36 us through the binding's wrapper; through our hook and
  ``IOPortSpace`` to an unclaimed port, about 0.6 us (QEMU TCG: 0.03 us).
* ``emu_start`` + stop round trip: about 1.5 us.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from unicorn import (
    UC_ARCH_X86,
    UC_CTL_IO_WRITE,
    UC_CTL_TB_FLUSH,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_HOOK_INSN,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MODE_32,
    Uc,
    UcError,
)
from unicorn import x86_const as X

from devices.bus import IOPortSpace
from vm.blockstop import BlockStop
from vm.interrupts import (
    HAS_ERROR_CODE,
    SETS_OLD_EXCEPTION,
    InterruptDelivery,
    Source,
    TripleFault,
    exception_name,
)
from vm.memory import GuestMemory
from vm.x86state import (
    CpuState,
    FastRegs,
    format_registers,
    invalid_opcode_reaches_intr_hook,
    layout,
)

log = logging.getLogger(__name__)

EFLAGS_IF = 1 << 9
_ALL_ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}
RESET_EDX = 0x663  # CPUID family/model/stepping of QEMU's qemu64 model
_RESET_SCRATCH = 0xF000  # RAM used for a moment to load the reset CS


def _flush_tb(uc: Uc) -> None:
    """Drop all translated code.  The 2.1 binding's ``ctl_flush_tb`` trips
    its own argument-count assertion (the control takes no arguments), so
    the control is issued directly."""
    from unicorn.unicorn_py3.unicorn import uclib  # the binding's library handle

    status = uclib.uc_ctl(uc._uch, (UC_CTL_IO_WRITE << 30) | UC_CTL_TB_FLUSH)
    if status:
        raise UcError(status)


class InterruptController(Protocol):
    """The CPU side of the 8259 pair (INTR pin and INTA cycle)."""

    def has_interrupt(self) -> bool: ...

    def acknowledge(self) -> int: ...


class StopReason(Enum):
    EXIT = "exit"                  # the guest asked to exit (debug-exit port)
    SHUTDOWN = "shutdown"          # the host asked (Ctrl-C, stop())
    TRIPLE_FAULT = "triple-fault"  # a triple fault with reboot disabled
    CPU_ERROR = "cpu-error"        # the engine cannot continue (e.g. fetch from unmapped memory)


@dataclass(frozen=True)
class CPUStop:
    reason: StopReason
    status: int = 0      # exit status for EXIT
    message: str = ""
    registers: str = ""  # guest register dump for TRIPLE_FAULT and CPU_ERROR


class CPU:
    """One x86 vCPU.  ``ioports`` serves IN/OUT; ``memory`` (created here)
    is the guest-physical map.  Set :attr:`interrupt_controller` before
    running; :attr:`reset_handler` is called on the vCPU thread at machine
    reset before the CPU itself resets; :attr:`on_stop` is called once on
    the vCPU thread when the CPU stops for good."""

    def __init__(self, ioports: IOPortSpace, *, no_reboot: bool = False,
                 poll_interval: float = 0.0005) -> None:
        self._layout = layout()  # fails early, with a message, on an unknown Unicorn
        self._ud_reaches_intr = invalid_opcode_reaches_intr_hook()
        self.uc = Uc(UC_ARCH_X86, UC_MODE_32)
        # Before anything initialises the engine: its default model differs
        # between releases, and RESET_EDX is this model's signature.
        self.uc.ctl_set_cpu_model(X.UC_CPU_X86_QEMU64)
        self.uc.ctl_exits_enabled(True)
        self.ioports = ioports
        self.memory = GuestMemory(self.uc, self.run_on_vcpu)
        self.no_reboot = no_reboot
        self.poll_interval = poll_interval
        self.interrupt_controller: InterruptController | None = None
        self.reset_handler: Callable[[], None] | None = None
        self.on_stop: Callable[[CPUStop], None] | None = None
        self._state = CpuState(self.uc)
        self._regs = FastRegs(self.uc)
        self._delivery = InterruptDelivery(self.uc, self.memory, self._state)

        self._thread: threading.Thread | None = None
        self._vcpu_ident: int | None = None
        self._stop: CPUStop | None = None
        self._stopped = threading.Event()
        self._reset_requested = False
        self._requests: deque[tuple[Callable[[], object], list[object], threading.Event]] = deque()
        self._req_lock = threading.Lock()
        self._wake = threading.Event()
        self._in_emu = False
        self._stopper = BlockStop(self.uc)
        self._halted = False
        self._poll_armed = False
        self._poll_cv = threading.Condition()
        self._poller: threading.Thread | None = None
        self._io_errors_logged: set[int] = set()
        self.stats = {"irqs": 0, "exceptions": 0, "emu_starts": 0, "kicks": 0}

        self.uc.hook_add(UC_HOOK_INSN, self._on_in, None, 1, 0, X.UC_X86_INS_IN)
        self.uc.hook_add(UC_HOOK_INSN, self._on_out, None, 1, 0, X.UC_X86_INS_OUT)
        self.uc.hook_add(UC_HOOK_INTR, self._on_intr)
        self.uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)

    # ================================================================ control
    def start(self) -> None:
        """Run the vCPU on its own thread."""
        if self._thread is not None:
            raise RuntimeError("CPU already started")
        self._thread = threading.Thread(target=self.run, name="vcpu", daemon=True)
        self._thread.start()

    def run(self) -> CPUStop:
        """Run the guest on the calling thread until it stops for good."""
        self._vcpu_ident = threading.get_ident()
        self._poller = threading.Thread(target=self._poll_loop, name="vcpu-irq-poll", daemon=True)
        self._poller.start()
        try:
            self._loop()
        except Exception as exc:  # a bug of ours, not the guest's
            log.exception("vCPU loop failed")
            self._set_stop(CPUStop(StopReason.CPU_ERROR, message=f"internal error: {exc}",
                                   registers=self._dump()))
        finally:
            with self._poll_cv:
                self._poll_cv.notify_all()
            with self._req_lock:
                self._vcpu_ident = None
            self._poller.join()  # it ends once _stop is set, which it is by now
            self._fail_requests()
        stop = self._stop
        assert stop is not None
        self._stopped.set()
        if self.on_stop is not None:
            self.on_stop(stop)
        return stop

    def join(self, timeout: float | None = None) -> CPUStop | None:
        """Wait for the CPU to stop; returns why (None on timeout).  On the
        vCPU thread itself it does not wait: it returns the stop, if any."""
        if self._on_vcpu_thread() or threading.current_thread() is self._thread:
            return self._stop
        if not self._stopped.wait(timeout):
            return None
        if self._thread is not None:
            self._thread.join()
        return self._stop

    @property
    def stop_info(self) -> CPUStop | None:
        return self._stop

    @property
    def running(self) -> bool:
        """Started and not yet stopped for good."""
        return self._thread is not None and not self._stopped.is_set()

    def request_stop(self, reason: StopReason, status: int = 0, message: str = "") -> None:
        """Stop the CPU for good (any thread).  The first request wins."""
        regs = self._dump() if self._on_vcpu_thread() and reason is not StopReason.EXIT else ""
        self._set_stop(CPUStop(reason, status, message, regs))

    def request_reset(self) -> None:
        """Reset the machine (any thread): the vCPU thread runs
        :attr:`reset_handler`, then resets itself to the reset vector."""
        self._reset_requested = True
        self._interrupt_emu()

    def kick(self) -> None:
        """The interrupt controller's INTR output may have changed (any
        thread)."""
        self.stats["kicks"] += 1
        # Armed even when the engine is not running: a vCPU about to enter
        # emu_start then returns at once and looks at the controller again.
        self._interrupt_emu()

    def run_on_vcpu(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the vCPU thread (between instructions) and return
        its result; runs it directly if called there or if the CPU is not
        running."""
        if self._vcpu_ident is None or self._on_vcpu_thread():
            return fn()
        done = threading.Event()
        box: list[object] = []
        with self._req_lock:
            if self._vcpu_ident is None:
                return fn()
            self._requests.append((fn, box, done))
        self._interrupt_emu()
        done.wait()
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    def registers(self) -> str:
        """The register dump (call on the vCPU thread or while stopped)."""
        return self._dump()

    # ============================================================ reset state
    def reset_state(self, flush_translations: bool = False) -> None:
        """Power-on register state: real mode at F000:FFF0, CS base FFFF0000.

        ``flush_translations`` drops all translated code (about 0.1 s in
        Unicorn 2.1, so only when the host rewrote memory that may hold code,
        e.g. a ROM image restored after the guest wrote to it).  Guest
        writes to code are tracked by the engine itself."""
        uc = self.uc
        uc.reg_write(X.UC_X86_REG_CR4, 0)
        uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, 0))  # EFER
        uc.reg_write(X.UC_X86_REG_CR0, 0x10)
        uc.reg_write(X.UC_X86_REG_SS, 0)  # real-mode SS: CPL 0
        self._load_reset_cs()
        uc.reg_write(X.UC_X86_REG_CR0, 0x60000010)
        uc.reg_write(X.UC_X86_REG_GDTR, (0, 0, 0xFFFF, 0))
        uc.reg_write(X.UC_X86_REG_IDTR, (0, 0, 0xFFFF, 0))
        uc.reg_write(X.UC_X86_REG_LDTR, (0, 0, 0xFFFF, 0x8200))
        uc.reg_write(X.UC_X86_REG_TR, (0, 0, 0xFFFF, 0x8B00))
        for reg in (X.UC_X86_REG_DS, X.UC_X86_REG_ES, X.UC_X86_REG_SS,
                    X.UC_X86_REG_FS, X.UC_X86_REG_GS):
            uc.reg_write(reg, 0)
        for reg in (X.UC_X86_REG_EAX, X.UC_X86_REG_EBX, X.UC_X86_REG_ECX, X.UC_X86_REG_ESI,
                    X.UC_X86_REG_EDI, X.UC_X86_REG_EBP, X.UC_X86_REG_ESP):
            uc.reg_write(reg, 0)
        uc.reg_write(X.UC_X86_REG_EDX, RESET_EDX)
        uc.reg_write(X.UC_X86_REG_CR2, 0)
        uc.reg_write(X.UC_X86_REG_CR3, 0)  # after CR2: see vm.interrupts
        uc.reg_write(X.UC_X86_REG_DR6, 0xFFFF0FF0)
        uc.reg_write(X.UC_X86_REG_DR7, 0x400)
        uc.reg_write(X.UC_X86_REG_FPCW, 0x37F)
        uc.reg_write(X.UC_X86_REG_FPSW, 0)
        uc.reg_write(X.UC_X86_REG_MXCSR, 0x1F80)
        uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)
        uc.reg_write(X.UC_X86_REG_EIP, 0xFFF0)
        if flush_translations:
            _flush_tb(uc)
        self._halted = False

    def _load_reset_cs(self) -> None:
        region = self.memory.find(_RESET_SCRATCH)
        if region is None or region.array is None or region.readonly:
            log.debug("no RAM at %#x: reset CS base is F0000, not FFFF0000", _RESET_SCRATCH)
            self.uc.reg_write(X.UC_X86_REG_CS, 0xF000)
            return
        view = self.memory.ram_view(_RESET_SCRATCH, 8)
        saved = view.copy()
        # 16-bit code segment, base FFFF0000, limit FFFF, present, readable, accessed.
        view[:] = list(struct.pack("<II", 0x0000FFFF, 0xFF009BFF))
        try:
            self.uc.reg_write(X.UC_X86_REG_GDTR, (0, _RESET_SCRATCH - 0xF000, 0xF007, 0))
            self.uc.reg_write(X.UC_X86_REG_CR0, 0x11)
            self.uc.reg_write(X.UC_X86_REG_CS, 0xF000)
        finally:
            view[:] = saved

    # ============================================================== the loop
    def _loop(self) -> None:
        while True:
            # Cleared before looking at the requests, the stop and the
            # controller: a wake-up that comes after this line is still set
            # when a halted vCPU waits; one before it set state seen below.
            self._wake.clear()
            self._service_requests()
            if self._stop is not None:
                return
            if self._try_inject():
                continue
            if self._halted:
                self._wake.wait()
                continue
            self._emulate()

    def _service_requests(self) -> None:
        while self._requests:
            fn, box, done = self._requests.popleft()
            try:
                box.append(fn())
            except BaseException as exc:  # handed back to the caller
                box.append(exc)
            done.set()
        if self._reset_requested and self._stop is None:
            self._reset_requested = False
            log.info("machine reset")
            flush = self.memory.restore_roms()
            if self.reset_handler is not None:
                self.reset_handler()
            self.reset_state(flush_translations=flush)

    def _try_inject(self) -> bool:
        """Deliver a pending external interrupt if the guest can take one."""
        intc = self.interrupt_controller
        if intc is None or not intc.has_interrupt():
            return False
        if not self._regs.read(X.UC_X86_REG_EFLAGS) & EFLAGS_IF:
            return False
        if self._state.refresh().inhibit_irq:
            return False
        vector = intc.acknowledge()
        self.stats["irqs"] += 1
        self._halted = False
        try:
            self._delivery.deliver(vector, Source.EXTERNAL, None)
        except TripleFault as tf:
            self._triple_fault(f"IRQ vector {vector:#x}: {tf}")
        return True

    def _emulate(self) -> None:
        self._in_emu = True
        intc = self.interrupt_controller
        if intc is not None and intc.has_interrupt():
            self._arm_poll()  # pending but masked by IF=0 or the sti shadow
        if self._requests or self._reset_requested or self._stop is not None:
            self._in_emu = False
            return
        self.stats["emu_starts"] += 1
        stops = self._stopper.stops
        try:
            self.uc.emu_start(self._regs.read(X.UC_X86_REG_EIP), 0)
        except UcError as exc:
            self._cpu_error(exc)
            return
        finally:
            self._in_emu = False
            self._poll_armed = False
            # A kick that came too late to stop this run has already set
            # the state it is about; the loop looks at that next.
            self._stopper.disarm()
        # emu_start ends without an error only by our stop or at hlt.
        self._halted = self._stopper.stops == stops

    # ============================================================ the poller
    def _arm_poll(self) -> None:
        with self._poll_cv:
            self._poll_armed = True
            self._poll_cv.notify()

    def _poll_loop(self) -> None:
        while self._vcpu_ident is not None and self._stop is None:
            with self._poll_cv:
                if not self._poll_armed:
                    self._poll_cv.wait()
                    continue
            self._stopped.wait(self.poll_interval)
            if self._poll_armed and self._in_emu:
                self._interrupt_emu()

    def _interrupt_emu(self) -> None:
        """Make a running (or the next) ``emu_start`` return at a block
        start (any thread; callers set their own state first)."""
        self._stopper.arm()
        self._wake.set()

    # ================================================================ hooks
    # A stop requested from a hook takes effect at the end of the current
    # translation block; port accesses after it are dropped so that, as on
    # QEMU, nothing the guest does after writing the exit port is seen.
    def _on_in(self, uc: Uc, port: int, size: int, _ud: object) -> int:
        if self._stop is not None:
            return _ALL_ONES.get(size, 0xFFFFFFFF)
        try:
            return self.ioports.read(port, size)
        except Exception:
            self._io_error("in", port)
            return _ALL_ONES.get(size, 0xFFFFFFFF)

    def _on_out(self, uc: Uc, port: int, size: int, value: int, _ud: object) -> None:
        if self._stop is not None:
            return
        try:
            self.ioports.write(port, size, value)
        except Exception:
            self._io_error("out", port)

    def _io_error(self, what: str, port: int) -> None:
        if port not in self._io_errors_logged:
            self._io_errors_logged.add(port)
            log.exception("device failed on %s port %#x (further failures on it not logged)",
                          what, port)

    def _on_invalid(self, uc: Uc, _ud: object) -> bool:
        """Every vector-6 event (``ud2``, ``int $6``) comes here first.
        Where the engine passes it on to the interrupt hook, that delivers;
        elsewhere it is delivered here (see
        :func:`vm.x86state.invalid_opcode_reaches_intr_hook`)."""
        if not self._ud_reaches_intr:
            st = self._state.refresh()
            if st.exception_is_int:  # `int $6` returns after itself
                self._regs.write(X.UC_X86_REG_EIP, st.exception_next_eip)
            self._on_intr(uc, 6, None)
        return True

    def _on_intr(self, uc: Uc, vector: int, _ud: object) -> None:
        if self._stop is not None:
            self._interrupt_emu()
            return
        if vector >= 256:
            self._set_stop(CPUStop(StopReason.CPU_ERROR,
                                   message=f"unexpected CPU event {vector:#x}",
                                   registers=self._dump()))
            return
        self.stats["exceptions"] += 1
        st = self._state.refresh()
        if vector in SETS_OLD_EXCEPTION:
            st.clear_old_exception()
        source = Source.SOFTWARE if st.exception_is_int else Source.EXCEPTION
        error = st.error_code if source is Source.EXCEPTION and vector in HAS_ERROR_CODE else None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s at EIP %#x error %s", source.value, exception_name(vector),
                      st.eip, None if error is None else hex(error))
        try:
            self._delivery.deliver(vector, source, error)
        except TripleFault as tf:
            self._triple_fault(f"{exception_name(vector)}: {tf}")

    # ============================================================== failures
    def _triple_fault(self, why: str) -> None:
        regs = self._dump()
        if self.no_reboot:
            self._set_stop(CPUStop(StopReason.TRIPLE_FAULT, message=f"triple fault ({why})",
                                   registers=regs))
        else:
            log.warning("triple fault (%s): resetting\n%s", why, regs)
            self.request_reset()
        self._interrupt_emu()

    def _cpu_error(self, exc: UcError) -> None:
        eip = self.uc.reg_read(X.UC_X86_REG_EIP)
        if exc.errno in (UC_ERR_FETCH_UNMAPPED, UC_ERR_FETCH_PROT):
            message = f"instruction fetch from unmapped memory near EIP {eip:#x}"
        else:
            message = f"CPU error at EIP {eip:#x}: {exc}"
        self._set_stop(CPUStop(StopReason.CPU_ERROR, message=message, registers=self._dump()))

    def _set_stop(self, stop: CPUStop) -> None:
        if self._stop is None:
            self._stop = stop
            log.debug("CPU stop: %s %s", stop.reason.value, stop.message)
        self._interrupt_emu()

    def _fail_requests(self) -> None:
        """Requests queued while the loop ended still run (on this thread)."""
        self._service_requests()

    def _dump(self) -> str:
        try:
            return format_registers(self.uc)
        except Exception as exc:  # never let a dump hide the real problem
            return f"(register dump failed: {exc})"

    def _on_vcpu_thread(self) -> bool:
        return threading.get_ident() == self._vcpu_ident

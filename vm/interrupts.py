"""Interrupt and exception delivery through the guest's IVT or IDT.

Unicorn runs guest code but never delivers an exception or interrupt: each
exception and ``int n`` reaches our ``UC_HOOK_INTR`` callback, and external
IRQs are ours to inject.  This module does what the CPU's microcode would:

* real mode: read the 4-byte IVT entry at IDTR.base + 4*n, push FLAGS, CS,
  IP, clear IF/TF/AC, jump;
* 32-bit protected mode: read the 8-byte IDT gate, check it (present, type,
  DPL for software interrupts, target code segment), switch to the ring-0
  stack from the TSS when the privilege level changes, push (SS, ESP,)
  EFLAGS, CS, EIP and the error code where the exception has one, clear
  TF/NT/RF/VM and, for interrupt gates, IF; jump.  The guest's ``iret``
  runs natively in Unicorn.
* A fault while delivering (gate not present, IDT limit, stack page not
  present) follows the double-fault table; a fault while delivering #DF
  raises :class:`TripleFault`.

Limits: task gates, virtual-8086 mode and long mode are not delivered (they
raise :class:`TripleFault` with a message saying so).  A/D bits are not set
by our own page walks.  The page walker handles 32-bit paging (4 KiB and
PSE 4 MiB pages) and PAE.

Unicorn facts used here:

* Writing CS with ``reg_write`` in protected mode loads the descriptor like
  a data-segment load: the segment must be readable and DPL >= CPL.  A
  execute-only code segment is loaded by setting its R bit in the
  descriptor table for the moment of the load.  CPL follows the DPL of SS,
  so entering ring 0 from ring 3 goes through real mode for a moment
  (clear CR0.PE, load SS, restore CR0) to drop CPL before SS and CS are
  loaded from their descriptors.
* Writing CR2 with ``reg_write`` also overwrites CR3 in Unicorn 2.1.1
  (it routes CR1-CR3 through ``cpu_x86_update_cr3``; 2.1.2 and later do
  not); CR3 is written back afterwards.
* Writing EIP from the hook makes Unicorn leave the current block and
  continue at the new EIP.
"""

from __future__ import annotations

import logging
import struct
from enum import Enum

from unicorn import Uc
from unicorn import x86_const as X

from vm.memory import GuestMemory
from vm.x86state import R_CS, R_SS, CpuState, FastRegs

log = logging.getLogger(__name__)

EXC_NAMES = {
    0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM",
    8: "#DF", 9: "CSO", 10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF",
    16: "#MF", 17: "#AC", 18: "#MC", 19: "#XM", 20: "#VE", 21: "#CP",
}
HAS_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17, 21})
CONTRIBUTORY = frozenset({0, 10, 11, 12, 13})
# Vectors whose raising sets QEMU's old_exception (see vm.x86state).
SETS_OLD_EXCEPTION = frozenset({0, 8, 10, 11, 12, 13, 14})

EFLAGS_TF = 1 << 8
EFLAGS_IF = 1 << 9
EFLAGS_NT = 1 << 14
EFLAGS_RF = 1 << 16
EFLAGS_VM = 1 << 17
EFLAGS_AC = 1 << 18

CR0_PE = 1
CR0_WP = 1 << 16
CR0_PG = 1 << 31
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5

DESC_B = 1 << 22  # in the high dword of a descriptor (and QEMU's cached flags)


def exception_name(vector: int) -> str:
    return EXC_NAMES.get(vector, f"vector {vector:#x}")


class Source(Enum):
    EXCEPTION = "exception"  # a fault or trap raised by an instruction
    SOFTWARE = "software"    # int n, int3, into
    EXTERNAL = "external"    # an IRQ from the interrupt controller


class TripleFault(Exception):  # noqa: N818 - the CPU's own name for it
    """Delivery failed beyond repair: the processor would shut down."""


class DeliveryFault(Exception):  # noqa: N818
    """An exception raised by the delivery itself."""

    def __init__(self, vector: int, error_code: int = 0, cr2: int | None = None) -> None:
        super().__init__(f"{exception_name(vector)} error {error_code:#x}")
        self.vector = vector
        self.error_code = error_code
        self.cr2 = cr2


class InterruptDelivery:
    """Delivers one event into the guest, as the processor would."""

    def __init__(self, uc: Uc, memory: GuestMemory, state: CpuState) -> None:
        self._uc = uc
        self._mem = memory
        self._state = state  # refreshed by the caller before each delivery
        self._regs = FastRegs(uc)

    # -------------------------------------------------------------- public
    def deliver(self, vector: int, source: Source, error_code: int | None) -> None:
        """Deliver ``vector`` (the CPU state must have been refreshed since
        the guest last ran); faults during delivery follow the double-fault
        rules.  Raises :class:`TripleFault`."""
        first = vector
        while True:
            try:
                self._deliver_once(vector, source, error_code)
                return
            except DeliveryFault as fault:
                nxt = fault.vector
                log.debug("%s while delivering %s", exception_name(nxt), exception_name(vector))
                if vector == 8 and (nxt in CONTRIBUTORY or nxt == 14):
                    raise TripleFault(f"{exception_name(nxt)} while delivering #DF "
                                      f"(first event: {exception_name(first)})") from None
                if fault.cr2 is not None:
                    self._set_cr2(fault.cr2)
                double = (vector in CONTRIBUTORY and nxt in CONTRIBUTORY) or \
                    (vector == 14 and (nxt in CONTRIBUTORY or nxt == 14))
                if double and source is Source.EXCEPTION:
                    vector, error_code = 8, 0
                else:
                    vector, error_code = nxt, fault.error_code
                source = Source.EXCEPTION

    # ----------------------------------------------------------- delivery
    def _deliver_once(self, vector: int, source: Source, error_code: int | None) -> None:
        cr0 = self._state.cr(0)
        eflags = self._regs.read(X.UC_X86_REG_EFLAGS)
        if not cr0 & CR0_PE:
            self._deliver_real(vector, eflags)
        elif eflags & EFLAGS_VM:
            raise TripleFault("interrupt in virtual-8086 mode: not supported")
        else:
            self._deliver_protected(vector, source, error_code, eflags)

    def _deliver_real(self, vector: int, eflags: int) -> None:
        st = self._state
        idtr = st.idtr
        if vector * 4 + 3 > idtr.limit:
            raise DeliveryFault(13, vector * 8 + 2)
        ip, cs = struct.unpack("<HH", self._read_linear(idtr.base + vector * 4, 4))
        esp = st.gpr(4)
        ss_base = st.segment(R_SS).base
        old_cs = st.segment(R_CS).selector
        old_ip = st.eip & 0xFFFF
        sp = (esp - 6) & 0xFFFF
        frame = struct.pack("<HHH", old_ip, old_cs, eflags & 0xFFFF)
        if sp > 0xFFFA:  # the frame wraps around the 64 KiB segment
            for i in range(3):
                self._write_linear(ss_base + ((sp + 2 * i) & 0xFFFF), frame[2 * i : 2 * i + 2],
                                   user=False)
        else:
            self._write_linear(ss_base + sp, frame, user=False)
        self._regs.write(X.UC_X86_REG_ESP, (esp & 0xFFFF0000) | sp)
        self._regs.write(X.UC_X86_REG_EFLAGS,
                         eflags & ~(EFLAGS_IF | EFLAGS_TF | EFLAGS_AC | EFLAGS_RF))
        self._regs.write(X.UC_X86_REG_CS, cs)
        self._regs.write(X.UC_X86_REG_EIP, ip)

    def _deliver_protected(self, vector: int, source: Source, error_code: int | None,
                           eflags: int) -> None:
        st = self._state
        ext = 0 if source is Source.SOFTWARE else 1
        idt_err = vector * 8 + 2 + ext
        idtr = st.idtr
        if vector * 8 + 7 > idtr.limit:
            raise DeliveryFault(13, idt_err)
        lo, hi = struct.unpack("<II", self._read_linear(idtr.base + vector * 8, 8))
        gate_type = (hi >> 8) & 0x1F
        if gate_type == 0x05:
            raise TripleFault(f"{exception_name(vector)} through a task gate: not supported")
        if gate_type not in (0x06, 0x07, 0x0E, 0x0F):
            raise DeliveryFault(13, idt_err)
        cpl = st.cpl
        if source is Source.SOFTWARE and ((hi >> 13) & 3) < cpl:
            raise DeliveryFault(13, idt_err)
        if not hi & (1 << 15):
            raise DeliveryFault(11, idt_err)
        gate32 = bool(gate_type & 0x08)
        selector = lo >> 16
        offset = (lo & 0xFFFF) | ((hi & 0xFFFF0000) if gate32 else 0)
        if selector & 0xFFFC == 0:
            raise DeliveryFault(13, ext)
        sel_err = (selector & 0xFFFC) + ext
        cs_lo, cs_hi, cs_addr = self._descriptor(selector, sel_err)
        if not (cs_hi & (1 << 12)) or not (cs_hi & (1 << 11)):
            raise DeliveryFault(13, sel_err)  # not a code segment
        cs_dpl = (cs_hi >> 13) & 3
        if cs_dpl > cpl:
            raise DeliveryFault(13, sel_err)
        if not cs_hi & (1 << 15):
            raise DeliveryFault(11, sel_err)
        conforming = bool(cs_hi & (1 << 10))
        new_cpl = cpl if conforming else cs_dpl

        ss = st.segment(R_SS)
        old_cs, old_eip, old_esp, old_ss = st.segment(R_CS).selector, st.eip, st.gpr(4), ss.selector
        frame = [eflags, old_cs, old_eip]
        if new_cpl < cpl:
            new_ss, esp, ss_base, ss_32 = self._inner_stack(new_cpl, ext)
            frame = [old_ss, old_esp] + frame
        else:
            new_ss, esp, ss_base, ss_32 = old_ss, old_esp, ss.base, bool(ss.flags & DESC_B)
        if error_code is not None:
            frame.append(error_code)
        width = 4 if gate32 else 2
        fmt = "<I" if gate32 else "<H"
        mask = (1 << (8 * width)) - 1
        sp_mask = 0xFFFFFFFF if ss_32 else 0xFFFF
        sp = (esp - width * len(frame)) & sp_mask
        blob = b"".join(struct.pack(fmt, value & mask) for value in reversed(frame))
        if sp + len(blob) > sp_mask + 1:  # wraps around a 16-bit stack segment
            for i in range(len(frame)):
                self._write_linear(ss_base + ((sp + width * i) & sp_mask),
                                   blob[width * i : width * (i + 1)], user=new_cpl == 3)
        else:
            self._write_linear(ss_base + sp, blob, user=new_cpl == 3)
        new_esp = sp if ss_32 else (esp & ~0xFFFF) | sp

        if new_cpl != cpl:
            self._enter_ring(new_cpl)
            self._regs.write(X.UC_X86_REG_SS, new_ss)
        self._regs.write(X.UC_X86_REG_ESP, new_esp)
        self._load_cs((selector & 0xFFFC) | new_cpl, cs_hi, cs_addr)
        new_flags = eflags & ~(EFLAGS_TF | EFLAGS_NT | EFLAGS_RF | EFLAGS_VM)
        if not gate_type & 1:
            new_flags &= ~EFLAGS_IF
        self._regs.write(X.UC_X86_REG_EFLAGS, new_flags)
        self._regs.write(X.UC_X86_REG_EIP, offset)

    # ------------------------------------------------------------- pieces
    def _inner_stack(self, new_cpl: int, ext: int) -> tuple[int, int, int, bool]:
        """SS:ESP for ``new_cpl`` from the TSS; returns (ss, esp, base, 32-bit)."""
        tr = self._state.tr
        tr_sel, tr_base, tr_limit, tr_flags = tr.selector, tr.base, tr.limit, tr.flags
        tss_type = (tr_flags >> 8) & 0xF
        if tss_type in (9, 11):
            off = 4 + 8 * new_cpl
            if off + 5 > tr_limit:
                raise DeliveryFault(10, (tr_sel & 0xFFFC) + ext)
            esp, ss = struct.unpack("<IH", self._read_linear(tr_base + off, 6))
        elif tss_type in (1, 3):
            off = 2 + 4 * new_cpl
            if off + 3 > tr_limit:
                raise DeliveryFault(10, (tr_sel & 0xFFFC) + ext)
            esp, ss = struct.unpack("<HH", self._read_linear(tr_base + off, 4))
        else:
            raise DeliveryFault(10, (tr_sel & 0xFFFC) + ext)
        ss_err = (ss & 0xFFFC) + ext
        if ss & 0xFFFC == 0 or (ss & 3) != new_cpl:
            raise DeliveryFault(10, ss_err)
        lo, hi, _ = self._descriptor(ss, ss_err, fault=10)
        writable_data = (hi & (1 << 12)) and not (hi & (1 << 11)) and (hi & (1 << 9))
        if not writable_data or ((hi >> 13) & 3) != new_cpl:
            raise DeliveryFault(10, ss_err)
        if not hi & (1 << 15):
            raise DeliveryFault(12, ss_err)
        base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000)
        return ss, esp, base, bool(hi & DESC_B)

    def _descriptor(self, selector: int, err: int, fault: int = 13) -> tuple[int, int, int]:
        """(low dword, high dword, linear address) of a GDT/LDT descriptor."""
        cache = self._state.ldtr if selector & 4 else self._state.gdtr
        table, limit = cache.base, cache.limit
        index = selector & 0xFFF8
        if index + 7 > limit:
            raise DeliveryFault(fault, err)
        addr = table + index
        lo, hi = struct.unpack("<II", self._read_linear(addr, 8))
        return lo, hi, addr

    def _load_cs(self, selector: int, hi: int, addr: int) -> None:
        readable = bool(hi & (1 << 9))
        if not readable:
            # Unicorn loads CS like a data segment, which refuses an
            # execute-only segment: make it readable just for the load.
            self._write_linear(addr + 4, struct.pack("<I", hi | (1 << 9)), user=False)
        try:
            self._regs.write(X.UC_X86_REG_CS, selector)
        finally:
            if not readable:
                self._write_linear(addr + 4, struct.pack("<I", hi | (1 << 8)), user=False)

    def _enter_ring(self, cpl: int) -> None:
        """Make Unicorn's CPL ``cpl`` (only ring 0 is reachable this way:
        loading SS in real mode gives a DPL-0 SS, and CPL follows SS)."""
        if cpl != 0:
            raise TripleFault(f"interrupt into ring {cpl}: not supported")
        cr0 = self._regs.read(X.UC_X86_REG_CR0)
        self._regs.write(X.UC_X86_REG_CR0, cr0 & ~(CR0_PE | CR0_PG))
        self._regs.write(X.UC_X86_REG_SS, 0)
        self._regs.write(X.UC_X86_REG_CR0, cr0)

    def _set_cr2(self, value: int) -> None:
        cr3 = self._regs.read(X.UC_X86_REG_CR3)
        self._regs.write(X.UC_X86_REG_CR2, value)
        self._regs.write(X.UC_X86_REG_CR3, cr3)

    # ------------------------------------------------------ linear memory
    def _read_linear(self, addr: int, size: int) -> bytes:
        out = b""
        while size:
            chunk = min(size, 0x1000 - (addr & 0xFFF))
            out += self._mem.read(self.translate(addr, write=False, user=False), chunk)
            addr += chunk
            size -= chunk
        return out

    def _write_linear(self, addr: int, data: bytes, user: bool) -> None:
        while data:
            chunk = min(len(data), 0x1000 - (addr & 0xFFF))
            self._mem.poke(self.translate(addr, write=True, user=user), data[:chunk])
            addr += chunk
            data = data[chunk:]

    def translate(self, linear: int, write: bool, user: bool) -> int:
        """Linear -> physical through the guest's page tables, raising
        :class:`DeliveryFault` (#PF, with CR2) as the MMU would."""
        linear &= 0xFFFFFFFF
        cr0 = self._state.cr(0)
        if not cr0 & CR0_PG:
            return linear
        cr3, cr4 = self._state.cr(3), self._state.cr(4)
        rw = us = True

        def fault(present: bool) -> DeliveryFault:
            code = int(present) | (int(write) << 1) | (int(user) << 2)
            return DeliveryFault(14, code, cr2=linear)

        def entry(addr: int, size: int) -> int:
            return int.from_bytes(self._mem.read(addr, size), "little")

        if cr4 & CR4_PAE:
            addr_mask = 0x000FFFFFFFFFF000
            pdpte = entry((cr3 & 0xFFFFFFE0) + ((linear >> 30) & 3) * 8, 8)
            if not pdpte & 1:
                raise fault(False)
            pde = entry((pdpte & addr_mask) + ((linear >> 21) & 0x1FF) * 8, 8)
            if not pde & 1:
                raise fault(False)
            rw, us = bool(pde & 2), bool(pde & 4)
            if pde & 0x80:
                phys = (pde & 0x000FFFFFFFE00000) | (linear & 0x1FFFFF)
            else:
                pte = entry((pde & addr_mask) + ((linear >> 12) & 0x1FF) * 8, 8)
                if not pte & 1:
                    raise fault(False)
                rw, us = rw and bool(pte & 2), us and bool(pte & 4)
                phys = (pte & addr_mask) | (linear & 0xFFF)
        else:
            pde = entry((cr3 & 0xFFFFF000) + (linear >> 22) * 4, 4)
            if not pde & 1:
                raise fault(False)
            rw, us = bool(pde & 2), bool(pde & 4)
            if pde & 0x80 and cr4 & CR4_PSE:
                phys = (pde & 0xFFC00000) | (linear & 0x3FFFFF)
            else:
                pte = entry((pde & 0xFFFFF000) + ((linear >> 12) & 0x3FF) * 4, 4)
                if not pte & 1:
                    raise fault(False)
                rw, us = rw and bool(pte & 2), us and bool(pte & 4)
                phys = (pte & 0xFFFFF000) | (linear & 0xFFF)
        if user and not us:
            raise fault(True)
        if write and not rw and (user or cr0 & CR0_WP):
            raise fault(True)
        return phys

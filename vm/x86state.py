"""Reading the parts of Unicorn's x86 CPU state its API does not expose.

Unicorn reports every exception and ``int n`` to a ``UC_HOOK_INTR`` callback
with only the vector.  Interrupt delivery needs more:

* the exception's error code and whether it came from ``int n`` (an
  ``int 0x0d`` pushes no error code, a #GP does): QEMU keeps them in
  ``CPUX86State.error_code`` / ``exception_is_int``;
* the "inhibit interrupts for one instruction" flag after ``sti`` and
  ``mov ss`` (``hflags`` bit 3), so an external interrupt never lands
  between ``sti`` and ``hlt``;
* the current privilege level and the hidden segment bases (``segs[]``):
  the stack of the interrupted code is at SS.base + ESP.

``uc_context_save`` copies ``CPUX86State`` up to ``retaddr`` into a context
buffer, and all of the above lies inside that range.  The offsets are not
hard-coded: :func:`layout` finds them once per process by running a probe
engine through known states (a #GP with a known selector as error code, an
``int 0x0d``, a segment with a recognisable base) and checks each offset
against a second observation.  If the probe fails the Unicorn build is not
one this module understands, and the CPU refuses to start with that message.

The probe also establishes a Unicorn 2.1 bug we must work around: QEMU
clears ``old_exception`` after it has delivered an exception, but Unicorn
replaces delivery with the hook and never clears it, so the *next* fault
would be turned into a double fault (and the one after into a "triple
fault" that ends ``emu_start`` as if by ``hlt``).  After each exception the
hook writes -1 back into ``old_exception`` (:meth:`CpuState.clear_old_exception`).
"""

from __future__ import annotations

import ctypes
import functools
import struct
from dataclasses import dataclass

import numpy as np
from unicorn import (
    UC_ARCH_X86,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MODE_32,
    UC_PROT_ALL,
    Uc,
    UcError,
)
from unicorn import x86_const as X
from unicorn.unicorn_py3.unicorn import uclib

# hflags bits (QEMU target/i386/cpu.h)
HF_CPL_MASK = 3
HF_INHIBIT_IRQ_MASK = 1 << 3
HF_CS32_MASK = 1 << 4
HF_PE_MASK = 1 << 7

# segs[] order in CPUX86State
R_ES, R_CS, R_SS, R_DS, R_FS, R_GS = range(6)
_SEG_SIZE = 24  # uint32 selector, pad, uint64 base, uint32 limit, uint32 flags


@dataclass(frozen=True)
class EnvLayout:
    """Byte offsets into a saved Unicorn context buffer."""

    regs: int
    hflags: int
    segs: int
    error_code: int
    exception_is_int: int
    exception_next_eip: int
    old_exception: int
    size: int  # bytes to read (header + CPUX86State part)

    # Fixed by CPUX86State's declaration order after ``segs``.
    @property
    def ldt(self) -> int:
        return self.segs + 6 * _SEG_SIZE

    @property
    def tr(self) -> int:
        return self.segs + 7 * _SEG_SIZE

    @property
    def gdt(self) -> int:
        return self.segs + 8 * _SEG_SIZE

    @property
    def idt(self) -> int:
        return self.segs + 9 * _SEG_SIZE

    @property
    def cr(self) -> int:
        return self.segs + 10 * _SEG_SIZE


@dataclass(frozen=True)
class SegmentCache:
    selector: int
    base: int
    limit: int
    flags: int


class CpuState:
    """The hidden CPU state, read from a context buffer that
    :meth:`refresh` re-saves (one buffer per engine, no allocation)."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._layout = layout()
        self._ctx = uc.context_save()
        addr = ctypes.cast(self._ctx.context, ctypes.c_void_p).value
        assert addr is not None
        self._addr = addr
        self._raw = memoryview((ctypes.c_char * self._layout.size).from_address(addr)).cast("B")

    def refresh(self) -> CpuState:
        self._uc.context_update(self._ctx)
        return self

    def _i32(self, off: int) -> int:
        return struct.unpack_from("<i", self._raw, off)[0]

    @property
    def hflags(self) -> int:
        return struct.unpack_from("<I", self._raw, self._layout.hflags)[0]

    @property
    def cpl(self) -> int:
        return self.hflags & HF_CPL_MASK

    @property
    def inhibit_irq(self) -> bool:
        return bool(self.hflags & HF_INHIBIT_IRQ_MASK)

    @property
    def protected(self) -> bool:
        return bool(self.hflags & HF_PE_MASK)

    @property
    def error_code(self) -> int:
        return self._i32(self._layout.error_code) & 0xFFFFFFFF

    @property
    def exception_is_int(self) -> bool:
        return self._i32(self._layout.exception_is_int) != 0

    @property
    def exception_next_eip(self) -> int:
        """Where ``int n`` returns to (the instruction after it)."""
        return struct.unpack_from("<Q", self._raw, self._layout.exception_next_eip)[0] & 0xFFFFFFFF

    def gpr(self, index: int) -> int:
        """EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI by their encoding (0-7)."""
        return struct.unpack_from("<Q", self._raw, self._layout.regs + 8 * index)[0] & 0xFFFFFFFF

    @property
    def eip(self) -> int:
        return struct.unpack_from("<Q", self._raw, self._layout.regs + 128)[0] & 0xFFFFFFFF

    def _cache(self, off: int) -> SegmentCache:
        sel, base, limit, flags = struct.unpack_from("<IxxxxQII", self._raw, off)
        return SegmentCache(sel & 0xFFFF, base, limit, flags)

    def segment(self, index: int) -> SegmentCache:
        """ES, CS, SS, DS, FS, GS (R_ES ... R_GS)."""
        return self._cache(self._layout.segs + index * _SEG_SIZE)

    @property
    def ldtr(self) -> SegmentCache:
        return self._cache(self._layout.ldt)

    @property
    def tr(self) -> SegmentCache:
        return self._cache(self._layout.tr)

    @property
    def gdtr(self) -> SegmentCache:
        return self._cache(self._layout.gdt)

    @property
    def idtr(self) -> SegmentCache:
        return self._cache(self._layout.idt)

    def cr(self, n: int) -> int:
        return struct.unpack_from("<Q", self._raw, self._layout.cr + 8 * n)[0] & 0xFFFFFFFF

    def clear_old_exception(self) -> None:
        """Write -1 into ``old_exception`` (see the module docstring)."""
        off = self._layout.old_exception
        if self._i32(off) == -1:
            return
        struct.pack_into("<i", self._raw, off, -1)
        self._uc.context_restore(self._ctx)


class FastRegs:
    """Scalar register reads and writes straight through ``uc_reg_read`` /
    ``uc_reg_write`` with one reused buffer: the binding's own ``reg_read``
    spends several microseconds per call choosing a register class, which
    adds up on every interrupt.  Not for table registers (GDTR, ...)."""

    def __init__(self, uc: Uc) -> None:
        self._uch = uc._uch
        self._buf = ctypes.c_uint64()
        self._ref = ctypes.byref(self._buf)

    def read(self, reg: int) -> int:
        self._buf.value = 0
        status = uclib.uc_reg_read(self._uch, reg, self._ref)
        if status:
            raise UcError(status)
        return self._buf.value

    def write(self, reg: int, value: int) -> None:
        self._buf.value = value & 0xFFFFFFFFFFFFFFFF
        status = uclib.uc_reg_write(self._uch, reg, self._ref)
        if status:
            raise UcError(status)


# ---------------------------------------------------------------- the probe

_PROBE_CODE = bytes([
    0x66, 0xB8, 0x18, 0x00,              # mov ax, 0x18
    0x8E, 0xC0,                          # mov es, ax        (base 0x12345000)
    0xB8, 0x68, 0x24, 0x57, 0x13,        # mov eax, 0x13572468
    0xB9, 0xE0, 0xAC, 0x68, 0x24,        # mov ecx, 0x2468ace0
    0xBB, 0x38, 0x12, 0x00, 0x77,        # mov ebx, 0x77001238
    0x8E, 0xE3,                          # mov fs, bx        -> #GP(0x1238)
    0xBB, 0x40, 0x23, 0x00, 0x66,        # mov ebx, 0x66002340
    0x8E, 0xEB,                          # mov gs, bx        -> #GP(0x2340), not #DF
    0xCD, 0x0D,                          # int 0x0d          -> software, no error code
    0xF4,                                # hlt
])
_PROBE_BASE = 0x1000
_GP1_EIP = _PROBE_BASE + 21
_GP2_EIP = _PROBE_BASE + 28


def _descriptor(base: int, limit: int, access: int, flags: int) -> bytes:
    lo = (limit & 0xFFFF) | ((base & 0xFFFF) << 16)
    hi = ((base >> 16) & 0xFF) | (access << 8) | (limit & 0xF0000) | (flags << 20) \
        | (base & 0xFF000000)
    return struct.pack("<II", lo, hi)


@functools.cache
def layout() -> EnvLayout:
    """Find the offsets (once per process); raises RuntimeError if this
    Unicorn build does not look like the one the module was written for."""
    try:
        return _probe()
    except (UcError, AssertionError, IndexError, ValueError) as exc:
        raise RuntimeError(f"cannot locate CPU state in this Unicorn build: {exc}") from exc


def _probe() -> EnvLayout:
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    ram = np.zeros(0x3000, dtype=np.uint8)
    uc.mem_map_ptr(0, ram.nbytes, UC_PROT_ALL, ram.ctypes.data)
    gdt = (bytes(8) + _descriptor(0, 0xFFFFF, 0x9B, 0xC) + _descriptor(0, 0xFFFFF, 0x93, 0xC)
           + _descriptor(0x12345000, 0xFFF, 0x93, 0x4))
    ram[0x2000 : 0x2000 + len(gdt)] = np.frombuffer(gdt, np.uint8)
    ram[_PROBE_BASE : _PROBE_BASE + len(_PROBE_CODE)] = np.frombuffer(_PROBE_CODE, np.uint8)
    uc.reg_write(X.UC_X86_REG_GDTR, (0, 0x2000, len(gdt) - 1, 0))
    uc.reg_write(X.UC_X86_REG_CS, 0x08)
    for reg in (X.UC_X86_REG_DS, X.UC_X86_REG_SS, X.UC_X86_REG_ES):
        uc.reg_write(reg, 0x10)
    uc.reg_write(X.UC_X86_REG_ESP, 0xF00)
    uc.reg_write(X.UC_X86_REG_IDTR, (0, 0x2800, 0x7FF, 0))
    uc.reg_write(X.UC_X86_REG_TR, (0x28, 0x3000, 0x67, 0x8B00))
    size = uc.context_save().size  # the uc_context header, then CPUX86State up to retaddr
    seen: list[tuple[int, int, bytes, ctypes.c_void_p]] = []
    found: dict[str, int] = {}

    def on_intr(uc: Uc, vector: int, _ud: object) -> None:
        ctx = uc.context_save()
        addr = ctypes.cast(ctx.context, ctypes.c_void_p).value
        raw = ctypes.string_at(addr, size)
        eip = uc.reg_read(X.UC_X86_REG_EIP)
        seen.append((vector, eip, raw, ctx))
        if vector == 13 and eip == _GP1_EIP:
            # Locate error_code by value; old_exception sits after
            # exception_next_eip, dr[8] and four breakpoint pointers.
            err = _unique(raw, struct.pack("<i", 0x1238))
            old = err + 4 + 4 + 8 + 64 + 32
            assert struct.unpack_from("<i", raw, old)[0] == 13, "old_exception not found"
            found["error_code"] = err
            found["old_exception"] = old
            ctypes.memmove(addr + old, struct.pack("<i", -1), 4)
            uc.context_restore(ctx)
        if eip in (_GP1_EIP, _GP2_EIP):
            uc.reg_write(X.UC_X86_REG_EIP, eip + 2)

    uc.hook_add(UC_HOOK_INTR, on_intr)
    uc.emu_start(_PROBE_BASE, _PROBE_BASE + len(_PROBE_CODE))
    assert [v for v, *_ in seen] == [13, 13, 13], f"probe saw vectors {[v for v, *_ in seen]}"
    (_, _, gp1, _), (_, eip2, gp2, _), (_, eip3, soft, _) = seen
    assert eip2 == _GP2_EIP and eip3 == _PROBE_BASE + 32
    err = found["error_code"]
    assert struct.unpack_from("<i", gp2, err)[0] == 0x2340, "error code of second #GP"
    is_int, next_eip = err + 4, err + 8
    assert struct.unpack_from("<ii", gp1, is_int)[0] == 0 and \
        struct.unpack_from("<i", soft, is_int)[0] == 1, "exception_is_int"
    assert struct.unpack_from("<Q", soft, next_eip)[0] == _PROBE_BASE + 32, "exception_next_eip"
    regs = _unique(gp1, struct.pack("<QQ", 0x13572468, 0x2468ACE0))
    assert struct.unpack_from("<Q", gp1, regs + 128)[0] == _GP1_EIP, "eip"
    hflags = regs + 176
    hf = struct.unpack_from("<I", gp1, hflags)[0]
    assert hf & HF_PE_MASK and hf & HF_CS32_MASK and not hf & HF_CPL_MASK, "hflags"
    segs = regs + 184
    es = struct.unpack_from("<IxxxxQ", gp1, segs + R_ES * _SEG_SIZE)
    assert es == (0x18, 0x12345000), f"segs: {es}"
    env = EnvLayout(regs=regs, hflags=hflags, segs=segs, error_code=err,
                    exception_is_int=is_int, exception_next_eip=next_eip,
                    old_exception=found["old_exception"], size=size)
    for name, off, want in (("gdt", env.gdt, (0x2000, len(gdt) - 1)),
                            ("idt", env.idt, (0x2800, 0x7FF)), ("tr", env.tr, (0x3000, 0x67))):
        got = struct.unpack_from("<QI", gp1, off + 8)
        assert got == want, f"{name}: {got}"
    assert struct.unpack_from("<Q", gp1, env.cr)[0] & 0xFFFFFFFF == uc.reg_read(X.UC_X86_REG_CR0)
    return env


@functools.cache
def invalid_opcode_reaches_intr_hook() -> bool:
    """Whether a ``UC_HOOK_INSN_INVALID`` hook that returns True passes the
    exception on to ``UC_HOOK_INTR`` as vector 6.

    Unicorn asks that hook first about every vector-6 event (``ud2`` and
    ``int $6`` alike).  Up to 2.1.1 True means "not fatal" and the event
    goes on to the interrupt hook; from 2.1.2 True means "handled": the
    engine drops the exception and resumes at EIP, which still points at
    the faulting instruction (for ``int $6``: at the ``int``).  Found by
    running ``ud2`` on a probe engine whose invalid-opcode hook moves EIP to
    a ``hlt`` and returns True."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    ram = np.zeros(0x2000, dtype=np.uint8)
    uc.mem_map_ptr(0, ram.nbytes, UC_PROT_ALL, ram.ctypes.data)
    ram[_PROBE_BASE : _PROBE_BASE + 3] = (0x0F, 0x0B, 0xF4)  # ud2; hlt
    vectors: list[int] = []
    invalid_calls = [0]

    def on_invalid(uc: Uc, _ud: object) -> bool:
        invalid_calls[0] += 1
        if invalid_calls[0] > 1:  # never expected; do not spin
            uc.emu_stop()
        uc.reg_write(X.UC_X86_REG_EIP, _PROBE_BASE + 2)
        return True

    uc.hook_add(UC_HOOK_INSN_INVALID, on_invalid)
    uc.hook_add(UC_HOOK_INTR, lambda uc, vector, _ud: vectors.append(vector))
    try:
        uc.emu_start(_PROBE_BASE, _PROBE_BASE + 3)
    except UcError as exc:
        raise RuntimeError(f"cannot probe this Unicorn build's #UD handling: {exc}") from exc
    if invalid_calls[0] != 1 or vectors not in ([], [6]):
        raise RuntimeError("cannot probe this Unicorn build's #UD handling: "
                           f"{invalid_calls[0]} invalid-opcode calls, vectors {vectors}")
    return vectors == [6]


def _unique(raw: bytes, needle: bytes) -> int:
    first = raw.find(needle)
    assert first >= 0, f"{needle.hex()} not found"
    assert raw.find(needle, first + 1) < 0, f"{needle.hex()} is ambiguous"
    return first


# ------------------------------------------------------------ register dump

_GPRS = (("EAX", X.UC_X86_REG_EAX), ("EBX", X.UC_X86_REG_EBX), ("ECX", X.UC_X86_REG_ECX),
         ("EDX", X.UC_X86_REG_EDX), ("ESI", X.UC_X86_REG_ESI), ("EDI", X.UC_X86_REG_EDI),
         ("EBP", X.UC_X86_REG_EBP), ("ESP", X.UC_X86_REG_ESP))
_SEG_NAMES = ("ES", "CS", "SS", "DS", "FS", "GS")
_FLAG_LETTERS = ((11, "O"), (10, "D"), (9, "I"), (7, "S"), (6, "Z"), (4, "A"), (2, "P"), (0, "C"))


def format_registers(uc: Uc) -> str:
    """The guest's register state, laid out like QEMU's ``info registers``."""
    snap = CpuState(uc).refresh()
    r = {name: uc.reg_read(reg) for name, reg in _GPRS}
    eip = uc.reg_read(X.UC_X86_REG_EIP)
    efl = uc.reg_read(X.UC_X86_REG_EFLAGS)
    flags = "".join(letter if efl & (1 << bit) else "-" for bit, letter in _FLAG_LETTERS)
    lines = [
        " ".join(f"{n}={r[n]:08x}" for n in ("EAX", "EBX", "ECX", "EDX")),
        " ".join(f"{n}={r[n]:08x}" for n in ("ESI", "EDI", "EBP", "ESP")),
        f"EIP={eip:08x} EFL={efl:08x} [{flags}] CPL={snap.cpl} "
        f"II={int(snap.inhibit_irq)}",
    ]
    for i, name in enumerate(_SEG_NAMES):
        seg = snap.segment(i)
        lines.append(f"{name:<3}={seg.selector:04x} {seg.base:08x} {seg.limit:08x} "
                     f"{seg.flags & 0x00FFFF00:08x}")
    for name, reg in (("LDT", X.UC_X86_REG_LDTR), ("TR", X.UC_X86_REG_TR)):
        sel, base, limit, flags = uc.reg_read(reg)
        lines.append(f"{name:<3}={sel:04x} {base:08x} {limit:08x} {flags & 0x00FFFF00:08x}")
    for name, reg in (("GDT", X.UC_X86_REG_GDTR), ("IDT", X.UC_X86_REG_IDTR)):
        _, base, limit, _ = uc.reg_read(reg)
        lines.append(f"{name}=     {base:08x} {limit:08x}")
    crs = [uc.reg_read(reg) & 0xFFFFFFFF for reg in
           (X.UC_X86_REG_CR0, X.UC_X86_REG_CR2, X.UC_X86_REG_CR3, X.UC_X86_REG_CR4)]
    lines.append("CR0={:08x} CR2={:08x} CR3={:08x} CR4={:08x}".format(*crs))
    return "\n".join(lines)

"""External interrupts through the real 8259 pair: delivery at an
instruction boundary only with IF=1, never inside the sti shadow, through
the IVT in real mode, and a halted guest that costs no host CPU."""

from __future__ import annotations

import resource
import sys
import threading
import time

from unicorn.x86_const import UC_X86_REG_EAX
from vm_asm import TestMachine

from devices.pic import PICPair
from vm.cpu import StopReason

EXIT = "mov $0, %al\n    out %al, $0xE1\n"

PIC_INIT = """
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xA0
    mov $0x20, %al            # master vectors 0x20-0x27
    out %al, $0x21
    mov $0x28, %al            # slave vectors 0x28-0x2f
    out %al, $0xA1
    mov $0x04, %al
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xA1
    mov $0x01, %al
    out %al, $0x21
    out %al, $0xA1
    mov $0xFE, %al            # only IRQ0 unmasked
    out %al, $0x21
    mov $0xFF, %al
    out %al, $0xA1
"""

IRQ0_GATE = """
    mov $0x20, %eax
    mov $irq0, %ebx
    mov $0x8E, %ecx
    mov $0x08, %edx
    call set_gate
"""


class HostPorts:
    """Port 0xE3: a write pulses IRQ0 (a device interrupting in response to
    the guest's own I/O).  Port 0xE4 reads 1 once the test sets ``m.go``."""

    def __init__(self, m: TestMachine, pic: PICPair) -> None:
        self.m = m
        self.pic = pic

    def io_read(self, offset: int, size: int) -> int:
        return int(getattr(self.m, "go", False)) if offset == 1 else 0

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            self.pic.irq(0).pulse()


def machine(body: str, mode: str = "pm32") -> tuple[TestMachine, PICPair]:
    m = TestMachine(body, mode=mode)
    pic = PICPair(m.ioports, m.cpu.kick)
    m.cpu.interrupt_controller = pic
    m.ioports.register(0xE3, 2, HostPorts(m, pic), "test-host")
    return m, pic


def wait_for(pred, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.001)


def test_irq_interrupts_a_spinning_guest() -> None:
    m, pic = machine(PIC_INIT + IRQ0_GATE + """
    mov $1, %eax
    out %eax, $0xE0
    sti
1:  inc %esi
    jmp 1b
irq0:
    mov $2, %eax
    out %eax, $0xE0
    """ + EXIT)
    stamps: list[float] = []
    orig = m.ioports.find(0xE0).handler.io_write  # type: ignore[union-attr]
    m.ioports.find(0xE0).handler.io_write = (  # type: ignore[union-attr, method-assign]
        lambda off, size, v: (stamps.append(time.perf_counter()), orig(off, size, v)))
    m.cpu.start()
    wait_for(lambda: m.values == [1])
    time.sleep(0.05)
    t0 = time.perf_counter()
    pic.irq(0).pulse()
    stop = m.cpu.join(5)
    assert stop is not None and stop.reason is StopReason.EXIT
    assert m.values == [1, 2]
    assert stamps[-1] - t0 < 0.1  # injection latency (typically well under 1 ms)


def test_irq_waits_while_if_is_clear_and_arrives_after_sti() -> None:
    m, pic = machine(PIC_INIT + IRQ0_GATE + """
    cli
    mov $1, %eax
    out %eax, $0xE0
1:  in $0xE4, %al             # wait until the host has raised IRQ0
    test %al, %al
    jz 1b
    mov $3000000, %ecx        # a while longer with the IRQ pending and IF=0
2:  dec %ecx
    jnz 2b
    mov $3, %eax
    out %eax, $0xE0
    sti
3:  jmp 3b
irq0:
    mov $4, %eax
    out %eax, $0xE0
    """ + EXIT)
    m.cpu.start()
    wait_for(lambda: m.values == [1])
    pic.irq(0).pulse()
    assert pic.has_interrupt()
    m.go = True  # type: ignore[attr-defined]
    stop = m.cpu.join(10)
    assert stop is not None and stop.reason is StopReason.EXIT
    assert m.values == [1, 3, 4]


def test_no_interrupt_inside_the_sti_shadow() -> None:
    # The OUT pulses IRQ0, which stops the engine at the end of the block;
    # `sti` ends that block, so the stop lands exactly in the shadow.
    m, pic = machine(PIC_INIT + IRQ0_GATE + """
    cli
    xor %ebx, %ebx
    out %al, $0xE3
    sti
    mov $1, %ebx
1:  jmp 1b
irq0:
    mov %ebx, %eax
    out %eax, $0xE0
    """ + EXIT)
    stop = m.run()
    assert stop.reason is StopReason.EXIT
    assert m.values == [1]


def test_sti_hlt_wakes_on_the_interrupt() -> None:
    m, pic = machine(PIC_INIT + IRQ0_GATE + """
    cli
    out %al, $0xE3            # IRQ0 pending while IF=0
    sti
    hlt                       # the interrupt arrives after hlt, not before
    mov $9, %eax
    out %eax, $0xE0
    """ + EXIT + """
irq0:
    mov $8, %eax
    out %eax, $0xE0
    mov $0x20, %al
    out %al, $0x20
    iret
    """)
    stop = m.run()
    assert stop.reason is StopReason.EXIT
    assert m.values == [8, 9]


def test_real_mode_irq_goes_through_the_ivt() -> None:
    m, pic = machine(PIC_INIT.replace("$0x20, %al            # master", "$0x08, %al  # master")
                     + """
    movw $irq0, (0x08 * 4)
    movw $0, (0x08 * 4 + 2)
    sti
    out %al, $0xE3
1:  jmp 1b
irq0:
    mov $0x42, %ax
    out %ax, $0xE0
    """ + EXIT, mode="real")
    stop = m.run()
    assert stop.reason is StopReason.EXIT
    assert m.values == [0x42]


def test_halted_guest_uses_almost_no_host_cpu() -> None:
    m, pic = machine(PIC_INIT + IRQ0_GATE + """
    mov $1, %eax
    out %eax, $0xE0
    sti
1:  hlt
    jmp 1b
irq0:
    mov $2, %eax
    out %eax, $0xE0
    """ + EXIT)
    m.cpu.start()
    wait_for(lambda: m.values == [1])
    time.sleep(0.05)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    time.sleep(1.0)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    pic.irq(0).pulse()
    stop = m.cpu.join(5)
    assert stop is not None and stop.reason is StopReason.EXIT
    assert m.values == [1, 2]
    assert cpu / wall < 0.02


def test_run_on_vcpu_reaches_a_spinning_guest() -> None:
    m, _ = machine("""
    mov $0x5151, %eax
1:  jmp 1b
    """)
    m.cpu.start()
    time.sleep(0.05)
    result: list[object] = []
    th = threading.Thread(target=lambda: result.append(
        m.cpu.run_on_vcpu(lambda: m.cpu.uc.reg_read(UC_X86_REG_EAX))))
    th.start()
    th.join(5)
    m.cpu.request_stop(StopReason.SHUTDOWN)
    assert m.cpu.join(5) is not None
    assert result == [0x5151]


def test_requests_to_a_halted_guest_are_never_left_waiting() -> None:
    """A guest halted with IF=0 wakes for nothing but host requests.  Eight
    threads post requests back to back for two seconds (with the GIL
    switching as often as it can, to widen any gap between the vCPU
    looking for requests and going back to sleep): requests keep being
    served; one that slips into such a gap waits until another wakes the
    vCPU, and when every poster is waiting, forever."""
    m, _ = machine("""
    cli
1:  hlt
    jmp 1b
    """)
    m.cpu.start()
    served = [0]
    stop = threading.Event()

    def post() -> None:
        while not stop.is_set():
            m.cpu.run_on_vcpu(lambda: None)
            served[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    posters = [threading.Thread(target=post, daemon=True) for _ in range(8)]
    try:
        for th in posters:
            th.start()
        last = served[0]
        for _ in range(8):
            time.sleep(0.25)
            assert served[0] > last, "every request left waiting"
            last = served[0]
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        m.cpu.request_stop(StopReason.SHUTDOWN)
        for th in posters:
            th.join(5)
    assert m.cpu.join(5) is not None


def test_irq_raised_inside_the_guests_own_out_returns_to_the_guest() -> None:
    """A device interrupting synchronously in response to an OUT (as the QXL
    IO_CMD interrupt does): the handler runs once, its iret resumes the code
    after the OUT, and the machine is not mistaken for halted."""
    m, pic = machine(PIC_INIT + IRQ0_GATE + """
    sti
    mov $1, %eax
    out %eax, $0xE0
    out %al, $0xE3            # pulses IRQ0 from inside this OUT
    mov $100000, %ecx
2:  dec %ecx
    jnz 2b
    mov $3, %eax
    out %eax, $0xE0
""" + EXIT + """
irq0:
    push %eax
    mov $2, %eax
    out %eax, $0xE0
    mov $0x20, %al
    out %al, $0x20
    pop %eax
    iret
""")
    m.cpu.start()
    stop = m.cpu.join(5)
    assert stop is not None and stop.reason is StopReason.EXIT
    assert m.values == [1, 2, 3]

#!/usr/bin/env python3
"""CPU benchmark: spicevm's Unicorn machine against QEMU TCG, same guest.

The guest is guest/bench (built here if missing or stale).  Figures:

* compute throughput: CRC-32 over 64 KiB, N rounds, at two values of N on
  both machines; the per-round time is the difference divided by the
  difference in rounds, so start-up (Python imports, firmware, QEMU's own
  start) cancels out.  Each run is repeated and the fastest kept.
* port I/O: reads of an unclaimed port, per read, the same way;
* a guest idling in ``hlt`` with a 100 Hz timer (and 1000 Hz on spicevm)
  for the given seconds: host CPU time of the whole process / wall time;
* external interrupt injection latency on spicevm (in this process): host
  pulses ISA IRQ 5, the guest's handler writes a port; time between the
  two, with the guest halted and with it spinning.

Not a pass/fail test: it prints the numbers.  Usage::

    tools/bench_cpu.py [--quick] [--idle-seconds S] [--repeat K]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vm.board import Board, BoardConfig  # noqa: E402
from vm.cli import build_firmware  # noqa: E402

QEMU = "qemu-system-x86_64"
Command = Callable[[Path, str], list[str]]  # (kernel, command line) -> argv


def spicevm_cmd(kernel: Path, append: str) -> list[str]:
    return [sys.executable, "-m", "vm.cli", "run", str(kernel), "-append", append,
            "-serial", "stdio", "-vga", "none", "-display", "none"]


def qemu_cmd(kernel: Path, append: str) -> list[str]:
    return [QEMU, "-accel", "tcg", "-kernel", str(kernel), "-append", append, "-serial", "stdio",
            "-display", "none", "-vga", "none", "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot"]


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; (wall seconds, CPU seconds of the child, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 1:  # the guest exits through isa-debug-exit with 0
        raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n{out[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, out


def best_wall(cmd: list[str], repeat: int) -> tuple[float, str]:
    runs = [timed(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[0][2]


def result_line(out: str) -> str:
    return next((ln for ln in out.splitlines() if ln.startswith("bench: ")), "?")


def per_unit(make: Command, kernel: Path, mode: str, n1: int, n2: int, repeat: int,
             units: int) -> tuple[float, str, str]:
    t1, o1 = best_wall(make(kernel, f"mode={mode} rounds={n1}"), repeat)
    t2, o2 = best_wall(make(kernel, f"mode={mode} rounds={n2}"), repeat)
    return (t2 - t1) / ((n2 - n1) * units), result_line(o1), result_line(o2)


def idle_cost(make: Command, kernel: Path, hz: int, seconds: float) -> float:
    """Host CPU per wall second of a guest idling in hlt: the difference
    between a 1 s idle run and a (1 + seconds) s idle run (start-up cancels)."""
    w1, c1, _ = timed(make(kernel, f"mode=idle hz={hz} ms=1000"))
    w2, c2, _ = timed(make(kernel, f"mode=idle hz={hz} ms={int((1 + seconds) * 1000)}"))
    return (c2 - c1) / (w2 - w1)


def irq_latency(bios: bytes, kernel: bytes, spin: bool, count: int = 300) -> list[float]:
    """Pulse IRQ 5 ``count`` times; seconds from the pulse to the guest's
    handler writing port 0xe0."""
    seen = threading.Event()
    stamps: list[float] = []
    ready = threading.Event()

    class EchoPort:
        def io_read(self, offset: int, size: int) -> int:
            return 0

        def io_write(self, offset: int, size: int, value: int) -> None:
            if value == 0:
                ready.set()
            else:
                stamps.append(time.perf_counter())
                seen.set()

    board = Board(BoardConfig(bios=bios, kernel=kernel, serial="none",
                              cmdline=f"mode=echo irq=5 count={count} spin={int(spin)}"))
    board.ioports.register(0xE0, 4, EchoPort(), "bench-echo")
    latencies: list[float] = []

    def driver() -> None:
        if not ready.wait(30):
            board.stop(message="the guest never got ready")
            return
        for _ in range(count):
            seen.clear()
            t0 = time.perf_counter()
            board.pic.irq(5).pulse()
            if not seen.wait(5):
                board.stop(message="an interrupt got no answer")
                return
            latencies.append(stamps[-1] - t0)
            time.sleep(0.002)

    thread = threading.Thread(target=driver, daemon=True)
    thread.start()
    stop = board.run()
    thread.join(5)
    if stop.status != 1:
        raise RuntimeError(f"echo guest stopped: {stop}")
    return latencies


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds, 3 s idle")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if args.quick:
        args.idle_seconds, args.repeat = 3.0, 1
    n1, n2 = (200, 1000) if args.quick else (1000, 4000)
    outputs = build_firmware(["bench"])
    kernel = outputs["bench"]
    have_qemu = shutil.which(QEMU) is not None
    print(f"guest: {kernel.relative_to(ROOT)}; host CPUs: {os.cpu_count()}")

    print(f"\ncompute: CRC-32 over 64 KiB, rounds {n1} and {n2}, best of {args.repeat}")
    ours, a, b = per_unit(spicevm_cmd, kernel, "crc", n1, n2, args.repeat, 1)
    print(f"  spicevm : {ours * 1e3:8.3f} ms/round   ({a} / {b})")
    if have_qemu:
        theirs, a, b = per_unit(qemu_cmd, kernel, "crc", n1, n2, args.repeat, 1)
        print(f"  QEMU TCG: {theirs * 1e3:8.3f} ms/round   ({a} / {b})")
        print(f"  spicevm throughput = {theirs / ours:.2f} x QEMU TCG")

    r1, r2 = (100, 500) if args.quick else (200, 2000)
    print(f"\nport I/O: reads of unclaimed port 0x80, {r1}k and {r2}k reads")
    ours_io, _, _ = per_unit(spicevm_cmd, kernel, "io", r1, r2, args.repeat, 1000)
    print(f"  spicevm : {ours_io * 1e6:8.3f} us/read")
    if have_qemu:
        theirs_io, _, _ = per_unit(qemu_cmd, kernel, "io", r1, r2, args.repeat, 1000)
        print(f"  QEMU TCG: {theirs_io * 1e6:8.3f} us/read")

    print(f"\nidle: guest in hlt for {args.idle_seconds:g} s more than a 1 s run "
          "(extra host CPU time / extra wall time)")
    for hz in (100, 1000):
        cost = idle_cost(spicevm_cmd, kernel, hz, args.idle_seconds)
        print(f"  spicevm,  {hz:4d} Hz timer: {cost * 100:5.2f} % of a core")
    if have_qemu:
        for hz in (100, 1000):
            cost = idle_cost(qemu_cmd, kernel, hz, args.idle_seconds)
            print(f"  QEMU TCG, {hz:4d} Hz timer: {cost * 100:5.2f} % of a core")

    print("\nIRQ injection latency on spicevm (host pulse -> guest handler's port write)")
    bios = outputs["bios"].read_bytes()
    blob = kernel.read_bytes()
    for spin in (False, True):
        lat = sorted(irq_latency(bios, blob, spin, 100 if args.quick else 300))
        what = "spinning" if spin else "halted  "
        print(f"  guest {what}: median {statistics.median(lat) * 1e6:7.1f} us, "
              f"p90 {lat[int(len(lat) * 0.9)] * 1e6:7.1f} us, max {lat[-1] * 1e6:7.1f} us")
    if not have_qemu:
        print(f"\n({QEMU} not found: QEMU figures skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

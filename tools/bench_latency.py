#!/usr/bin/env python3
"""SPICE latency with a real guest driver: spicevm against QEMU + spice-server.

Both machines boot the same guest, ``guest/build/latency.elf`` (the QXL
driver of guest/qxl; see guest/latency/main.c), with COM1 on a pipe:

* ``spicevm``: ``spicevm run latency.elf -spice port=N,... -serial stdio``
* ``qemu``: ``qemu-system-x86_64 -vga qxl -spice port=N,... -kernel
  latency.elf -serial stdio -display none``

On each, in turn, the same Python client (tests/spice_client.py) measures:

* ``main link -> MAIN_INIT`` and ``display link -> MARK`` (``--runs``
  fresh connections, ``--connect-gap`` s apart: a client meeting an idle
  server, whose per-link RSA keys are ready if it keeps spares; one more
  connection first, not counted, pays for first-use costs such as loading
  jitted code);
* ``key -> draw received``: the client sends a key press on the inputs
  channel; the guest's keyboard interrupt wakes its main flow, which pushes
  one DRAW_FILL (a colour and cell unique to the iteration) on the command
  ring; the clock stops when the client has that DRAW_FILL.  A round trip
  through the whole stack: inputs channel, i8042, IRQ, guest driver, QXL
  ring and doorbell, display worker, display channel;
* ``key -> guest submit`` and ``guest submit -> draw received``: the
  guest writes a marker byte to COM1 immediately before the ring push; a
  thread here timestamps it as it comes out of the pipe, so the round trip
  splits into the input half and the display half.

Iterations are ``--gap`` ms apart on average (randomised by half either
way), longer than the 10 ms ring poll of both servers, so every fill finds
the display worker idle, waiting for the doorbell.  The table also says how
often the guest's push rang it (NOTIFY_CMD at ``notify_on_prod``).  A gap
shorter than the poll (``--gap 6``) shows instead how each server treats a
command pushed while it is still polling the ring: a push that does not
ring waits for the worker's next poll.

    tools/bench_latency.py [spicevm] [qemu] [--iterations N] [--runs N]
                           [--gap MS] [--connect-gap S] [--json FILE]

Prints medians and 90th percentiles and the ratio spicevm / QEMU.  A
benchmark, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "tests"))
sys.path.insert(0, str(TOP / "tools"))

from bench_spice import connect_once, free_port, stop_process, wait_listening  # noqa: E402
from display_client import DisplayClient  # noqa: E402
from spice_client import Session  # noqa: E402

from spice import qxl  # noqa: E402
from spice.protocol import ChannelType, MsgCInputs, MsgDisplay  # noqa: E402

MARKER = 0x01          # the byte the guest writes right before each push
CELL = 32              # guest/latency/main.c
SCANCODE = 0x1E        # 'a', set 1
READY = re.compile(rb"latency: ready (\d+)x(\d+)\r?\n")
FILL = re.compile(r"^latency: fill (\d+) color 0x([0-9a-f]{6}) at (\d+),(\d+) notify (\d)$")

METRICS = ("main link -> MAIN_INIT", "display link -> MARK", "key -> draw received",
           "key -> guest submit", "guest submit -> draw received")
MACHINES = {"spicevm": "spicevm", "qemu": "QEMU + spice-server"}


def latency_color(n: int) -> int:
    """The fill colour of iteration ``n`` (guest/latency/main.c)."""
    return (((n * 2654435761) & 0xFFFFFFFF) >> 8) | 0x010101


def latency_rect(n: int, width: int, height: int) -> qxl.Rect:
    """The cell iteration ``n`` fills, as (top, left, bottom, right)."""
    cols, rows = width // CELL, height // CELL
    cell = (n - 1) % (cols * rows)
    x, y = cell % cols * CELL, cell // cols * CELL
    return qxl.Rect(y, x, y + CELL, x + CELL)


class GuestSerial:
    """COM1 of a VM process: lines, and the arrival time of each marker byte."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._cond = threading.Condition()
        self.markers: list[float] = []
        self.lines: list[str] = []
        self.raw = bytearray()
        self.closed = False
        threading.Thread(target=self._read, name="guest-serial", daemon=True).start()

    def _read(self) -> None:
        partial = b""
        while True:
            try:
                data = os.read(self._fd, 4096)
            except OSError:
                data = b""
            now = time.perf_counter()
            with self._cond:
                if not data:
                    self.closed = True
                    self._cond.notify_all()
                    return
                self.raw += data
                self.markers += [now] * data.count(MARKER)
                partial += data.replace(bytes([MARKER]), b"")
                *done, partial = partial.split(b"\n")
                self.lines += [ln.decode("utf-8", "replace").rstrip("\r") for ln in done]
                self._cond.notify_all()

    def wait(self, what: str, test, timeout: float):
        """The first non-false ``test()`` (called under the lock), or TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = test()
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    tail = bytes(self.raw[-300:]).decode("utf-8", "replace")
                    raise TimeoutError(f"guest serial: no {what} "
                                       f"({'closed' if self.closed else 'timed out'}); "
                                       f"last output: {tail!r}")
                self._cond.wait(left)

    def marker(self, n: int, timeout: float = 10.0) -> float:
        return self.wait(f"marker byte {n}",
                         lambda: self.markers[n - 1] if len(self.markers) >= n else 0, timeout)

    def fill_line(self, n: int, timeout: float = 10.0) -> re.Match[str]:
        def find():
            for line in reversed(self.lines):
                m = FILL.match(line)
                if m and int(m.group(1)) == n:
                    return m
                if line.startswith(f"latency: fill {n} failed"):
                    raise RuntimeError(line)
            return None
        return self.wait(f"report of fill {n}", find, timeout)


def machine_argv(machine: str, kernel: Path, port: int, qemu: str) -> list[str]:
    spice = f"port={port},addr=127.0.0.1,disable-ticketing=on"
    if machine == "spicevm":
        return [sys.executable, "-m", "vm.cli", "run", str(kernel), "-m", "128",
                "-spice", spice, "-serial", "stdio", "-display", "none"]
    return [qemu, "-vga", "qxl", "-m", "128", "-spice", spice, "-kernel", str(kernel),
            "-serial", "stdio", "-display", "none", "-monitor", "none", "-no-reboot"]


def wait_fill(d: DisplayClient, n: int, rect: qxl.Rect, timeout: float = 10.0) -> None:
    """Read the display channel until iteration ``n``'s DRAW_FILL arrives."""
    deadline = time.monotonic() + timeout
    want = latency_color(n)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"DRAW_FILL {n} did not arrive")
        t, body = d.ch.recv(left)
        if t != MsgDisplay.DRAW_FILL:
            d.apply(t, body)
            continue
        draw = d.decode_draw(t, body)
        color = draw.u.brush.color & 0xFFFFFF
        if color != want or tuple(draw.bbox) != tuple(rect):
            raise RuntimeError(f"iteration {n}: got a fill of {color:#08x} over "
                               f"{tuple(draw.bbox)}, expected {want:#08x} over {tuple(rect)}")
        return


def measure(machine: str, kernel: Path, *, iterations: int, runs: int, gap_ms: float,
            warmup: int, connect_gap: float = 0.3, qemu: str = "qemu-system-x86_64",
            seed: int = 1) -> dict[str, list[float]]:
    """Boot ``machine`` on the latency guest and take every sample (seconds),
    plus ``doorbell``: 1.0/0.0 per iteration, whether the push rang NOTIFY_CMD."""
    port = free_port()
    argv = machine_argv(machine, kernel, port, qemu)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=TOP, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err)
        try:
            assert proc.stdout is not None
            serial = GuestSerial(proc.stdout.fileno())
            try:
                ready = serial.wait("ready line", lambda: READY.search(serial.raw), 60)
            except TimeoutError as exc:
                err.seek(0)
                raise RuntimeError(f"{machine} did not boot the latency guest: {exc}; "
                                   f"stderr: {err.read()[-500:]!r}") from None
            width, height = int(ready.group(1)), int(ready.group(2))
            wait_listening(port)
            samples: dict[str, list[float]] = {k: [] for k in (*METRICS, "doorbell")}
            connect_once(port, "")  # warm-up, not counted
            for _ in range(runs):
                time.sleep(connect_gap)
                c = connect_once(port, "")
                samples["main link -> MAIN_INIT"].append(c["main link to MAIN_INIT"])
                samples["display link -> MARK"].append(c["display link to MARK"])
            _key_loop(port, serial, samples, width, height, iterations, warmup, gap_ms, seed)
            return samples
        finally:
            stop_process(proc)


def _key_loop(port: int, serial: GuestSerial, samples: dict[str, list[float]], width: int,
              height: int, iterations: int, warmup: int, gap_ms: float, seed: int) -> None:
    rng = random.Random(seed)
    s = Session("127.0.0.1", port)
    try:
        d = s.open_display(decode_draws=False)
        d.pump(until=MsgDisplay.MARK, timeout=30)
        inputs = s.open(ChannelType.INPUTS)
        for n in range(1, warmup + iterations + 1):
            time.sleep(gap_ms * rng.uniform(0.5, 1.5) / 1000)
            t_key = time.perf_counter()
            inputs.send(MsgCInputs.KEY_DOWN, struct.pack("<I", SCANCODE))
            wait_fill(d, n, latency_rect(n, width, height))
            t_draw = time.perf_counter()
            inputs.send(MsgCInputs.KEY_UP, struct.pack("<I", SCANCODE | 0x80))
            t_submit = serial.marker(n)
            line = serial.fill_line(n)
            if n <= warmup:
                continue
            samples["key -> draw received"].append(t_draw - t_key)
            samples["key -> guest submit"].append(t_submit - t_key)
            samples["guest submit -> draw received"].append(t_draw - t_submit)
            samples["doorbell"].append(float(line.group(5)))
    finally:
        s.close()


def percentile90(values: list[float]) -> float:
    vals = sorted(values)
    return vals[min(len(vals) - 1, int(round(0.9 * (len(vals) - 1))))]


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    out = {k: {"median_ms": statistics.median(v) * 1000, "p90_ms": percentile90(v) * 1000,
               "n": len(v)} for k, v in samples.items() if k != "doorbell" and v}
    bells = samples.get("doorbell") or []
    out["doorbell"] = {"fraction": sum(bells) / len(bells) if bells else 0.0, "n": len(bells)}
    return out


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(results)
    head = f"{'':32s}" + "".join(f"{MACHINES[m] + ' median / p90':>36s}" for m in names)
    both = "spicevm" in results and "qemu" in results
    if both:
        head += f"{'spicevm/QEMU':>14s}"
    rows = [head]
    for k in METRICS:
        row = f"{k:32s}"
        for m in names:
            r = results[m][k]
            row += f"{r['median_ms']:>24.2f} / {r['p90_ms']:6.2f} ms"
        if both:
            row += f"{results['spicevm'][k]['median_ms'] / results['qemu'][k]['median_ms']:>13.2f}x"
        rows.append(row)
    row = f"{'push rang NOTIFY_CMD':32s}"
    for m in names:
        b = results[m]["doorbell"]
        cell = f"{b['fraction'] * 100:.0f}% of {b['n']}"
        row += f"{cell:>36s}"
    rows.append(row)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("machines", nargs="*", default=["spicevm", "qemu"],
                    help="spicevm and/or qemu (default: both, in that order)")
    ap.add_argument("--iterations", type=int, default=100, help="keys per machine")
    ap.add_argument("--runs", type=int, default=10, help="fresh connections per machine")
    ap.add_argument("--gap", type=float, default=50.0, metavar="MS",
                    help="mean pause between keys (default 50 ms)")
    ap.add_argument("--warmup", type=int, default=3, help="keys not counted (default 3)")
    ap.add_argument("--connect-gap", type=float, default=0.3, metavar="S",
                    help="pause before each measured connection (default 0.3 s)")
    ap.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-x86_64"))
    ap.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    args = ap.parse_args(argv)
    for m in args.machines:
        if m not in MACHINES:
            ap.error(f"unknown machine {m!r} (spicevm or qemu)")
    if args.iterations < 1 or args.runs < 1:
        ap.error("--iterations and --runs must be at least 1")
    if "qemu" in args.machines and shutil.which(args.qemu) is None:
        ap.error(f"{args.qemu} is not installed")

    from vm.cli import build_firmware
    kernel = build_firmware(["latency"])["latency"]
    results = {}
    for m in dict.fromkeys(args.machines):
        samples = measure(m, kernel, iterations=args.iterations, runs=args.runs,
                          gap_ms=args.gap, warmup=args.warmup,
                          connect_gap=args.connect_gap, qemu=args.qemu)
        results[m] = summarize(samples)
    print(table(results))
    print(f"{args.iterations} keys ({args.warmup} more as warm-up, ~{args.gap:.0f} ms apart) "
          f"and {args.runs} connections per machine; guest {os.path.relpath(kernel, TOP)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

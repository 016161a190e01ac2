#!/usr/bin/env python3
"""SPICE server benchmark: connect time, time to the first picture, and the
latency from a display command to the client having the draw.

Targets, measured with the same Python client (tests/spice_client.py):

* ``ours``  -- this project's server in-process, fed by a scripted QXL
  device (commands are pushed at a known instant, so the command-to-draw
  latency is measured too);
* ``qemu``  -- qemu-system-x86_64 -vga qxl with libspice-server, booting
  ``--kernel`` (any Multiboot guest) or nothing;
* ``cmd``   -- any command line that starts a SPICE server on ``{port}``,
  e.g. the whole spicevm machine booting the same guest as QEMU::

    tools/bench_spice.py qemu cmd --kernel guest/build/hello.elf \
        --append timer_ms=60000 --cmd "python -m vm.cli run guest/build/hello.elf \
        -append timer_ms=60000 -spice port={port},disable-ticketing=on -serial none"

Prints medians and 90th percentiles and the ratio against QEMU when both
were measured.  Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "tests"))

from spice_client import Session  # noqa: E402

from spice.protocol import MsgDisplay  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate a machine under test, and kill it if it does not go."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def connect_once(port: int, password: str, decode: bool = False) -> dict[str, float]:
    """One client: main link, MAIN_INIT, display link, MARK.  Draws are not
    decoded (a foreign server may send compressed images)."""
    t0 = time.perf_counter()
    s = Session("127.0.0.1", port, password=password)
    t_init = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        d = s.open_display(decode_draws=decode)
        d.pump(until=MsgDisplay.MARK, timeout=30)
        t_mark = time.perf_counter() - t1
        return {"main link to MAIN_INIT": t_init, "display link to MARK": t_mark,
                "connect to first picture": t_init + t_mark}
    finally:
        s.close()


def summarize(name: str, samples: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    out = {}
    for key in samples[0]:
        vals = sorted(s[key] for s in samples)
        p90 = vals[min(len(vals) - 1, int(round(0.9 * (len(vals) - 1))))]
        out[key] = (statistics.median(vals), p90)
    return out


def bench_ours(runs: int, draws: int) -> tuple[list[dict], list[float]]:
    import numpy as np
    from spice_harness import Harness, bitmap32, copy_cmd, fill_cmd, primary_create

    from spice import qxl
    h = Harness()
    try:
        create, _ = primary_create(1024, 768)
        h.worker.create_primary_surface(create)
        h.worker.start()
        yy, xx = np.mgrid[0:768, 0:1024]
        h.qxl.push(copy_cmd(h.qxl.token(), (0, 0, 768, 1024),
                            bitmap32(((xx << 12) ^ (yy * 977)).astype(np.uint32) & 0xFFFFFF)))
        h.qxl.wait_drained()
        h.worker.update_area(0, qxl.Rect(0, 0, 768, 1024), True)
        connects = [connect_once(h.port, "") for _ in range(runs)]
        s = Session("127.0.0.1", h.port)
        d = s.open_display()
        d.pump(until=MsgDisplay.MARK)
        lat = []
        for i in range(draws):
            t0 = time.perf_counter()
            h.qxl.push(fill_cmd(h.qxl.token(), (i % 700, 0, i % 700 + 10, 1024), i * 7919))
            d.pump(until=MsgDisplay.DRAW_FILL)
            lat.append(time.perf_counter() - t0)
        s.close()
        return connects, lat
    finally:
        h.close()


def bench_process(argv: list[str], port: int, runs: int, password: str,
                  settle: float) -> list[dict]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port)
        time.sleep(settle)
        return [connect_once(port, password) for _ in range(runs)]
    finally:
        stop_process(proc)


def qemu_argv(port: int, kernel: str | None, append: str | None) -> list[str]:
    argv = ["qemu-system-x86_64", "-display", "none", "-vga", "qxl", "-m", "128",
            "-spice", f"port={port},addr=127.0.0.1,disable-ticketing=on", "-serial", "null",
            "-monitor", "none"]
    if kernel:
        argv += ["-kernel", kernel]
        if append:
            argv += ["-append", append]
    return argv


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", default=["ours", "qemu"],
                    help="ours, qemu and/or cmd (default: ours qemu)")
    ap.add_argument("--runs", type=int, default=10, help="connections per target")
    ap.add_argument("--draws", type=int, default=200, help="command-to-draw samples (ours)")
    ap.add_argument("--kernel", default=None, help="guest for QEMU (-kernel)")
    ap.add_argument("--append", default=None, help="guest command line for QEMU (-append)")
    ap.add_argument("--cmd", default=None, help="command starting a server on {port}")
    ap.add_argument("--password", default=os.environ.get("SPICE_PASSWORD", ""))
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds to let a started VM boot before measuring")
    args = ap.parse_args()

    results: dict[str, dict[str, tuple[float, float]]] = {}
    latency = None
    if args.kernel is None and (TOP / "guest/build/hello.elf").exists():
        args.kernel = str(TOP / "guest/build/hello.elf")
    for target in args.targets:
        if target == "ours":
            connects, latency = bench_ours(args.runs, args.draws)
            results["ours (in-process, scripted QXL)"] = summarize(target, connects)
        elif target == "qemu":
            port = free_port()
            connects = bench_process(qemu_argv(port, args.kernel, args.append), port,
                                     args.runs, "", args.settle)
            results["qemu + spice-server"] = summarize(target, connects)
        elif target == "cmd":
            if not args.cmd:
                ap.error("cmd needs --cmd")
            port = free_port()
            argv = shlex.split(args.cmd.format(port=port))
            connects = bench_process(argv, port, args.runs, args.password, args.settle)
            results[f"cmd: {argv[0]}"] = summarize(target, connects)
        else:
            ap.error(f"unknown target {target!r}")

    keys = list(next(iter(results.values())))
    print(f"{'':36s}" + "".join(f"{k:>28s}" for k in keys))
    for name, res in results.items():
        row = "".join(f"{res[k][0] * 1000:14.2f} ms (p90 {res[k][1] * 1000:6.1f})" for k in keys)
        print(f"{name:36s}{row}")
    ref = results.get("qemu + spice-server")
    if ref:
        for name, res in results.items():
            if res is ref:
                continue
            ratios = "  ".join(f"{k}: {res[k][0] / ref[k][0]:.2f}x" for k in keys)
            print(f"{name} / qemu: {ratios}")
    if latency:
        lat = sorted(latency)
        print(f"command to client draw (ours): median {statistics.median(lat) * 1000:.2f} ms, "
              f"p90 {lat[int(0.9 * (len(lat) - 1))] * 1000:.2f} ms over {len(lat)} commands")
    if args.kernel:
        print(f"QEMU guest: {os.path.relpath(args.kernel, TOP)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

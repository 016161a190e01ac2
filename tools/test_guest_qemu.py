#!/usr/bin/env python3
"""Run the in-guest driver test suites on QEMU's QXL, the reference device.

    tools/test_guest_qemu.py [SUITE ...] [--junit FILE] [--timeout S] [--dump]
                             [--golden-dir DIR] [--qemu PATH] [--quiet]

Builds guest/build/tests.elf and boots it with::

    qemu-system-x86_64 -vga qxl -spice port=N,addr=127.0.0.1,disable-ticketing=on
        -kernel guest/build/tests.elf -append "suite=..." -serial stdio
        -display none -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot

(QEMU's own -kernel Multiboot loader, its SeaBIOS, and the spice-server it
links).  QEMU has no VDIPort, so the agent suite reports SKIP.  The TAP
stream goes to stdout, then a summary; the exit status is the number of
failures (capped at 125), as for ``spicevm test-guest``, whose TAP parser
and JUnit writer this uses.  ``--dump`` turns on the golden image lines
(see guest/tests/README.md); ``--golden-dir DIR`` also saves them as .npy
files: pixels spice-server's canvas produced, for the project's own canvas
tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vm.testguest import (  # noqa: E402
    DEFAULT_TIMEOUT_S,
    MAX_STATUS,
    TapParser,
    TapRun,
    exit_status,
    junit_xml,
    kernel_cmdline,
    parse_goldens,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_kernel() -> Path:
    sys.path.insert(0, str(ROOT / "tools"))
    import build_guest

    return build_guest.build(["tests"])["tests"]


def qemu_command(qemu: str, kernel: Path, cmdline: str, port: int) -> list[str]:
    cmd = [qemu, "-vga", "qxl", "-spice", f"port={port},addr=127.0.0.1,disable-ticketing=on",
           "-kernel", str(kernel), "-serial", "stdio", "-display", "none",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot", "-m", "128"]
    if cmdline:
        cmd += ["-append", cmdline]
    return cmd


def run_qemu(suites: list[str], *, dump: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
             qemu: str = "qemu-system-x86_64", echo=None) -> tuple[TapRun, int, float, str]:
    """Boot the suites on QEMU; (TAP result, QEMU exit status, seconds, stderr)."""
    kernel = build_kernel()
    cmd = qemu_command(qemu, kernel, kernel_cmdline(suites, dump), free_port())
    parser = TapParser()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", cwd=ROOT)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parser.feed_line(line)
            if echo is not None:
                echo(line.rstrip("\n"))

    errors: list[str] = []

    def read_err() -> None:
        assert proc.stderr is not None
        errors.extend(proc.stderr)

    # reader threads: a guest that hangs without printing still times out,
    # and a chatty stderr never fills its pipe
    reader = threading.Thread(target=read, daemon=True)
    err_reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    err_reader.start()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        parser.run.bail = f"QEMU timed out after {timeout_s:.0f} s"
    reader.join(5)
    err_reader.join(5)
    return parser.run, proc.returncode, time.monotonic() - start, "".join(errors)


def write_goldens(directory: Path, serial: str) -> int:
    """The dumped regions as .npy files and an index; returns how many."""
    import json

    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    index = []
    for g in parse_goldens(serial):
        if not g.crc_ok():
            print(f"test_guest_qemu: golden {g.name} {g.stage}: bad CRC, skipped",
                  file=sys.stderr)
            continue
        name = f"{g.name}-{g.stage}.npy"
        np.save(directory / name,
                np.array(g.pixels, np.uint32).reshape(g.height, g.width))
        index.append({"file": name, "test": g.name, "stage": g.stage, "surface": g.surface,
                      "x": g.x, "y": g.y, "width": g.width, "height": g.height,
                      "crc": f"{g.crc:08x}"})
    (directory / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return len(index)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all)")
    ap.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    ap.add_argument("--dump", action="store_true", help="golden image lines for checked regions")
    ap.add_argument("--golden-dir", metavar="DIR",
                    help="with --dump: also write each region as DIR/<name>-<stage>.npy "
                         "(uint32 0xRRGGBB, height x width) plus DIR/index.json")
    ap.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-x86_64"),
                    help="the QEMU binary (default: $QEMU or qemu-system-x86_64)")
    ap.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    args = ap.parse_args(argv)
    if shutil.which(args.qemu) is None:
        print(f"test_guest_qemu: {args.qemu} not found (Debian: apt-get install qemu-system-x86)",
              file=sys.stderr)
        return MAX_STATUS

    def echo(line: str) -> None:
        if args.quiet and not line.startswith("not ok"):
            return
        print(line, flush=True)

    lines: list[str] = []

    def keep(line: str) -> None:
        lines.append(line)
        echo(line)

    tap, status, elapsed, stderr = run_qemu(args.suites, dump=args.dump or bool(args.golden_dir),
                                            timeout_s=args.timeout, qemu=args.qemu, echo=keep)
    if args.golden_dir:
        n = write_goldens(Path(args.golden_dir), "\n".join(lines))
        print(f"test_guest_qemu: {n} golden regions in {args.golden_dir}", file=sys.stderr)
    if args.junit:
        Path(args.junit).write_text(junit_xml(tap, "qemu-guest", elapsed))
    if tap.planned is None and not tap.tests:
        print(f"test_guest_qemu: the guest printed no TAP plan (QEMU status {status})\n"
              + stderr.strip(), file=sys.stderr)
        return MAX_STATUS
    print(tap.summary(f"QEMU test-guest ({elapsed:.1f} s)"))
    return exit_status(tap)


if __name__ == "__main__":
    sys.exit(main())

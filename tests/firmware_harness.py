"""Shared helpers for the firmware and guest-toolkit tests: building with
tools/build_guest.py, booting QEMU, and reading what the guests print
(TAP lines and the PCI report)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
QEMU = "qemu-system-x86_64"

# The documented way to run a guest on QEMU, minus the kernel/BIOS choice.
QEMU_ARGS = [
    "-serial", "stdio", "-display", "none", "-vga", "qxl",
    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot",
]
EXIT_PASSED = 1  # qemu_exit(0): (0 << 1) | 1
EXIT_FAILED = 3  # qemu_exit(1)
EXIT_PANIC = 255  # qemu_exit(0x7f)


def missing(reason: str) -> None:
    """Skip with a reason, or fail when CI=true (a CI machine must have
    every tool the suite needs)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required tool missing under CI: {reason}")
    pytest.skip(reason)


@cache
def build_guest_module() -> ModuleType:
    """tools/build_guest.py, imported by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_guest", ROOT / "tools/build_guest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def build_or_skip(targets: list[str]) -> dict[str, Path]:
    bg = build_guest_module()
    try:
        bg.check_toolchain()
    except bg.BuildError as exc:
        missing(str(exc))
    return bg.build(targets)


def qemu_or_skip() -> None:
    if shutil.which(QEMU) is None:
        missing(f"{QEMU} not found (Debian: apt-get install qemu-system-x86)")


@dataclass
class Run:
    rc: int | None  # None when the time limit ended the run
    out: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_qemu(args: list[str], timeout: float = 20.0) -> Run:
    """Run QEMU with `args` (paths relative to the repository root) and
    return its exit status and serial output.  A run that outlives
    `timeout` is killed and reported with rc None."""
    cmd = [QEMU, *args]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        return Run(None, out.decode("latin-1").replace("\r", ""))
    return Run(proc.returncode, proc.stdout.decode("latin-1").replace("\r", ""))


def run_qemu_until_halt(args: list[str], marker: str, quiet: float = 0.5,
                        timeout: float = 10.0) -> Run:
    """Run QEMU until a line containing `marker` has appeared and nothing
    more was printed for `quiet` seconds (a halted guest), then kill it and
    return the output with rc None.  If QEMU exits first, rc is its status."""
    proc = subprocess.Popen([QEMU, *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    chunks: list[bytes] = []
    last = [time.monotonic()]

    def reader() -> None:
        assert proc.stdout is not None
        while data := proc.stdout.read1(4096):
            chunks.append(data)
            last[0] = time.monotonic()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    rc: int | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            rc = proc.returncode
            break
        seen = marker.encode() in b"".join(chunks)
        if seen and time.monotonic() - last[0] >= quiet:
            break
        time.sleep(0.05)
    if rc is None:
        proc.kill()
        proc.wait(timeout=10)
    t.join(timeout=5)
    return Run(rc, b"".join(chunks).decode("latin-1").replace("\r", ""))


# --------------------------------------------------------------------------
# TAP

_TAP_LINE = re.compile(r"^(not )?ok (\d+)(?: - (.*?))?(?: # SKIP (.*))?$")


@dataclass
class Tap:
    planned: int | None = None
    results: list[tuple[bool, int, str]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [f"{n} - {desc}" for passed, n, desc in self.results if not passed]

    def find(self, fragment: str) -> tuple[bool, int, str]:
        for r in self.results:
            if fragment in r[2]:
                return r
        raise AssertionError(f"no TAP line containing {fragment!r}")


def parse_tap(out: str) -> Tap:
    tap = Tap()
    for line in out.splitlines():
        m = re.match(r"^1\.\.(\d+)$", line)
        if m:
            tap.planned = int(m.group(1))
            continue
        m = _TAP_LINE.match(line)
        if m:
            n = int(m.group(2))
            tap.results.append((m.group(1) is None, n, m.group(3) or m.group(4) or ""))
            if m.group(4) is not None:
                tap.skipped.append(n)
    return tap


def assert_all_passed(tap: Tap, run: Run) -> None:
    assert tap.planned is not None, f"no TAP plan in output:\n{run.out}"
    assert len(tap.results) == tap.planned, f"ran {len(tap.results)} of {tap.planned}:\n{run.out}"
    assert not tap.failures, f"failed: {tap.failures}\n{run.out}"
    assert run.rc == EXIT_PASSED, f"exit status {run.rc}:\n{run.out}"


# --------------------------------------------------------------------------
# The PCI report (lib/pci.h pci_print format)

_PCI_LINE = re.compile(
    r"^pci (?P<bdf>[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) (?P<id>[0-9a-f]{4}:[0-9a-f]{4}) "
    r"class (?P<cls>[0-9a-f]{6}) irq (?P<irq>none|\d+)$")
_BAR_LINE = re.compile(
    r"^  (?P<name>bar[0-5]|rom) (?P<type>io|mem|mem64)(?P<pref> pref)? "
    r"0x(?P<addr>[0-9a-f]+) size 0x(?P<size>[0-9a-f]+)$")


@dataclass
class PciFunction:
    bdf: str
    ident: str
    cls: str
    irq: str
    bars: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # name -> type, addr, size


def parse_pci(out: str, prefix: str = "") -> dict[str, PciFunction]:
    """The devices a report lists, by bdf.  Only lines starting with
    `prefix` are read (the BIOS prefixes its lines with "bios: ")."""
    devices: dict[str, PciFunction] = {}
    current: PciFunction | None = None
    for raw in out.splitlines():
        if not raw.startswith(prefix):
            continue
        line = raw[len(prefix):]
        m = _PCI_LINE.match(line)
        if m:
            current = PciFunction(m["bdf"], m["id"], m["cls"], m["irq"])
            devices[current.bdf] = current
            continue
        m = _BAR_LINE.match(line)
        if m and current is not None:
            kind = m["type"] + (" pref" if m["pref"] else "")
            current.bars[m["name"]] = (kind, int(m["addr"], 16), int(m["size"], 16))
        else:
            current = None
    return devices

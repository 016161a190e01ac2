"""``spicevm test-guest``: boot the in-guest driver test suites headless and
report their TAP stream.

    spicevm test-guest [SUITE ...] [--junit FILE] [--timeout S] [--dump] [--list] [--quiet]
                       [--log LEVEL]

The suites (guest/tests, built into guest/build/tests.elf) exercise the QXL
device contract from a real x86 driver: one TAP line per test on COM1.  The
machine is the ``spicevm run`` PC with a qxl-vga, the VDIPort agent device
and the SPICE server on a free loopback port (its display worker is what
executes QXL commands).  The agent suite needs a client on the other end of
VDIPort: this command connects one (see :mod:`vm.agentpeer`).

The TAP stream goes to stdout as it arrives, then a summary line.  The exit
status is the number of failed tests (planned tests that never reported
count as failed), capped at 125; 0 means everything passed or was skipped.
``--junit FILE`` also writes JUnit XML for CI systems.

The TAP parser and the JUnit writer are shared with the QEMU runner
(tools/test_guest_qemu.py).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
GUEST = "tests"
DEFAULT_TIMEOUT_S = 300.0
MAX_STATUS = 125

_TEST = re.compile(r"^(not ok|ok)\s+(\d+)\s*(?:-\s*)?(.*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$")
_PLAN = re.compile(r"^1\.\.(\d+)")


@dataclass
class TapTest:
    number: int
    ok: bool
    description: str
    skip: str | None = None          # the SKIP reason, if skipped
    diagnostics: list[str] = field(default_factory=list)

    @property
    def suite(self) -> str:
        """The "suite:" prefix of the description (or of a skip reason)."""
        head, sep, _ = (self.description or self.skip or "").partition(":")
        return head if sep and " " not in head else "guest"


@dataclass
class TapRun:
    """What a TAP stream said."""

    planned: int | None = None
    tests: list[TapTest] = field(default_factory=list)
    bail: str | None = None

    @property
    def passed(self) -> int:
        return sum(1 for t in self.tests if t.ok and t.skip is None)

    @property
    def skipped(self) -> int:
        return sum(1 for t in self.tests if t.skip is not None)

    @property
    def failed(self) -> int:
        return sum(1 for t in self.tests if not t.ok)

    @property
    def missing(self) -> int:
        """Planned tests that never reported (the guest died or hung)."""
        return max(0, (self.planned or 0) - len(self.tests))

    @property
    def failures(self) -> int:
        return self.failed + self.missing

    def summary(self, where: str) -> str:
        text = (f"{where}: {self.passed} passed, {self.failed} failed, {self.skipped} skipped "
                f"of {self.planned if self.planned is not None else len(self.tests)}")
        if self.missing:
            text += f" ({self.missing} never reported)"
        if self.bail:
            text += f"; {self.bail}"
        return text


class TapParser:
    """Incremental TAP reader: feed it lines as they arrive."""

    def __init__(self) -> None:
        self.run = TapRun()
        self._pending: list[str] = []

    def feed_line(self, line: str) -> None:
        line = line.rstrip("\r\n")
        m = _PLAN.match(line)
        if m and self.run.planned is None:
            self.run.planned = int(m.group(1))
            return
        m = _TEST.match(line)
        if m:
            skip = m.group(5) or "" if m.group(4) == "SKIP" else None
            test = TapTest(int(m.group(2)), m.group(1) == "ok", m.group(3), skip,
                           self._pending)
            self._pending = []
            self.run.tests.append(test)
            return
        if line.startswith("#") and not line.startswith(("# golden", "# row ")):
            self._pending.append(line[1:].strip())
        elif line.startswith("PANIC") or line.startswith("Bail out!"):
            self.run.bail = line.strip()

    def feed_text(self, text: str) -> None:
        for line in text.splitlines():
            self.feed_line(line)


def parse_tap(text: str) -> TapRun:
    """Parse a whole TAP stream."""
    p = TapParser()
    p.feed_text(text)
    return p.run


def junit_xml(run: TapRun, name: str, elapsed_s: float = 0.0) -> str:
    """The run as JUnit XML (one testsuite; a testcase per TAP line, a
    failed testcase per test that never reported)."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=name,
                          tests=str(len(run.tests) + run.missing),
                          failures=str(run.failures), errors="0",
                          skipped=str(run.skipped), time=f"{elapsed_s:.3f}")
    for t in run.tests:
        case = ET.SubElement(suite, "testcase", classname=f"{name}.{t.suite}",
                             name=f"{t.number:03d} {t.description}")
        if t.skip is not None:
            ET.SubElement(case, "skipped", message=t.skip)
        elif not t.ok:
            fail = ET.SubElement(case, "failure", message=t.description)
            fail.text = "\n".join(t.diagnostics)
    for n in range(len(run.tests) + 1, len(run.tests) + run.missing + 1):
        case = ET.SubElement(suite, "testcase", classname=f"{name}.guest", name=f"{n:03d}")
        ET.SubElement(case, "failure", message="the guest never reported this test")
    if run.bail:
        ET.SubElement(suite, "system-err").text = run.bail
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


@dataclass
class Golden:
    """A pixel region the guest dumped with dump=1 (guest/tests/README.md)."""

    name: str
    stage: str        # "before" or "after" the draw under test
    surface: int
    x: int
    y: int
    width: int
    height: int
    pixels: list[int]  # row by row, 0xRRGGBB
    crc: int

    def crc_ok(self) -> bool:
        import zlib

        raw = b"".join(p.to_bytes(4, "little") for p in self.pixels)
        return zlib.crc32(raw, 0xFFFFFFFF) ^ 0xFFFFFFFF == self.crc


_GOLDEN = re.compile(r"^# golden (\S+) (\S+) surface=(\d+) x=(\d+) y=(\d+) w=(\d+) h=(\d+)$")
_GOLDEN_ROW = re.compile(r"^# row (\d+) (\d+) ([0-9a-f]+)$")
_GOLDEN_END = re.compile(r"^# golden-end (\S+) (\S+) crc=([0-9a-f]{8})$")


def parse_goldens(text: str) -> list[Golden]:
    """Every complete golden dump in a serial log (incomplete ones are dropped)."""
    out: list[Golden] = []
    cur: Golden | None = None
    for line in text.splitlines():
        line = line.rstrip("\r")
        if m := _GOLDEN.match(line):
            name, stage, sid, x, y, w, h = m.groups()
            cur = Golden(name, stage, int(sid), int(x), int(y), int(w), int(h), [], 0)
        elif cur is not None and (m := _GOLDEN_ROW.match(line)):
            hexpx = m.group(3)
            cur.pixels += [int(hexpx[i:i + 8], 16) for i in range(0, len(hexpx), 8)]
        elif cur is not None and (m := _GOLDEN_END.match(line)):
            if (m.group(1), m.group(2)) == (cur.name, cur.stage) and \
                    len(cur.pixels) == cur.width * cur.height:
                cur.crc = int(m.group(3), 16)
                out.append(cur)
            cur = None
    return out


def exit_status(run: TapRun) -> int:
    return min(run.failures, MAX_STATUS)


def kernel_cmdline(suites: list[str], dump: bool = False) -> str:
    words = []
    if suites:
        words.append("suite=" + ",".join(suites))
    if dump:
        words.append("dump=1")
    return " ".join(words)


# --------------------------------------------------------------------- spicevm


class _LineSplitter:
    """Serial bytes (vCPU thread) -> complete lines, echoed and parsed."""

    def __init__(self, parser: TapParser, echo: Callable[[str], None] | None) -> None:
        self._parser = parser
        self._echo = echo
        self._buf = b""
        self._lock = threading.Lock()
        self.text: list[str] = []
        self.lines = threading.Condition(self._lock)

    def output(self, data: bytes) -> None:
        with self._lock:
            self._buf += data
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").rstrip("\r")
                self.text.append(line)
                self._parser.feed_line(line)
                if self._echo is not None:
                    self._echo(line)
            self.lines.notify_all()

    def flush(self) -> None:
        with self._lock:
            if self._buf:
                line = self._buf.decode("utf-8", "replace")
                self._buf = b""
                self.text.append(line)
                self._parser.feed_line(line)
                if self._echo is not None:
                    self._echo(line)


@dataclass
class SpicevmRun:
    tap: TapRun
    status: int            # the machine's exit status (guest debug-exit: (code << 1) | 1)
    elapsed_s: float
    serial: list[str]
    stop_message: str = ""


def run_spicevm(suites: list[str], *, dump: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                echo: Callable[[str], None] | None = None, agent_peer: bool = True,
                kernel: Path | None = None) -> SpicevmRun:
    """Boot the test-suite guest on spicevm with a SPICE server on a free
    loopback port and the VDIPort device; return what it reported."""
    from spice.options import SpiceOptions
    from vm.board import Board, BoardConfig
    from vm.cli import build_firmware
    from vm.cpu import StopReason

    outputs = build_firmware([] if kernel else [GUEST])
    kernel_path = kernel or outputs[GUEST]
    options = SpiceOptions.from_qemu_string("port=0,addr=127.0.0.1,disable-ticketing=on")
    config = BoardConfig(bios=outputs["bios"].read_bytes(), kernel=kernel_path.read_bytes(),
                         cmdline=kernel_cmdline(suites, dump), no_reboot=True, serial="none",
                         qxl=[{"vga": True}], spice=options, vdiport=True)
    board = Board(config)
    parser = TapParser()
    lines = _LineSplitter(parser, echo)
    board.uart.set_output(lines.output)
    peer = None
    timer = threading.Timer(timeout_s, board.stop, args=(StopReason.SHUTDOWN,
                                                         f"timed out after {timeout_s:.0f} s"))
    timer.daemon = True
    start = time.monotonic()
    try:
        board.start()
        if agent_peer and board.spice is not None:
            from vm.agentpeer import AgentPeer

            peer = AgentPeer("127.0.0.1", board.spice.port, lines)
            peer.start()
        timer.start()
        stop = board.wait()
    finally:
        timer.cancel()
        if peer is not None:
            peer.close()
    lines.flush()
    elapsed = time.monotonic() - start
    message = ""
    if stop.reason is not StopReason.EXIT:
        message = f"the machine stopped: {stop.reason.value} {stop.message}".strip()
        parser.run.bail = parser.run.bail or message
    return SpicevmRun(parser.run, stop.status, elapsed, lines.text, message)


# ------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spicevm test-guest", description=__doc__.split("\n\n")[0])
    p.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all)")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"stop the machine after S seconds (default {DEFAULT_TIMEOUT_S:.0f})")
    p.add_argument("--dump", action="store_true",
                   help="dump every checked pixel region (golden image lines)")
    p.add_argument("--list", action="store_true", help="list the suites and exit")
    p.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    p.add_argument("--log", default="error", choices=("debug", "info", "warning", "error"),
                   help="host log level (default error: the suites' deliberate guest bugs "
                        "are logged as warnings)")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log.upper(), stream=sys.stderr,
                        format="spicevm: %(name)s: %(message)s")

    def echo(line: str) -> None:
        if args.quiet and not line.startswith("not ok"):
            return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    if args.list:
        return _list_suites()
    result = run_spicevm(args.suites, dump=args.dump, timeout_s=args.timeout, echo=echo)
    tap = result.tap
    if tap.planned is None and not tap.tests:
        sys.stderr.write("spicevm: the test guest printed no TAP plan"
                         + (f" ({result.stop_message})" if result.stop_message else "") + "\n")
        if args.junit:
            Path(args.junit).write_text(junit_xml(tap, "spicevm-guest", result.elapsed_s))
        return MAX_STATUS
    print(tap.summary(f"spicevm test-guest ({result.elapsed_s:.1f} s)"))
    if args.junit:
        Path(args.junit).write_text(junit_xml(tap, "spicevm-guest", result.elapsed_s))
    return exit_status(tap)


def _list_suites() -> int:
    """Ask the guest itself for its suite table (list=1)."""
    from vm.board import Board, BoardConfig
    from vm.cli import build_firmware

    outputs = build_firmware([GUEST])
    config = BoardConfig(bios=outputs["bios"].read_bytes(),
                         kernel=outputs[GUEST].read_bytes(), cmdline="list=1", no_reboot=True,
                         serial="none", qxl=[{"vga": True}])
    board = Board(config)
    lines = _LineSplitter(TapParser(), None)
    board.uart.set_output(lines.output)
    board.run()
    lines.flush()
    for line in lines.text:
        if line.startswith("suite "):
            _, name, count, about = line.split(" ", 3)
            print(f"{name:10} {count:>3} tests  {about}")
    return 0

"""The in-guest QXL driver test suites: ``spicevm test-guest`` on spicevm and
tools/test_guest_qemu.py on QEMU 7.2's QXL (the reference device), plus the
TAP/JUnit plumbing both runners share.

Both machines must pass every suite; QEMU has no VDIPort, so there (and only
there) the agent suite is skipped.  Under CI=true a missing
qemu-system-x86_64 fails the QEMU test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

from firmware_harness import missing

from vm.testguest import exit_status, junit_xml, parse_goldens, parse_tap

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
AGENT_TESTS = 7
MIN_TESTS = 90  # guest/tests/README.md: the suites hold 90 tests


def junit_cases(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    return list(root.iter("testcase"))


def outcome(case: ET.Element) -> str:
    if case.find("failure") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def test_every_suite_passes_on_spicevm(tmp_path: Path) -> None:
    junit = tmp_path / "spicevm.xml"
    proc = subprocess.run([PYTHON, "-m", "vm.cli", "test-guest", "--junit", str(junit)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    run = parse_tap(proc.stdout)
    failed = [f"{t.number} {t.description}: {t.diagnostics}" for t in run.tests if not t.ok]
    assert proc.returncode == 0, (failed, proc.stdout[-3000:], proc.stderr[-3000:])
    assert run.planned is not None and run.planned >= MIN_TESTS
    assert len(run.tests) == run.planned and run.failures == 0
    assert run.skipped == 0, "spicevm has a VDIPort: nothing may be skipped"
    assert re.search(rf"spicevm test-guest \(.*\): {run.planned} passed, 0 failed",
                     proc.stdout)
    cases = junit_cases(junit)
    assert len(cases) == run.planned and {outcome(c) for c in cases} == {"passed"}
    agent = [t for t in run.tests if t.suite == "agent"]
    assert len(agent) == AGENT_TESTS and all(t.ok and t.skip is None for t in agent)


def test_every_suite_passes_on_qemu(tmp_path: Path) -> None:
    qemu = shutil.which(os.environ.get("QEMU", "qemu-system-x86_64"))
    if qemu is None:
        missing("qemu-system-x86_64 is not installed")
    junit = tmp_path / "qemu.xml"
    proc = subprocess.run([PYTHON, "tools/test_guest_qemu.py", "--qemu", qemu, "--junit",
                           str(junit)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    run = parse_tap(proc.stdout)
    failed = [f"{t.number} {t.description}: {t.diagnostics}" for t in run.tests if not t.ok]
    assert proc.returncode == 0, (failed, proc.stdout[-3000:], proc.stderr[-3000:])
    assert run.planned is not None and run.planned >= MIN_TESTS
    assert len(run.tests) == run.planned and run.failures == 0
    skipped = [t for t in run.tests if t.skip is not None]
    assert len(skipped) == AGENT_TESTS and {t.suite for t in skipped} == {"agent"}
    assert all("VDIPort" in t.skip for t in skipped)
    cases = junit_cases(junit)
    assert sum(outcome(c) == "skipped" for c in cases) == AGENT_TESTS


def test_golden_dump_lines_are_complete_and_checksummed(tmp_path: Path) -> None:
    """dump=1 prints each checked region before and after the draw as hex
    rows with a CRC (guest/tests/README.md); here for the draw suite."""
    proc = subprocess.run([PYTHON, "-m", "vm.cli", "test-guest", "--dump", "draw"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    goldens = re.findall(r"^# golden (\S+) (before|after) surface=(\d+) x=(\d+) y=(\d+) "
                         r"w=(\d+) h=(\d+)\n((?:# row .*\n)+)# golden-end \1 \2 crc=([0-9a-f]{8})$",
                         proc.stdout, re.M)
    names = {(g[0], g[1]) for g in goldens}
    assert ("fill-solid", "before") in names and ("text-a1", "after") in names
    assert len(goldens) >= 2 * 24
    for name, _stage, _sid, _x, _y, w, h, rows, crc in goldens:
        w, h = int(w), int(h)
        data = bytearray()
        lines = rows.splitlines()
        assert len(lines) == h * ((w + 127) // 128), name
        for line in lines:
            _, _, y, x0, hexpx = line.split(" ")
            assert len(hexpx) == 8 * min(128, w - int(x0))
            for i in range(0, len(hexpx), 8):
                data += int(hexpx[i:i + 8], 16).to_bytes(4, "little")
        # the guest's CRC: reflected 0xedb88320, seed 0, no final inversion
        assert zlib.crc32(bytes(data), 0xFFFFFFFF) ^ 0xFFFFFFFF == int(crc, 16), name
    parsed = parse_goldens(proc.stdout)
    assert len(parsed) == len(goldens) and all(g.crc_ok() for g in parsed)


def test_unknown_suite_is_reported_and_fails() -> None:
    proc = subprocess.run([PYTHON, "-m", "vm.cli", "test-guest", "nosuchsuite"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'no suite "nosuchsuite"' in proc.stdout
    assert "printed no TAP plan" in proc.stderr


TAP = """\
1..5
# suite rom: headers
ok 1 - rom: magic
# draw: (1,2) device 000000 expected ffffff
not ok 2 - draw: FILL solid
ok 3 # SKIP agent: no VDIPort
not ok 4 - draw: COPY
"""


def test_tap_failures_and_missing_tests_count_in_status_and_junit() -> None:
    run = parse_tap(TAP)
    assert (run.planned, run.passed, run.failed, run.skipped, run.missing) == (5, 1, 2, 1, 1)
    assert exit_status(run) == 3
    assert run.tests[1].diagnostics == ["draw: (1,2) device 000000 expected ffffff"]
    root = ET.fromstring(junit_xml(run, "guest").split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "3" and suite.get("skipped") == "1"
    assert suite.get("tests") == "5"
    fails = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert "expected ffffff" in (fails[0].find("failure").text or "")

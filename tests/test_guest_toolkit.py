"""The guest toolkit (guest/lib) and the guest build command.

A self-test guest (tests/test_guest_toolkit_selftest/main.c) is added to a
temporary copy of the tree the way any new guest is added -- a directory
under guest/ with a main.c -- built with that copy's tools/build_guest.py
and booted on QEMU with ``-kernel``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from firmware_harness import (
    EXIT_FAILED,
    EXIT_PANIC,
    EXIT_PASSED,
    QEMU_ARGS,
    ROOT,
    Run,
    assert_all_passed,
    build_or_skip,
    parse_tap,
    qemu_or_skip,
    run_qemu,
)

SELFTEST = ROOT / "tests" / "test_guest_toolkit_selftest" / "main.c"


def build_tool(tree: Path, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(tree / "tools/build_guest.py"), *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the guest sources and the build tool with the self-test
    guest added as guest/selftest."""
    build_or_skip(["hello"])  # skips/fails early when the toolchain is missing
    top = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "guest" / "lib", top / "guest" / "lib")
    shutil.copy2(ROOT / "guest" / "link.ld", top / "guest" / "link.ld")
    (top / "tools").mkdir()
    shutil.copy2(ROOT / "tools" / "build_guest.py", top / "tools" / "build_guest.py")
    (top / "guest" / "selftest").mkdir()
    shutil.copy2(SELFTEST, top / "guest" / "selftest" / "main.c")
    proc = build_tool(top, "selftest")
    assert proc.returncode == 0, proc.stderr
    return top


def boot(tree: Path, name: str, cmdline: str = "") -> Run:
    qemu_or_skip()
    args = ["-kernel", str(tree / "guest" / "build" / f"{name}.elf"), *QEMU_ARGS]
    if cmdline:
        args += ["-append", cmdline]
    return run_qemu(args)


def test_selftest_passes(tree: Path) -> None:
    run = boot(tree, "selftest", "alpha beta=two gamma=0x10")
    tap = parse_tap(run.out)
    assert_all_passed(tap, run)
    assert tap.planned == 37


def test_failed_test_exits_with_status_3(tree: Path) -> None:
    run = boot(tree, "selftest", "mode=fail")
    assert "not ok 2 - a failing test" in run.lines
    assert "# 1 passed, 1 failed, 0 skipped of 2" in run.lines
    assert run.rc == EXIT_FAILED


def test_panic_reports_and_exits_with_status_255(tree: Path) -> None:
    run = boot(tree, "selftest", "mode=panic")
    assert "PANIC: selftest asked for a panic (42)" in run.lines
    assert run.rc == EXIT_PANIC


def test_unhandled_page_fault_is_reported(tree: Path) -> None:
    run = boot(tree, "selftest", "mode=fault")
    m = re.search(r"^\*\*\* unhandled exception 14 \(#PF\) error_code=0x2 eip=0x001[0-9a-f]{5} "
                  r"cr2=0xe0001234$", run.out, re.M)
    assert m, run.out
    assert re.search(r"^  eax=[0-9a-f]{8} ebx=[0-9a-f]{8} ecx=[0-9a-f]{8} edx=[0-9a-f]{8}$",
                     run.out, re.M)
    assert re.search(r"cr0=8001[0-9a-f]{4} ", run.out), "CR0 should show PG and PE"
    assert run.rc == EXIT_PANIC


def test_build_is_incremental(tree: Path) -> None:
    elf = tree / "guest" / "build" / "selftest.elf"
    string_o = tree / "guest" / "build" / "obj" / "guest" / "lib" / "string.o"
    isr_o = tree / "guest" / "build" / "obj" / "guest" / "lib" / "isr.S.o"
    before = (elf.stat().st_mtime_ns, string_o.stat().st_mtime_ns, isr_o.stat().st_mtime_ns)
    proc = build_tool(tree, "selftest")
    assert proc.returncode == 0 and "built" not in proc.stderr, proc.stderr
    assert elf.stat().st_mtime_ns == before[0]

    header = tree / "guest" / "lib" / "string.h"
    os.utime(header, ns=(header.stat().st_atime_ns, before[0] + 10**9))
    proc = build_tool(tree, "selftest")
    assert proc.returncode == 0, proc.stderr
    assert "built guest/build/selftest.elf" in proc.stderr
    assert string_o.stat().st_mtime_ns > before[1], "string.o depends on string.h"
    assert isr_o.stat().st_mtime_ns == before[2], "isr.S does not include string.h"


def test_new_guest_with_library_and_flags(tree: Path) -> None:
    (tree / "guest" / "mylib").mkdir()
    (tree / "guest" / "mylib" / "value.c").write_text("int mylib_value(void) { return 7; }\n")
    second = tree / "guest" / "second"
    second.mkdir()
    (second / "main.c").write_text(
        '#include "lib/console.h"\n'
        "int mylib_value(void);\n"
        "int main(void) { printf(\"second: %d\\n\", mylib_value());\n"
        "                 return mylib_value() - EXPECTED; }\n")
    (second / "build.cfg").write_text("[build]\nlibs = mylib\ncflags = -DEXPECTED=7\n")
    listed = build_tool(tree, "--list")
    assert listed.stdout.split() == ["bios", "second", "selftest"]
    proc = build_tool(tree, "second")
    assert proc.returncode == 0, proc.stderr
    run = boot(tree, "second")
    assert "second: 7" in run.lines
    assert run.rc == EXIT_PASSED


def test_unknown_target_is_one_line(tree: Path) -> None:
    proc = build_tool(tree, "nosuch")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("build_guest: error: unknown target 'nosuch' (known: bios, ")


def test_missing_gcc_is_one_clear_line(tree: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # a directory with no gcc
    proc = build_tool(tree, "selftest", env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "build_guest: error: gcc not found: install it (Debian: apt-get install gcc)"
    ]


def test_missing_multilib_is_one_clear_line(tree: Path, tmp_path: Path) -> None:
    # A gcc whose -m32 libgcc does not exist: what a host without
    # gcc-multilib reports.
    fake = tmp_path / "gcc"
    fake.write_text("#!/bin/sh\necho /nonexistent/32/libgcc.a\n")
    fake.chmod(0o755)
    objcopy = shutil.which("objcopy")
    assert objcopy is not None
    os.symlink(objcopy, tmp_path / "objcopy")
    env = dict(os.environ, PATH=str(tmp_path))
    proc = build_tool(tree, "selftest", env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "install gcc-multilib" in lines[0], proc.stderr


def test_firmware_and_guests_build_without_warnings(tmp_path: Path) -> None:
    """A clean build of everything (-Wall -Wextra) prints no compiler warning."""
    build_or_skip(["hello"])
    for part in ("guest", "roms"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("build"))
    (tmp_path / "tools").mkdir()
    shutil.copy2(ROOT / "tools" / "build_guest.py", tmp_path / "tools" / "build_guest.py")
    proc = build_tool(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    built = sorted(p.name for p in (tmp_path / "guest" / "build").glob("*.elf"))
    assert "tests.elf" in built and "demo.elf" in built, built
    assert (tmp_path / "roms" / "build" / "bios.bin").is_file()

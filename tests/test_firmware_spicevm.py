"""The firmware and the hello guest on spicevm's own machine (vm.board),
compared with the same guest on QEMU.

The BIOS gets the raw kernel file through fw_cfg (the spicevm contract),
so this checks the contract end to end: loading, the command line, the
module, the memory map, PCI set-up, interrupts, exceptions and the exit
status.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from firmware_harness import (
    EXIT_PASSED,
    QEMU_ARGS,
    ROOT,
    Run,
    assert_all_passed,
    build_or_skip,
    parse_pci,
    parse_tap,
    qemu_or_skip,
    run_qemu,
)

from vm.board import Board, BoardConfig
from vm.cpu import StopReason

HELLO = ROOT / "guest" / "build" / "hello.elf"


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    return build_or_skip(["bios", "hello"])


def boot(tmp_path: Path, built: dict[str, Path], kernel: bytes | None, cmdline: str = "",
         initrd: bytes | None = None, stop_after: str | None = None,
         timeout: float = 60.0) -> tuple[Run, StopReason]:
    """Boot the machine with a QXL VGA device and COM1 in a file.  With
    `stop_after`, stop it once that text has appeared on the serial line."""
    serial = tmp_path / "serial.txt"
    cfg = BoardConfig(bios=built["bios"].read_bytes(), kernel=kernel, cmdline=cmdline,
                      initrd=initrd, serial=f"file:{serial}", no_reboot=True,
                      qxl=[{"vga": True}])
    board = Board(cfg)
    done = threading.Event()

    def watchdog() -> None:
        deadline = time.monotonic() + timeout
        while not done.wait(0.05) and time.monotonic() < deadline:
            if stop_after is not None and serial.exists() and stop_after in serial.read_text(
                    "latin-1"):
                time.sleep(0.3)  # anything printed after it would show up too
                break
        board.stop()

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        stop = board.run()
    finally:
        done.set()
    out = serial.read_text("latin-1").replace("\r", "") if serial.exists() else ""
    return Run(stop.status if stop.reason is StopReason.EXIT else None, out), stop.reason


def test_hello_passes_on_spicevm(built: dict[str, Path], tmp_path: Path) -> None:
    module = bytes(range(32))
    run, reason = boot(tmp_path, built, HELLO.read_bytes(), "hello timer_tolerance=10",
                       initrd=module)
    assert reason is StopReason.EXIT, run.out
    assert_all_passed(parse_tap(run.out), run)
    assert run.rc == EXIT_PASSED
    assert 'hello: loader "spicevm-bios" cmdline "hello timer_tolerance=10"' in run.lines
    assert any(ln.startswith("module 0 ") and ln.endswith(
        "first bytes 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f") for ln in run.lines)
    # What the BIOS programmed is what the kernel reads back.
    assert parse_pci(run.out, prefix="bios: ") == parse_pci(run.out)


def test_same_display_device_shape_as_qemu(built: dict[str, Path], tmp_path: Path) -> None:
    """The QXL device as hello sees it: identity, class, BAR kinds and sizes
    and an IRQ line equal QEMU's (addresses may differ; QEMU's qxl-vga also
    has an expansion ROM and QEMU's PIIX has more functions, not compared)."""
    qemu_or_skip()
    ours, _ = boot(tmp_path, built, HELLO.read_bytes(), "hello")
    theirs = run_qemu(["-kernel", str(HELLO), "-nic", "none", *QEMU_ARGS])
    assert_all_passed(parse_tap(theirs.out), theirs)

    def shape(out: str) -> dict[str, tuple[str, str, dict[str, tuple[str, int]]]]:
        return {bdf: (fn.ident, fn.cls, {n: (b[0], b[2]) for n, b in fn.bars.items() if n != "rom"})
                for bdf, fn in parse_pci(out).items() if not bdf.startswith("00:01.")}

    assert shape(ours.out) == shape(theirs.out)
    ours_qxl = parse_pci(ours.out)["00:02.0"]
    assert ours_qxl.irq != "none" and parse_pci(theirs.out)["00:02.0"].irq != "none"


def test_bios_without_kernel_halts_with_one_line(built: dict[str, Path],
                                                 tmp_path: Path) -> None:
    run, reason = boot(tmp_path, built, None, stop_after="FATAL", timeout=30)
    assert reason is StopReason.SHUTDOWN, "the BIOS must halt, not exit"
    fatal = [ln for ln in run.lines if ln.startswith("bios: FATAL: ")]
    assert len(fatal) == 1 and "no kernel" in fatal[0], run.out
    assert run.lines[-1] == fatal[0]

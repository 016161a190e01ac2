"""``spicevm run``: boot a Multiboot kernel on the spicevm PC.

Options use QEMU's spelling where QEMU has them::

    spicevm run [KERNEL] [-m MB] [-append CMDLINE] [-initrd FILE]
                [-serial stdio|file:PATH|none] [-no-reboot]
                [-display none|sdl] [-vga qxl|none]
                [-device qxl-vga,ram_size_mb=..,vram_size_mb=..,vgamem_mb=..,revision=..]
                [-device vdiport]
                [-spice port=N,addr=A,password-file=F|disable-ticketing=on]

Without KERNEL the bundled default guest boots.  Without ``-spice`` (and
with ``-display none``) a SPICE server listens on 127.0.0.1:5900 with a
fresh random ticket written to a mode-0600 remote-viewer ``.vv`` file;
``-spice none`` turns it off.  With SPICE the VDIPort agent device is
present too.  The firmware and the
bundled guests are (re)built first when missing or stale.

Exit status: a guest exit through isa-debug-exit gives QEMU's status
``(value << 1) | 1``; Ctrl-C and a guest shutdown give 0; a triple fault
under ``-no-reboot`` or a CPU error gives 1 (the register dump goes to
stderr); a bad command line, kernel or memory size gives 2 with one
sentence on stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import signal
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from vm.board import Board, BoardConfig, MiB
from vm.console import parse_serial
from vm.cpu import CPUStop, StopReason
from vm.multiboot import KernelError, KernelInfo, inspect_kernel

ROOT = Path(__file__).resolve().parent.parent
# The guest booted when no KERNEL is given (a target of tools/build_guest.py).
DEFAULT_GUEST = "demo"
DEFAULT_SPICE = "port=5900,addr=127.0.0.1"
DEFAULT_RAM_MB = 128
MAX_RAM_MB = 64 * 1024
PROG = "spicevm"

log = logging.getLogger("spicevm")


class UsageError(Exception):
    """A command-line problem: one sentence, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message[0].upper() + message[1:] if message else "bad command line")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"{PROG} run", allow_abbrev=False,
                description="Boot a Multiboot kernel on the spicevm PC.")
    p.add_argument("kernel", nargs="?", metavar="KERNEL",
                   help=f"Multiboot kernel (default: the bundled {DEFAULT_GUEST} guest)")
    p.add_argument("-m", dest="memory", metavar="MB", default=str(DEFAULT_RAM_MB),
                   help=f"RAM in MiB (suffixes M and G accepted; default {DEFAULT_RAM_MB})")
    p.add_argument("-append", dest="cmdline", default="", metavar="CMDLINE",
                   help="kernel command line")
    p.add_argument("-initrd", metavar="FILE", help="Multiboot module")
    p.add_argument("-serial", metavar="DEV",
                   help="stdio, file:PATH or none (default: stdio on a terminal)")
    p.add_argument("-no-reboot", dest="no_reboot", action="store_true",
                   help="stop instead of resetting on a triple fault")
    p.add_argument("-display", default="none", choices=("none", "sdl"),
                   help="local display (default none)")
    p.add_argument("-vga", choices=("qxl", "none"),
                   help="qxl: one qxl-vga at 00:02.0 (the default); none: no display device")
    p.add_argument("-device", action="append", default=[], metavar="SPEC",
                   help="qxl-vga,... or qxl,... with QEMU's property names; vdiport "
                        "(the legacy SPICE agent device, not in QEMU)")
    p.add_argument("-spice", metavar="OPTIONS",
                   help="port=N,addr=A,password-file=F or disable-ticketing=on; 'none' for no "
                        f"SPICE server (default with -display none: {DEFAULT_SPICE} with a "
                        "fresh random ticket)")
    p.add_argument("-vv-file", dest="vv_file", metavar="PATH",
                   help="where to write the remote-viewer connection file")
    p.add_argument("-log", dest="log_level", default="warning",
                   choices=("debug", "info", "warning", "error"), help="log level (stderr)")
    return p


def _parse_memory(text: str) -> int:
    t = text.strip()
    if t.startswith("size="):
        t = t[5:]
    scale = 1
    if t[-1:].upper() == "G":
        scale, t = 1024, t[:-1]
    elif t[-1:].upper() == "M":
        t = t[:-1]
    try:
        mb = int(t) * scale
    except ValueError:
        raise UsageError(f"-m {text!r} is not a size in MiB") from None
    if mb < 2:
        raise UsageError(f"-m {text} is too little memory: at least 2 MiB are needed")
    if mb > MAX_RAM_MB:
        raise UsageError(f"-m {text} is more memory than spicevm supports ({MAX_RAM_MB} MiB)")
    return mb


def _read(path: str, what: str, limit_mb: int) -> bytes:
    """The file's bytes; a file larger than ``limit_mb`` MiB (the guest's
    RAM; /dev/zero is endless) is refused without reading all of it."""
    chunks: list[bytes] = []
    total = 0
    try:
        with open(path, "rb") as f:
            # In pieces: read(n) would allocate all n bytes up front.
            while chunk := f.read(MiB):
                total += len(chunk)
                if total > limit_mb * MiB:
                    raise UsageError(f"the {what} {path} is larger than the {limit_mb} MiB "
                                     "of guest RAM")
                chunks.append(chunk)
    except IsADirectoryError:
        raise UsageError(f"the {what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None
    return b"".join(chunks)


def _load_build_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_guest", ROOT / "tools" / "build_guest.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("tools/build_guest.py is missing")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def build_firmware(guests: list[str]) -> dict[str, Path]:
    """Build the BIOS and ``guests`` if missing or stale (tools/build_guest.py)."""
    tool = _load_build_tool()
    try:
        return tool.build(["bios", *guests])
    except tool.BuildError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "build failed"
        raise RuntimeError(f"cannot build the firmware and guests: {first}") from None


def _check_kernel(kernel: bytes, path: str, ram_mb: int, initrd: bytes | None) -> KernelInfo:
    try:
        info = inspect_kernel(kernel, f"the kernel {path}")
    except KernelError as exc:
        raise UsageError(str(exc)) from None
    need = info.load_end + (len(initrd) if initrd else 0) + 0x100000
    need_mb = max(2, -(-need // MiB))
    if ram_mb < need_mb:
        raise UsageError(f"-m {ram_mb} is too little memory for {path}: "
                         f"it needs at least {need_mb} MiB")
    return info


def make_config(args: argparse.Namespace) -> BoardConfig:
    """Check everything the user gave us and build the board configuration."""
    ram_mb = _parse_memory(args.memory)
    serial_spec = args.serial
    if serial_spec is None:
        on_tty = sys.stdin.isatty() or sys.stdout.isatty()
        serial_spec = "stdio" if on_tty and args.display == "none" else "none"
    try:
        serial_spec = parse_serial(serial_spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    qxl: list[dict[str, Any]] = []
    vdiport = False
    if args.device:
        from devices.qxl.options import parse_device_options

        for spec in args.device:
            if spec == "vdiport":
                vdiport = True
                continue
            try:
                _, kwargs = parse_device_options(spec)
            except ValueError as exc:
                raise UsageError(f"-device {spec}: {exc}") from None
            qxl.append(kwargs)
    if args.vga == "qxl" or (args.vga is None and not qxl):
        qxl.insert(0, {"vga": True})
    spice = None
    spice_text = args.spice
    if spice_text is None and args.display == "none" and args.vga != "none":
        # Unlike QEMU, a display is served by default: booting the demo and
        # connecting remote-viewer should need no options at all.
        spice_text = DEFAULT_SPICE
    if spice_text is not None and spice_text != "none":
        from spice.options import SpiceOptions

        try:
            spice = SpiceOptions.from_qemu_string(spice_text)
        except ValueError as exc:
            raise UsageError(f"-spice: {str(exc).rstrip('.')}") from None
        # The agent device rides along with SPICE: client mouse mode, resize
        # and clipboard all need it, and it costs nothing when unused.
        vdiport = True

    kernel_path = args.kernel
    kernel = _read(kernel_path, "kernel", ram_mb) if kernel_path else None
    initrd = _read(args.initrd, "initrd", ram_mb) if args.initrd else None
    if kernel is not None:
        info = _check_kernel(kernel, kernel_path, ram_mb, initrd)
    outputs = build_firmware([] if kernel_path else [DEFAULT_GUEST])
    if kernel is None:
        kernel_path = str(outputs[DEFAULT_GUEST])
        kernel = _read(kernel_path, "kernel", ram_mb)
        info = _check_kernel(kernel, kernel_path, ram_mb, initrd)
    del info
    bios = outputs["bios"].read_bytes()
    # As QEMU's Multiboot loader does: the kernel's file name, a space, -append.
    cmdline = f"{kernel_path} {args.cmdline}"
    return BoardConfig(ram_size=ram_mb * MiB, bios=bios, kernel=kernel, cmdline=cmdline,
                       initrd=initrd, no_reboot=args.no_reboot, serial=serial_spec, qxl=qxl,
                       spice=spice, vv_file=args.vv_file, display=args.display,
                       vdiport=vdiport)


def _say(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def report(stop: CPUStop) -> int:
    """Tell the user why the machine stopped; returns the exit status."""
    if stop.reason is StopReason.EXIT:
        return stop.status
    if stop.reason is StopReason.SHUTDOWN:
        if stop.message:
            _say(stop.message)
        return 0
    _say(f"the guest stopped: {stop.message}")
    if stop.registers:
        sys.stderr.write(stop.registers + "\n")
    return 1


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"{PROG}: %(name)s: %(message)s")
    config = make_config(args)
    try:
        board = Board(config)
    except MemoryError:
        raise UsageError(f"cannot allocate {config.ram_size // MiB} MiB of guest RAM on this "
                         "host") from None
    except ValueError as exc:  # the machine refused the configuration (e.g. a serial file)
        raise UsageError(str(exc)) from None

    def on_signal(signum: int, _frame: object) -> None:
        board.stop(StopReason.SHUTDOWN, f"terminating on signal {signum}")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            board.start()  # closes the board itself if it fails
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise RuntimeError(f"cannot start: {where}{exc.strerror or exc}") from None
        if board.spice is not None:
            _say(f"SPICE listening on {board.spice.uri()}")
            if board.vv_path:
                _say(f"remote-viewer {board.vv_path}")
        stop = board.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return report(stop)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            sys.stdout.write(__doc__ or "")
            return 0 if argv else 2
        if argv[0] == "test-guest":
            from vm.testguest import main as test_guest

            return test_guest(argv[1:])
        if argv[0] != "run":
            raise UsageError(f"unknown command {argv[0]!r} (the command is: {PROG} run ...)")
        return run(argv[1:])
    except UsageError as exc:
        _say(str(exc).rstrip("."))
        return 2
    except RuntimeError as exc:
        _say(str(exc).rstrip("."))
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


if __name__ == "__main__":
    sys.exit(main())

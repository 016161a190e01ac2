"""``spicevm run`` as a user meets it: bad input gives one sentence on
stderr and exit status 2 (never a traceback); a guest's own exit, a
triple fault, a CPU error and Ctrl-C end the process cleanly."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vm_asm import multiboot_kernel

ROOT = Path(__file__).resolve().parent.parent


def spicevm(*args: str, stdin: int = subprocess.DEVNULL,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # No SPICE server unless a test asks for one: the default listens on
    # the fixed port 5900.
    extra = () if any(a == "-spice" for a in args) else ("-spice", "none")
    return subprocess.run([sys.executable, "-m", "vm.cli", "run", *args, *extra], cwd=ROOT,
                          stdin=stdin, capture_output=True, text=True, timeout=timeout)


def assert_one_sentence(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("spicevm: ")
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("kernels")
    bodies = {
        "idle": "1: hlt\n jmp 1b\n",
        "exit7": "mov $7, %al\n out %al, $0xf4\n1: hlt\n jmp 1b\n",
        "triple": "lidt zero_idt\n ud2\nzero_idt: .word 0\n .long 0\n",
        "wild": "mov $0x20000000, %eax\n jmp *%eax\n",
        "echo": """
    mov $0x3f8, %dx
    mov $'>', %al           # prompt: the guest is ready for input
    out %al, (%dx)
1:  add $5, %dx             # LSR
    in (%dx), %al
    sub $5, %dx
    test $1, %al            # data ready?
    jz 1b
    in (%dx), %al
    cmp $'q', %al
    je 2f
    out %al, (%dx)
    jmp 1b
2:  mov $0, %al
    out %al, $0xf4
3:  hlt
    jmp 3b
""",
    }
    out = {}
    for name, body in bodies.items():
        path = d / f"{name}.elf"
        path.write_bytes(multiboot_kernel(body))
        out[name] = path
    (d / "text.txt").write_text("not a kernel\n")
    out["text"] = d / "text.txt"
    return out


# ------------------------------------------------------------ usage errors


@pytest.mark.parametrize("args, needle", [
    (["-bogus"], "Unrecognized arguments: -bogus"),
    (["-m"], "Argument -m"),
    (["-serial", "tcp:1234"], "-serial 'tcp:1234' is not supported"),
    (["-display", "gtk"], "Argument -display: invalid choice"),
    (["-vga", "std"], "Argument -vga: invalid choice"),
    (["-device", "qxl-vga,ram_size_mb=x"], "is not an integer"),
    (["-device", "e1000"], "unknown display device"),
    (["-spice", "port=notanumber"], "port must be a number"),
    (["-spice", "password=secret"], "password-file"),
    (["/nonexistent/kernel.elf"], "cannot read the kernel /nonexistent/kernel.elf"),
    (["-m", "1"], "too little memory"),
    (["-m", "lots"], "is not a size in MiB"),
    (["-serial", "file:/nonexistent/dir/serial.txt"], "cannot open serial output file"),
])
def test_bad_command_line_is_one_sentence_and_status_2(args: list[str], needle: str) -> None:
    assert_one_sentence(spicevm(*args), needle)


def test_non_multiboot_kernel(kernels: dict[str, Path]) -> None:
    assert_one_sentence(spicevm(str(kernels["text"])), "is not a Multiboot kernel")


def test_kernel_that_is_a_directory(tmp_path: Path) -> None:
    assert_one_sentence(spicevm(str(tmp_path)), "is a directory")


def test_missing_initrd(kernels: dict[str, Path]) -> None:
    assert_one_sentence(spicevm(str(kernels["idle"]), "-initrd", "/nonexistent/initrd"),
                        "cannot read the initrd")


def test_too_little_memory_for_the_kernel(kernels: dict[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "big.img"
    big.write_bytes(b"\0" * (3 << 20))
    assert_one_sentence(spicevm(str(kernels["idle"]), "-m", "4", "-initrd", str(big)),
                        "too little memory")


def test_more_memory_than_the_host_can_give(kernels: dict[str, Path]) -> None:
    def limit_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))

    proc = subprocess.run([sys.executable, "-m", "vm.cli", "run", str(kernels["idle"]),
                           "-m", "16G", "-serial", "none", "-spice", "none"], cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          preexec_fn=limit_address_space)
    assert_one_sentence(proc, "cannot allocate 16384 MiB of guest RAM")


def test_a_failed_start_removes_the_ticket_file(kernels: dict[str, Path], tmp_path: Path) -> None:
    # The window cannot open after the SPICE server wrote its .vv file.
    env = dict(os.environ, TMPDIR=str(tmp_path), SDL_VIDEODRIVER="no-such-driver")
    proc = subprocess.run([sys.executable, "-m", "vm.cli", "run", str(kernels["idle"]),
                           "-display", "sdl", "-spice", "port=0,addr=127.0.0.1",
                           "-serial", "none"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "cannot open the SDL window" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.glob("*.vv")) == []


def test_endless_kernel_file(kernels: dict[str, Path]) -> None:
    # Reading stops at the guest's RAM size instead of exhausting the host's.
    assert_one_sentence(spicevm("/dev/zero", "-m", "4"), "the kernel /dev/zero is larger than")
    assert_one_sentence(spicevm(str(kernels["idle"]), "-m", "4", "-initrd", "/dev/zero"),
                        "the initrd /dev/zero is larger than")


def test_unwritable_vv_file_names_the_file(kernels: dict[str, Path], tmp_path: Path) -> None:
    proc = spicevm(str(kernels["idle"]), "-serial", "none", "-spice", "port=0,addr=127.0.0.1",
                   "-vv-file", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == f"spicevm: cannot start: {tmp_path}: Is a directory"


def test_unknown_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "vm.cli", "fly"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "spicevm: unknown command 'fly' (the command is: spicevm run ...)"


# --------------------------------------------------------------- stopping


def test_guest_exit_status_follows_isa_debug_exit(kernels: dict[str, Path]) -> None:
    proc = spicevm(str(kernels["exit7"]), "-serial", "none", "-vga", "none")
    assert proc.returncode == (7 << 1) | 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_triple_fault_with_no_reboot_prints_registers(kernels: dict[str, Path]) -> None:
    proc = spicevm(str(kernels["triple"]), "-no-reboot", "-serial", "none", "-vga", "none")
    assert proc.returncode == 1
    assert "spicevm: the guest stopped: triple fault" in proc.stderr
    assert "EIP=001000" in proc.stderr and "CR0=" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fetch_from_unmapped_memory_prints_registers(kernels: dict[str, Path]) -> None:
    proc = spicevm(str(kernels["wild"]), "-serial", "none", "-vga", "none")
    assert proc.returncode == 1
    assert "instruction fetch from unmapped memory" in proc.stderr
    assert "EIP=20000000" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ctrl_c_stops_the_machine_cleanly(kernels: dict[str, Path]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vm.cli", "run", str(kernels["idle"]),
                             "-serial", "none", "-spice", "none"], cwd=ROOT,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)  # let it boot into its hlt loop
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "terminating on signal 2" in err
    assert "Traceback" not in err


def test_serial_stdio_carries_input_and_output(kernels: dict[str, Path]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vm.cli", "run", str(kernels["echo"]),
                             "-serial", "stdio", "-vga", "none"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    seen = b""
    while not seen.endswith(b">"):  # bytes sent before the guest listens are lost, as on a PC
        chunk = os.read(proc.stdout.fileno(), 4096)
        assert chunk, seen
        seen += chunk
    proc.stdin.write(b"hello, guest\nq")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert (seen + out).endswith(b">hello, guest\n")


def test_default_run_serves_spice_on_5900_with_a_fresh_ticket(kernels: dict[str, Path]) -> None:
    """No -spice: a server on 127.0.0.1:5900, its ticket only in a 0600 .vv file."""
    proc = subprocess.Popen([sys.executable, "-m", "vm.cli", "run", str(kernels["idle"]),
                             "-serial", "none"], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        while not any("remote-viewer" in ln for ln in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert "spice://127.0.0.1:5900" in text
        vv = Path(next(ln for ln in lines if "remote-viewer" in ln).split()[-1])
        assert vv.suffix == ".vv" and (vv.stat().st_mode & 0o777) == 0o600
        fields = dict(ln.split("=", 1) for ln in vv.read_text().splitlines() if "=" in ln)
        assert fields["host"] == "127.0.0.1" and fields["port"] == "5900"
        password = fields["password"]
        assert len(password) >= 12
        with socket.create_connection(("127.0.0.1", 5900), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert password not in text + out + err
    assert not vv.exists()  # it held the ticket; removed at exit

"""``-display sdl``: the local pygame window on the whole machine.

A small Multiboot guest writes text into VGA text memory (the QXL device
shows it as its host primary), then forwards every byte the i8042 hands it
-- keyboard and mouse, by interrupt -- to COM1 as a tag ('k' or 'm') and
the byte.  The tests check the window's pixels against the server's
screendump, feed the window synthetic pygame events and read back what the
guest read from ports 0x60/0x64.  SDL runs with its dummy video driver
(set below unless the environment chose one, e.g. x11 under Xvfb).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
from firmware_harness import build_or_skip  # noqa: E402
from spice_harness import ScriptedQXL, cursor_cmd, fill_cmd, primary_create  # noqa: E402

from spice import qxl  # noqa: E402
from spice.options import SpiceOptions  # noqa: E402
from spice.server import SpiceServer  # noqa: E402
from vm.board import Board, BoardConfig  # noqa: E402
from vm.core import Core  # noqa: E402
from vm.cpu import StopReason  # noqa: E402
from vm.display_sdl import SDLDisplay  # noqa: E402

GUEST = """
.globl _start
.p2align 2
    .long 0x1BADB002, 0, -0x1BADB002     # Multiboot header, no flags
_start:
    cli
    mov $stack_top, %esp

    # "SPICEVM" white on blue at the top left; text cursor off
    mov $0xB8000, %edi
    mov $message, %esi
    mov $0x1F00, %eax
1:  lodsb
    test %al, %al
    jz 2f
    stosw
    jmp 1b
2:  mov $0x3D4, %dx
    mov $0x0A, %al
    out %al, (%dx)
    inc %dx
    mov $0x20, %al
    out %al, (%dx)

    # 8259 pair at 0x20/0x28; only IRQ1, the cascade and IRQ12 unmasked
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xA0
    mov $0x20, %al
    out %al, $0x21
    mov $0x28, %al
    out %al, $0xA1
    mov $0x04, %al
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xA1
    mov $0x01, %al
    out %al, $0x21
    out %al, $0xA1
    mov $0xF9, %al
    out %al, $0x21
    mov $0xEF, %al
    out %al, $0xA1

    mov $i8042_isr, %eax
    mov %cs, %bx
    mov $idt + 8 * 0x21, %edi
    call set_gate
    mov $idt + 8 * 0x2C, %edi
    call set_gate
    lidt idt_desc

    # i8042: translation on, interrupts off while the mouse is enabled
    mov $0x60, %al
    out %al, $0x64
    mov $0x44, %al
    out %al, $0x60
    mov $0xD4, %al
    out %al, $0x64
    mov $0xF4, %al
    out %al, $0x60
3:  in $0x64, %al                 # the mouse's ACK
    test $1, %al
    jz 3b
    in $0x60, %al
    mov $0x60, %al                # now with both interrupts
    out %al, $0x64
    mov $0x47, %al
    out %al, $0x60

    mov $0x3F8, %dx                # the ready marker
    mov $ready, %esi
8:  lodsb
    test %al, %al
    jz 9f
    out %al, (%dx)
    jmp 8b
9:  sti
4:  hlt
    jmp 4b

set_gate:                          # %edi: gate, %eax: handler, %bx: code selector
    mov %ax, (%edi)
    mov %bx, 2(%edi)
    movw $0x8E00, 4(%edi)
    mov %eax, %ecx
    shr $16, %ecx
    mov %cx, 6(%edi)
    ret

i8042_isr:                         # every waiting byte to COM1 as tag + byte
    push %eax
    push %edx
    mov $0x3F8, %dx
5:  in $0x64, %al
    test $1, %al
    jz 7f
    test $0x20, %al
    mov $'k', %al
    jz 6f
    mov $'m', %al
6:  out %al, (%dx)
    in $0x60, %al
    out %al, (%dx)
    jmp 5b
7:  mov $0x20, %al
    out %al, $0xA0
    out %al, $0x20
    pop %edx
    pop %eax
    iret

message: .asciz "SPICEVM"
ready: .asciz "\n<ready>"
.p2align 3
idt: .skip 8 * 256
idt_desc:
    .word 8 * 256 - 1
    .long idt
.p2align 4
    .skip 4096
stack_top:
"""

READY = b"\n<ready>"  # what the guest prints on COM1 before the i8042 bytes
BLUE, WHITE = 0x0000AA, 0xFFFFFF
CTRL, ALT, G, A, RIGHT, PAUSE = 224, 226, 10, 4, 79, 72  # USB usages (SDL scancodes)


def link_kernel(source: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, out = (os.path.join(tmp, n) for n in ("k.S", "k.o", "k.elf"))
        Path(src).write_text(".code32\n.text\n" + source)
        for cmd in (["as", "--32", src, "-o", obj],
                    ["ld", "-m", "elf_i386", "-n", "-Ttext=0x100000", "-e", "_start",
                     obj, "-o", out]):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
        return Path(out).read_bytes()


@pytest.fixture(scope="module")
def images() -> tuple[bytes, bytes]:
    bios = build_or_skip(["bios"])["bios"].read_bytes()
    return bios, link_kernel(GUEST)


class Machine:
    def __init__(self, images: tuple[bytes, bytes], tmp: Path) -> None:
        self.serial_path = tmp / "serial.bin"
        bios, kernel = images
        self.board = Board(BoardConfig(ram_size=16 << 20, bios=bios, kernel=kernel,
                                       serial=f"file:{self.serial_path}",
                                       qxl=[{"vga": True}], display="sdl"))
        self.board.start()
        self.display = self.board.display
        self.run_until(lambda: READY in self.serial())

    def serial(self) -> bytes:
        return self.serial_path.read_bytes() if self.serial_path.exists() else b""

    def records(self, tag: bytes) -> list[int]:
        """Bytes the guest read from the i8042, from the keyboard (b'k') or
        the mouse (b'm')."""
        data = self.serial().split(READY, 1)[1]
        return [data[i + 1] for i in range(0, len(data) - 1, 2) if data[i:i + 1] == tag]

    def run_until(self, pred: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, "timed out"
            assert self.board.cpu.join(0) is None, f"the machine stopped: {self.board.cpu.join(0)}"
            self.board.core.run(timeout=0.02)

    def run_for(self, seconds: float) -> None:
        self.board.core.run(timeout=seconds)

    def post(self, event_type: int, **attrs: object) -> None:
        pygame.event.post(pygame.event.Event(event_type, **attrs))

    def key(self, usage: int, down: bool) -> None:
        self.post(pygame.KEYDOWN if down else pygame.KEYUP, scancode=usage, key=0, mod=0)

    def tap(self, usage: int) -> None:
        self.key(usage, True)
        self.key(usage, False)

    def close(self) -> None:
        if self.board.cpu.join(0) is None:
            self.board.stop(StopReason.SHUTDOWN)
        self.board.wait()


@pytest.fixture
def machine(images: tuple[bytes, bytes], tmp_path: Path):
    m = Machine(images, tmp_path)
    yield m
    m.close()


def expected_window(dump: np.ndarray, win_w: int, win_h: int) -> np.ndarray:
    """The documented picture: the guest's aspect ratio kept, centred on
    black, window pixel -> guest pixel by floor((X - ox) * w / pw)."""
    h, w = dump.shape
    if win_w * h <= win_h * w:
        pw, ph = win_w, win_w * h // w
    else:
        pw, ph = win_h * w // h, win_h
    ox, oy = (win_w - pw) // 2, (win_h - ph) // 2
    out = np.zeros((win_h, win_w), np.uint32)
    ys = (np.arange(ph) * h) // ph
    xs = (np.arange(pw) * w) // pw
    out[oy:oy + ph, ox:ox + pw] = dump[ys][:, xs]
    return out


def window_matches(m: Machine, dump_ref: list) -> bool:
    """The window shows the server's primary, once the guest's text is on it."""
    dump = m.display.server.screendump()
    dump_ref[:] = [dump]
    if dump is None or not (dump[0:16, 0:63] == BLUE).any():
        return False
    win = m.display.window_pixels()
    return np.array_equal(win, expected_window(dump, win.shape[1], win.shape[0]))


def test_window_shows_the_vga_text_the_guest_wrote(machine: Machine) -> None:
    ref: list = []
    machine.run_until(lambda: window_matches(machine, ref))
    dump = ref[0]
    assert dump.shape == (400, 720)  # 80x25 text in 9x16 cells
    assert machine.display.window_size() == (720, 400)  # the window took the guest's size
    cells = dump[0:16, 0:7 * 9]
    assert (cells == BLUE).any() and (cells == WHITE).any()
    assert (dump[16:, :] == 0).all()  # the rest of the screen is black
    assert machine.display.title == "spicevm"


def test_window_scales_the_picture_keeping_its_aspect(machine: Machine) -> None:
    ref: list = []
    machine.run_until(lambda: window_matches(machine, ref))
    machine.post(pygame.VIDEORESIZE, w=1000, h=700, size=(1000, 700))
    machine.run_until(lambda: machine.display.window_size() == (1000, 700)
                      and window_matches(machine, ref))
    win = machine.display.window_pixels()
    assert machine.display.picture_rect() == (0, 72, 1000, 555)
    assert (win[:72] == 0).all() and (win[72 + 555:] == 0).all()
    assert (win[72:72 + 22, 0:88] == BLUE).any()  # the text, 1.39 times as large
    machine.post(pygame.VIDEORESIZE, w=400, h=400, size=(400, 400))
    machine.run_until(lambda: machine.display.window_size() == (400, 400)
                      and window_matches(machine, ref))
    assert machine.display.picture_rect() == (0, 89, 400, 222)


def test_keys_reach_the_guest_as_set1_scancodes(machine: Machine) -> None:
    machine.tap(A)
    machine.tap(RIGHT)
    machine.tap(PAUSE)
    expected = [0x1E, 0x9E, 0xE0, 0x4D, 0xE0, 0xCD, 0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]
    machine.run_until(lambda: len(machine.records(b"k")) >= len(expected))
    machine.run_for(0.1)
    assert machine.records(b"k") == expected


def test_keys_held_when_focus_is_lost_are_released(machine: Machine) -> None:
    machine.key(A, True)
    machine.post(pygame.WINDOWFOCUSLOST)
    machine.key(A, False)  # the window no longer tracks it: not sent twice
    machine.run_until(lambda: len(machine.records(b"k")) >= 2)
    machine.run_for(0.1)
    assert machine.records(b"k") == [0x1E, 0x9E]


def test_mouse_is_grabbed_by_a_click_and_released_by_ctrl_alt_g(machine: Machine) -> None:
    d = machine.display
    machine.post(pygame.MOUSEMOTION, rel=(4, 4), pos=(10, 10), buttons=(0, 0, 0))
    machine.run_for(0.1)
    assert machine.records(b"m") == [] and not d.grabbed  # not grabbed: not the guest's
    machine.post(pygame.MOUSEBUTTONDOWN, button=1, pos=(10, 10))
    machine.post(pygame.MOUSEBUTTONUP, button=1, pos=(10, 10))
    machine.run_until(lambda: d.grabbed)
    assert d.title == "spicevm - Press Ctrl+Alt+G to release grab"
    machine.post(pygame.MOUSEMOTION, rel=(5, 3), pos=(15, 13), buttons=(0, 0, 0))
    machine.post(pygame.MOUSEBUTTONDOWN, button=3, pos=(15, 13))
    machine.post(pygame.MOUSEBUTTONUP, button=3, pos=(15, 13))
    machine.post(pygame.MOUSEWHEEL, x=0, y=1, flipped=False)
    machine.run_until(lambda: len(machine.records(b"m")) >= 12)
    machine.run_for(0.1)
    # PS/2 packets: sync bit 3, Y grows upward (screen down 3 is -3), right
    # button is bit 1; a plain PS/2 mouse has no wheel byte and the wheel
    # alone moves nothing
    assert machine.records(b"m") == [0x28, 0x05, 0xFD, 0x0A, 0, 0, 0x08, 0, 0, 0x08, 0, 0]
    machine.key(CTRL, True)
    machine.key(ALT, True)
    machine.tap(G)
    machine.key(ALT, False)
    machine.key(CTRL, False)
    machine.run_until(lambda: not d.grabbed and len(machine.records(b"k")) >= 4)
    machine.run_for(0.1)
    assert d.title == "spicevm"
    assert machine.records(b"k") == [0x1D, 0x38, 0xB8, 0x9D]  # no G (0x22/0xA2)
    machine.post(pygame.MOUSEMOTION, rel=(7, 7), pos=(20, 20), buttons=(0, 0, 0))
    machine.run_for(0.1)
    assert len(machine.records(b"m")) == 12


def test_closing_the_window_stops_the_machine(machine: Machine) -> None:
    machine.post(pygame.QUIT)
    deadline = time.monotonic() + 10
    while machine.board.cpu.join(0) is None:
        assert time.monotonic() < deadline
        machine.board.core.run(timeout=0.05)
    stop = machine.board.wait()
    assert stop.reason is StopReason.SHUTDOWN
    assert machine.board.display is None  # closed with the board
    assert not pygame.display.get_init()


def test_cursor_and_guest_resolution_with_a_scripted_device() -> None:
    """The window on a server fed by a scripted QXL device: the cursor is
    blended in at its hot spot, and a new primary size resizes the window."""
    core = Core()
    server = SpiceServer(core, SpiceOptions(port=0, disable_ticketing=True, name="demo"))
    q = ScriptedQXL()
    handle = server.add_qxl(q)
    server.vm_start()
    display = SDLDisplay(core, server, None, None, name="demo")
    try:
        assert display.title == "spicevm (demo)"
        create, _mem = primary_create(64, 48)
        handle.create_primary_surface(create)
        q.push(fill_cmd(q.token(), (0, 0, 48, 64), 0x204060))
        argb = np.full((4, 4), 0xFFFF0000, np.uint32)  # opaque red ...
        argb[0, 0] = 0x800000FF  # ... one half-transparent blue pixel ...
        argb[3, 3] = 0x00FFFFFF  # ... and one transparent pixel
        shape = qxl.Cursor(9, qxl.SPICE_CURSOR_TYPE_ALPHA, 4, 4, 1, 2,
                           argb.astype("<u4").view(np.uint8))
        q.push_cursor(cursor_cmd(q.token(), qxl.QXL_CURSOR_SET, 0, 0, True, shape),
                      cursor_cmd(q.token(), qxl.QXL_CURSOR_MOVE, 10, 20))
        expected = np.full((48, 64), 0x204060, np.uint32)
        expected[18:22, 9:13] = 0xFF0000
        expected[18, 9] = sum(((0xFF * 0x80 + c * 0x7F + 127) // 255 if s == 0 else
                               (c * 0x7F + 127) // 255) << s
                              for s, c in ((0, 0x60), (8, 0x40), (16, 0x20)))
        expected[21, 12] = 0x204060
        deadline = time.monotonic() + 10
        while not (display.window_size() == (64, 48)
                   and np.array_equal(display.window_pixels(), expected)):
            assert time.monotonic() < deadline, "the window never showed the cursor"
            core.run(timeout=0.02)
        handle.destroy_primary_surface()
        create, _mem = primary_create(100, 80)
        handle.create_primary_surface(create)
        while display.window_size() != (100, 80):
            assert time.monotonic() < deadline, "the window did not follow the guest's size"
            core.run(timeout=0.02)
    finally:
        display.close()
        server.close()
        core.close()


def _spicevm(kernel: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-m", "vm.cli", "run", str(kernel), "-display", "sdl",
                           "-serial", "none"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_command_line_display_sdl(images: tuple[bytes, bytes], tmp_path: Path) -> None:
    kernel = tmp_path / "exit7.elf"
    kernel.write_bytes(link_kernel(".globl _start\n.p2align 2\n"
                                   ".long 0x1BADB002, 0, -0x1BADB002\n"
                                   "_start: mov $7, %al\n out %al, $0xf4\n1: hlt\n jmp 1b\n"))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = _spicevm(kernel, {**env, "SDL_VIDEODRIVER": "dummy"})
    assert proc.returncode == 15, proc.stderr  # the guest's exit status, (7 << 1) | 1
    # no display to open a window on: one sentence and status 1, as QEMU
    proc = _spicevm(kernel, {**env, "SDL_VIDEODRIVER": "x11"})
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("spicevm:")]
    assert lines == ["spicevm: cannot open the SDL window: x11 not available"], proc.stderr
    assert "Traceback" not in proc.stderr

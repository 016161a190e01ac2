"""The firmware (roms/) and the hello guest on QEMU.

hello is booted twice by QEMU's own firmware path (``-kernel``: SeaBIOS and
QEMU's multiboot option ROM) and by our BIOS (``-bios``) through each way it
can find a kernel: QEMU's pre-processed Multiboot layout, and the raw ELF in
fw_cfg (the spicevm contract; on QEMU through the opt/org.spicevm/* files),
with fw_cfg DMA and with port I/O only.
"""

from __future__ import annotations

import re
import subprocess
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
    run_qemu_until_halt,
)

pytestmark = pytest.mark.e2e

HELLO = "guest/build/hello.elf"
BIOS = "roms/build/bios.bin"
QXL_BARS = {  # QEMU 7.2's qxl-vga defaults: ram, vram, rom, io
    "bar0": ("mem", 0x4000000),
    "bar1": ("mem", 0x4000000),
    "bar2": ("mem", 0x2000),
    "bar3": ("io", 0x20),
}


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    qemu_or_skip()
    return build_or_skip(["bios", "hello"])


def check_hello(out: str) -> None:
    """What every hello run must show besides all-passing TAP."""
    devices = parse_pci(out)
    qxl = [d for d in devices.values() if d.ident == "1b36:0100"]
    assert len(qxl) == 1, f"QXL not listed exactly once:\n{out}"
    qxl_fn = qxl[0]
    assert qxl_fn.cls == "030000"
    assert qxl_fn.irq != "none" and 1 <= int(qxl_fn.irq) <= 15
    for name, (kind, size) in QXL_BARS.items():
        got_kind, addr, got_size = qxl_fn.bars[name]
        assert (got_kind, got_size) == (kind, size), f"{name}: {qxl_fn.bars[name]}"
        assert addr != 0 and addr % size == 0, f"{name} at {addr:#x} is not aligned"
    assert devices["00:00.0"].ident == "8086:1237"
    assert devices["00:01.0"].ident == "8086:7000"

    m = re.search(r"^timer: programmed (\d+) Hz .*?, (\d+) ticks in (\d+) us", out, re.M)
    assert m, out
    hz, ticks, us = (int(g) for g in m.groups())
    assert us >= 200_000
    # late periods are delivered once, so a busy host loses ticks (see
    # guest/hello/main.c); a faster rate would be a wrong divisor
    assert 0.65 * hz <= ticks * 1e6 / us <= 1.1 * hz, m.group(0)

    assert re.search(r"^#GP: error code 0xff8 ", out, re.M), out
    assert re.search(r"^#PF: write error code 0x2 cr2=0x[0-9a-f]{5}004 ", out, re.M), out
    assert re.search(r"^#PF: read error code 0x0 cr2=0x[0-9a-f]{5}008", out, re.M), out
    assert re.search(r"^int3: handler saw eip=", out, re.M), out


def bios_and_kernel_agree(out: str) -> None:
    """The BIOS's report of what it programmed equals what the kernel reads."""
    bios = parse_pci(out, prefix="bios: ")
    kernel = parse_pci(out)
    assert bios, out
    assert bios == kernel


def test_bios_image_is_128k_with_a_reset_jump(built: dict[str, Path]) -> None:
    image = built["bios"].read_bytes()
    assert len(image) == 128 * 1024
    reset = image[-16:]
    assert reset[0] == 0xE9, "reset vector is not a near jump"
    # The jump (relative to IP 0xfff3) must land in the last 64 KiB, where
    # the real-mode code lives.
    target = (0xFFF3 + int.from_bytes(reset[1:3], "little")) & 0xFFFF
    assert 0xF000 <= target < 0xFFF0


def test_hello_under_qemu_kernel_loader(built: dict[str, Path]) -> None:
    run = run_qemu(["-kernel", HELLO, *QEMU_ARGS])
    tap = parse_tap(run.out)
    assert_all_passed(tap, run)
    check_hello(run.out)
    assert 'loader "qemu"' in run.out


def test_bios_boots_qemu_prepared_multiboot(built: dict[str, Path], tmp_path: Path) -> None:
    module = tmp_path / "module.bin"
    module.write_bytes(b"spicevm module\x00\x01\x02")
    run = run_qemu(["-bios", BIOS, "-kernel", HELLO, "-append", "alpha beta=2",
                    "-initrd", str(module), *QEMU_ARGS])
    assert_all_passed(parse_tap(run.out), run)
    check_hello(run.out)
    bios_and_kernel_agree(run.out)
    assert "bios: kernel: QEMU-prepared Multiboot image 0x00100000-" in run.out
    assert f'hello: loader "spicevm-bios" cmdline "{HELLO} alpha beta=2"' in run.out
    assert re.search(r"^module 0 0x[0-9a-f]{8}-0x[0-9a-f]{8} \".*module.bin\" first bytes "
                     r"73 70 69 63 65 76 6d 20 6d 6f 64 75 6c 65 00 01$", run.out, re.M), run.out


@pytest.mark.parametrize("dma", [True, False], ids=["dma", "port-io"])
def test_bios_boots_raw_elf_from_fw_cfg(built: dict[str, Path], tmp_path: Path,
                                        dma: bool) -> None:
    module = tmp_path / "initrd"
    module.write_bytes(bytes(range(40)))
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"hello timer_tolerance=10\x00")
    args = ["-bios", BIOS,
            "-fw_cfg", f"name=opt/org.spicevm/kernel,file={HELLO}",
            "-fw_cfg", f"name=opt/org.spicevm/cmdline,file={cmdline}",
            "-fw_cfg", f"name=opt/org.spicevm/initrd,file={module}", *QEMU_ARGS]
    if not dma:
        args += ["-global", "fw_cfg_io.dma_enabled=off"]
    run = run_qemu(args)
    assert_all_passed(parse_tap(run.out), run)
    check_hello(run.out)
    bios_and_kernel_agree(run.out)
    how = "DMA" if dma else "port I/O"
    size = (ROOT / HELLO).stat().st_size
    assert f"bios: kernel: {size} bytes from fw_cfg opt/org.spicevm/kernel ({how})" in run.out
    assert re.search(r"^bios: kernel: segment 0x00100000-0x[0-9a-f]{8} from file offset 0x",
                     run.out, re.M), run.out
    assert 'hello: loader "spicevm-bios" cmdline "hello timer_tolerance=10"' in run.out
    assert re.search(r'^module 0 0x[0-9a-f]{5}000-0x[0-9a-f]{8} "initrd" first bytes '
                     r"00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f$", run.out, re.M), run.out
    # The memory map leaves out the VGA window and the PCI window.
    assert "mmap 0x0000000000-0x000009ffff available" in run.out
    assert "mmap 0x0000100000-0x0007ffffff available" in run.out
    assert not re.search(r"^mmap 0x00000a0000", run.out, re.M)


def test_bios_places_devices_like_seabios(built: dict[str, Path]) -> None:
    """Same device set as under SeaBIOS: same BARs at the same addresses
    (both place memory BARs top-down below 0xfec00000, largest first, and
    I/O upward from 0xc000) and the same IRQ lines outside the chipset
    (QEMU's PIIX4 ACPI function gets SCI IRQ 9 from SeaBIOS, which we do not
    special-case)."""
    args = ["-kernel", HELLO, "-nic", "none", *QEMU_ARGS]
    seabios = parse_pci(run_qemu(args).out)
    ours = parse_pci(run_qemu(["-bios", BIOS, *args]).out)
    assert seabios and set(seabios) == set(ours)
    for bdf, fn in seabios.items():
        assert (fn.ident, fn.cls, fn.bars) == (ours[bdf].ident, ours[bdf].cls, ours[bdf].bars)
        if not bdf.startswith("00:01."):
            assert fn.irq == ours[bdf].irq, bdf


def fatal_line(run: Run) -> str:
    lines = [ln for ln in run.lines if ln.startswith("bios: FATAL: ")]
    assert len(lines) == 1, run.out
    assert run.lines[-1] == lines[0], "the BIOS went on after a fatal error"
    assert run.rc is None, "a fatal error must halt, not exit or reset"
    return lines[0]


def test_bios_without_kernel_stops_with_one_line(built: dict[str, Path]) -> None:
    run = run_qemu_until_halt(["-bios", BIOS, *QEMU_ARGS], "FATAL")
    assert "no kernel" in fatal_line(run)


def test_bios_rejects_a_file_without_multiboot_header(built: dict[str, Path],
                                                      tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(bytes(range(256)) * 64)
    run = run_qemu_until_halt(["-bios", BIOS, "-fw_cfg",
                               f"name=opt/org.spicevm/kernel,file={junk}", *QEMU_ARGS], "FATAL")
    assert "no Multiboot v1 header in the first 8192 bytes" in fatal_line(run)


def test_bios_rejects_segments_outside_ram(built: dict[str, Path], tmp_path: Path) -> None:
    elf = bytearray((ROOT / HELLO).read_bytes())
    # Move the first program header's physical address to 0x40000000,
    # far above the 128 MiB of RAM.
    phoff = int.from_bytes(elf[28:32], "little")
    elf[phoff + 12:phoff + 16] = (0x40000000).to_bytes(4, "little")
    bad = tmp_path / "bad.elf"
    bad.write_bytes(bytes(elf))
    run = run_qemu_until_halt(["-bios", BIOS, "-fw_cfg",
                               f"name=opt/org.spicevm/kernel,file={bad}", *QEMU_ARGS], "FATAL")
    assert "kernel segment 0x40000000-" in fatal_line(run)


AOUT_KERNEL = r"""
/* A flat Multiboot kernel using the a.out-kludge address fields: it prints
 * whether EAX held the boot magic and the loader name from the info block,
 * then exits through the debug port. */
    .code32
    .globl _start
_start:
    jmp entry
    .p2align 2
header:
    .long 0x1BADB002
    .long 0x00010003
    .long -(0x1BADB002 + 0x00010003)
    .long header            /* header_addr */
    .long _start            /* load_addr */
    .long image_end         /* load_end_addr */
    .long bss_end           /* bss_end_addr */
    .long entry             /* entry_addr */
entry:
    movl $msg_bad, %esi
    cmpl $0x2BADB002, %eax
    jne 1f
    movl $msg_good, %esi
1:  call puts
    movl 64(%ebx), %esi     /* boot_loader_name */
    call puts
    movl $nl, %esi
    call puts
    movb $0, %al
    outb %al, $0xf4
2:  hlt
    jmp 2b
puts:
    movw $0x3f8, %dx
3:  lodsb
    testb %al, %al
    jz 4f
    outb %al, %dx
    jmp 3b
4:  ret
msg_good: .asciz "aout: magic ok, loader "
msg_bad: .asciz "aout: bad magic, loader "
nl: .asciz "\n"
image_end:
    .set bss_end, image_end + 0x1000
"""


def test_bios_loads_aout_kludge_kernel(built: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "aout.S"
    src.write_text(AOUT_KERNEL)
    kernel = tmp_path / "aout.bin"
    subprocess.run(["gcc", "-m32", "-nostdlib", "-static", "-Wl,--build-id=none",
                    "-Wl,-Ttext=0x200000", "-Wl,--oformat=binary", "-o", str(kernel), str(src)],
                   check=True, timeout=60)
    run = run_qemu(["-bios", BIOS, "-fw_cfg", f"name=opt/org.spicevm/kernel,file={kernel}",
                    *QEMU_ARGS], timeout=10)
    assert "aout: magic ok, loader spicevm-bios" in run.lines, run.out
    assert re.search(r"^bios: kernel: a.out-kludge image 0x00200000-0x00200[0-9a-f]{3} "
                     r"from file offset 0x0, bss to 0x00201[0-9a-f]{3}$", run.out, re.M), run.out
    assert run.rc == EXIT_PASSED


@pytest.mark.parametrize("vram64_mb", [512, 2048])
def test_bios_places_64bit_bar(built: dict[str, Path], vram64_mb: int) -> None:
    """A 64-bit BAR stays below 4 GiB while everything fits in the window,
    and moves above 4 GiB when it does not."""
    run = run_qemu(["-bios", BIOS, "-kernel", HELLO, "-nic", "none",
                    *[a if a != "qxl" else "none" for a in QEMU_ARGS],
                    "-device", f"qxl-vga,vram64_size_mb={vram64_mb}"])
    assert_all_passed(parse_tap(run.out), run)
    bios_and_kernel_agree(run.out)
    qxl = next(d for d in parse_pci(run.out).values() if d.ident == "1b36:0100")
    kind, addr, size = qxl.bars["bar4"]
    assert (kind, size) == ("mem64 pref", vram64_mb << 20)
    assert addr % size == 0
    if vram64_mb == 512:
        assert 0xC0000000 <= addr and addr + size <= 0xFEC00000
    else:
        assert addr >= 1 << 32
        assert "bios: 64-bit BARs placed above 4 GiB" in run.lines

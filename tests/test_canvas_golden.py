"""The canvas against golden images from QEMU + spice-server.

tests/golden/*.png were captured with tools/capture_golden.py: a guest
built from its SCRIPTS runs the command sequences on QEMU's QXL (rendered
by libspice-server's software canvas) and dumps each surface after
UPDATE_AREA.  Here the same sequences, as the drawables the guest driver
builds, go through spice.canvas and must match every bit, top bytes
included."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from firmware_harness import missing

from spice import qxl
from spice.canvas import SurfaceCanvas

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"


@cache
def capture_module():
    """tools/capture_golden.py, imported by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("capture_golden",
                                                  ROOT / "tools" / "capture_golden.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def render_all() -> dict[str, np.ndarray]:
    """Every script on one primary surface, in order, as the guest runs them."""
    cg = capture_module()
    canvases = {0: SurfaceCanvas(cg.W, cg.H, cg.W * 4, cg.FMT_XRGB,
                                 np.zeros(cg.W * cg.H * 4, np.uint8))}
    out = {}
    for name in cg.SCRIPTS:
        surfaces, drawables = cg.script_drawables(name)
        for sid, (w, h) in surfaces.items():
            canvases[sid] = SurfaceCanvas(w, h, w * 4, cg.FMT_XRGB, np.zeros(w * h * 4, np.uint8))
        for d in drawables:
            canvases[d.surface_id].draw(d, canvases.get)
        out[name] = canvases[0].read_pixels(qxl.Rect(0, 0, cg.H, cg.W))
    return out


def test_every_script_has_a_golden_image():
    names = set(capture_module().SCRIPTS)
    assert names == {p.stem for p in GOLDEN.glob("*.png")}


@pytest.mark.parametrize("name", sorted(capture_module().SCRIPTS))
def test_canvas_matches_spice_server(name):
    cg = capture_module()
    golden = cg.decode_png((GOLDEN / f"{name}.png").read_bytes())
    assert golden.format == cg.FMT_XRGB
    got = render_all()[name]
    diff = np.argwhere(got != golden.pixels)
    assert diff.size == 0, [(int(y), int(x), hex(int(got[y, x])), hex(int(golden.pixels[y, x])))
                            for y, x in diff[:8]]


def test_serial_transcript_parsing_and_png_round_trip():
    cg = capture_module()
    px32 = np.array([[0x00112233, 0xFF445566], [0x80000000, 0x00FFFFFF]], np.uint32)
    px16 = np.array([[0x7FFF, 0x0001, 0x8000]], np.uint16)
    lines = ["noise before"]
    for name, px, fmt, digits in (("a", px32, 32, 8), ("b", px16, 16, 4)):
        h, w = px.shape
        lines.append(f"GOLDEN-BEGIN {name} {w} {h} {fmt}")
        lines += ["".join(f"{int(v):0{digits}x}" for v in row) for row in px]
        crc = zlib.crc32(px.astype("<u4" if digits == 8 else "<u2").tobytes())
        lines.append(f"GOLDEN-END {name} {crc:08x}")
    images = cg.parse_serial("\n".join(lines))
    assert [g.name for g in images] == ["a", "b"]
    for g, px in zip(images, (px32, px16), strict=True):
        assert np.array_equal(g.pixels, px)
        back = cg.decode_png(cg.encode_png(g))
        assert back.format == g.format and np.array_equal(back.pixels, px)
    bad = "\n".join(lines).replace(lines[-1], lines[-1][:-1] + "0")
    with pytest.raises(cg.CaptureError):
        cg.parse_serial(bad)


@pytest.mark.e2e
def test_goldens_are_reproduced_by_qemu():
    """The committed images are what this machine's QEMU renders now."""
    cg = capture_module()
    if shutil.which("qemu-system-x86_64") is None:
        missing("qemu-system-x86_64 not installed")
    sys.path.insert(0, str(ROOT / "tools"))
    import build_guest as bg

    try:
        bg.check_toolchain()
    except bg.BuildError as exc:
        missing(str(exc))
    with tempfile.TemporaryDirectory() as tmp:
        text = cg.run_qemu(cg.build_guest_elf(Path(tmp)), "qemu-system-x86_64", 120)
    images = {g.name: g for g in cg.parse_serial(text)}
    assert set(images) == set(cg.SCRIPTS)
    for name, g in images.items():
        golden = cg.decode_png((GOLDEN / f"{name}.png").read_bytes())
        assert np.array_equal(g.pixels, golden.pixels), name

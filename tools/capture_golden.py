#!/usr/bin/env python3
"""Capture golden surface images from QEMU + spice-server.

Boots a guest kernel on ``qemu-system-x86_64 -vga qxl`` (spice-server
renders its QXL commands with the reference software canvas), reads the
surfaces the guest dumps on its serial port after QXL_IO_UPDATE_AREA, and
writes them as PNG files (default: tests/golden/<name>.png).  The same
guest run on spicevm must produce the same pixels.

The guest prints, for every image it wants kept::

    GOLDEN-BEGIN <name> <width> <height> <surface format>
    <one line per row, top row first: each pixel as 8 (32-bit formats) or
     4 (16-bit formats) lower-case hex digits of its value>
    GOLDEN-END <name> <crc32 of the row bytes in memory order, 8 hex digits>

and ends by writing its exit code to the isa-debug-exit port (0xf4).
Anything else on the serial port is passed through to the log.

PNG encoding keeps every bit: 32-bit surfaces as 8-bit RGBA with the
pixel's top byte (x or a) as alpha, 16-bit surfaces as 16-bit greyscale
holding the raw pixel value.

Command line::

    capture_golden.py [--elf guest/build/golden.elf] [--out tests/golden]
                      [--qemu qemu-system-x86_64] [--timeout 120]
"""

from __future__ import annotations

import argparse
import logging
import re
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("capture_golden")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "golden"
SURFACE_BITS = {32: 32, 96: 32, 16: 16, 80: 16}  # SPICE_SURFACE_FMT_* -> bits
_BEGIN = re.compile(r"GOLDEN-BEGIN (\S+) (\d+) (\d+) (\d+)$")
_END = re.compile(r"GOLDEN-END (\S+) ([0-9a-f]{8})$")


class CaptureError(RuntimeError):
    """The guest output could not be turned into images."""


@dataclass
class Golden:
    name: str
    format: int  # SPICE_SURFACE_FMT_*
    pixels: np.ndarray  # top-down (h, w) uint32 or uint16 raw values


def parse_serial(text: str) -> list[Golden]:
    """The images in a serial transcript (see the module docstring)."""
    out: list[Golden] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _BEGIN.match(lines[i].strip())
        i += 1
        if not m:
            continue
        name, w, h, fmt = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        bits = SURFACE_BITS.get(fmt)
        if bits is None:
            raise CaptureError(f"{name}: surface format {fmt} cannot be captured")
        digits = bits // 4
        dtype = np.uint32 if bits == 32 else np.uint16
        rows = np.zeros((h, w), dtype)
        for y in range(h):
            if i >= len(lines):
                raise CaptureError(f"{name}: transcript ends in row {y}")
            row = lines[i].strip()
            i += 1
            if len(row) != w * digits:
                raise CaptureError(f"{name}: row {y} has {len(row)} hex digits, "
                                   f"{w * digits} expected")
            rows[y] = [int(row[k:k + digits], 16) for k in range(0, len(row), digits)]
        end = _END.match(lines[i].strip()) if i < len(lines) else None
        if end is None or end.group(1) != name:
            raise CaptureError(f"{name}: no GOLDEN-END line")
        i += 1
        crc = zlib.crc32(rows.astype("<u4" if bits == 32 else "<u2").tobytes())
        if crc != int(end.group(2), 16):
            raise CaptureError(f"{name}: CRC {crc:08x} does not match {end.group(2)}")
        out.append(Golden(name, fmt, rows))
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(golden: Golden) -> bytes:
    """The image as PNG (RGBA8 for 32-bit formats, grey16 for 16-bit)."""
    px = golden.pixels
    h, w = px.shape
    if px.dtype == np.uint32:
        rgba = np.stack([(px >> 16) & 0xFF, (px >> 8) & 0xFF, px & 0xFF, px >> 24], axis=-1)
        body = rgba.astype(np.uint8).reshape(h, w * 4)
        header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    else:
        body = px.astype(">u2").view(np.uint8).reshape(h, w * 2)
        header = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + body[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"tEXt", b"spice-surface-format\x00" + str(golden.format).encode())
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def decode_png(data: bytes) -> Golden:
    """Read back a PNG written by :func:`encode_png` (name left empty)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise CaptureError("not a PNG file")
    pos, idat, fmt, header = 8, b"", 0, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt" and body.startswith(b"spice-surface-format\x00"):
            fmt = int(body.split(b"\x00", 1)[1])
    if header is None:
        raise CaptureError("PNG without IHDR")
    w, h, depth, color = header[:4]
    bpp = 4 if (depth, color) == (8, 6) else 2 if (depth, color) == (16, 0) else 0
    if not bpp or header[6] != 0:
        raise CaptureError("PNG is not one this tool writes")
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * bpp)
    if raw[:, 0].any():
        raise CaptureError("PNG rows use a filter this tool does not write")
    body = np.ascontiguousarray(raw[:, 1:])
    if bpp == 4:
        c = body.reshape(h, w, 4).astype(np.uint32)
        px = (c[..., 3] << 24) | (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
    else:
        px = body.view(">u2").reshape(h, w).astype(np.uint16)
    return Golden("", fmt, px)


# -- the command scripts -------------------------------------------------------
#
# Each script draws on a fresh 64x48 32_xRGB primary surface through the
# guest driver library (guest/qxl) and is dumped after an UPDATE_AREA of the
# whole surface.  The same list builds the guest (:func:`guest_source`) and
# the drawables the canvas tests replay (:func:`script_drawables`), which
# mirror what the library puts in each QXLDrawable.

W, H = 64, 48
FMT_XRGB = 32
BMP_32, BMP_RGBA = 8, 9
OP_PUT, OP_OR, OP_AND, OP_XOR = 1 << 3, 1 << 4, 1 << 5, 1 << 6
INV_SRC, INV_BRUSH, INV_DEST, INV_RES = 1, 2, 4, 1 << 10
NEAREST, INTERPOLATE = 1, 0


def _gradient(w: int, h: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.uint32)
    r = (x * 37 + y * 11 + seed * 53) & 0xFF
    g = (x * 13 + y * 29 + seed * 7) & 0xFF
    b = (x * 7 + y * 5 + seed * 101) & 0xFF
    return ((r << 16) | (g << 8) | b).astype(np.uint32)


def _premultiplied(w: int, h: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.uint32)
    a = (x * 29 + y * 43 + seed * 17) & 0xFF
    rgb = _gradient(w, h, seed)
    ch = [((rgb >> s) & 0xFF) * a // 255 for s in (16, 8, 0)]
    return ((a << 24) | (ch[0] << 16) | (ch[1] << 8) | ch[2]).astype(np.uint32)


IMAGES = {
    "grad": (BMP_32, _gradient(10, 8, 1)),
    "tile": (BMP_32, _gradient(3, 2, 2)),
    "rgba": (BMP_RGBA, _premultiplied(12, 9, 3)),
    "keyed": (BMP_32, np.where(_gradient(9, 7, 4) % 3 == 0, np.uint32(0x00FF00FF),
                               _gradient(9, 7, 4)).astype(np.uint32)),
}

# (operation, arguments); rectangles are (x, y, w, h)
SCRIPTS: dict[str, list[tuple]] = {
    "fill_rops": [
        ("fill", (0, 0, W, H), 0x203040, OP_PUT),
        *[("fill", (2 + 10 * (i % 6), 2 + 15 * (i // 6), 12, 12), 0x00C08010 + 0x050311 * i,
           rop) for i, rop in enumerate([
               OP_PUT, OP_OR, OP_AND, OP_XOR, OP_PUT | INV_BRUSH, OP_OR | INV_DEST,
               OP_AND | INV_RES, OP_XOR | INV_BRUSH | INV_DEST, 1 << 7, 1 << 8, 1 << 9,
               OP_OR | INV_BRUSH | INV_RES, OP_AND | INV_BRUSH | INV_DEST, OP_PUT | INV_RES,
               OP_XOR | INV_RES, 0])],
        ("pattern", (40, 30, 20, 15), "tile", 5, 7, OP_PUT),
        ("pattern", (3, 33, 30, 12), "tile", -1, 2, OP_XOR),
    ],
    "copy_scale": [
        ("fill", (0, 0, W, H), 0x000000, OP_PUT),
        ("copy", (1, 1, 10, 8), "grad", (0, 0, 10, 8), OP_PUT, NEAREST),
        ("copy", (12, 1, 20, 16), "grad", (0, 0, 10, 8), OP_PUT, NEAREST),
        ("copy", (33, 1, 30, 21), "grad", (1, 1, 8, 6), OP_PUT, INTERPOLATE),
        ("copy", (1, 24, 7, 19), "grad", (2, 0, 7, 8), OP_PUT, INTERPOLATE),
        ("copy", (10, 20, 20, 12), "grad", (0, 0, 10, 8), OP_XOR, NEAREST),
        ("copy", (40, 25, 10, 8), "grad", (0, 0, 10, 8), OP_AND | INV_SRC, NEAREST),
        ("opaque", (30, 34, 10, 8), "grad", (0, 0, 10, 8), 0x0F0F0F, OP_OR),
        ("blend", (50, 36, 10, 8), "grad", (0, 0, 10, 8), OP_XOR),
    ],
    "alpha_keyed": [
        ("fill", (0, 0, W, H), 0x506070, OP_PUT),
        ("alpha", (2, 2, 12, 9), "rgba", (0, 0, 12, 9), 255, 0),
        ("alpha", (16, 2, 12, 9), "rgba", (0, 0, 12, 9), 128, 0),
        ("alpha", (30, 2, 24, 18), "rgba", (0, 0, 12, 9), 200, 0),
        ("alpha", (2, 14, 12, 9), "grad", (0, 0, 10, 8), 90, 0),
        ("transparent", (16, 24, 9, 7), "keyed", (0, 0, 9, 7), 0x00FF00FF),
        ("transparent", (30, 24, 27, 14), "keyed", (0, 0, 9, 7), 0x00FF00FF),
    ],
    "bits_lines": [
        ("copy", (0, 0, W, H), "grad", (0, 0, 10, 8), OP_PUT, NEAREST),
        ("copy_bits", (10, 6, 30, 20), 4, 2),
        ("copy_bits", (3, 30, 20, 12), 9, 33),
        ("invers", (40, 2, 20, 40)),
        ("whiteness", (0, 44, 30, 4)),
        ("blackness", (30, 44, 34, 4)),
        ("stroke", [(1, 1), (62, 46), (1, 46), (33, 2)], 0x00FFFF00, OP_PUT),
        ("stroke", [(5, 40), (60, 8), (60, 40), (5, 8), (5, 40)], 0x00FF00FF, OP_XOR),
        ("clip", [(0, 0, 32, 24), (36, 28, 20, 20)]),
        ("fill", (0, 0, W, H), 0x00808080, OP_XOR),
        ("clip", []),
    ],
    "surfaces": [
        ("new_surface", 1, 32, 24),
        ("surface_image", "surf1", 1),
        ("on", 1),
        ("fill", (0, 0, 32, 24), 0x00123456, OP_PUT),
        ("copy", (4, 4, 20, 16), "grad", (0, 0, 10, 8), OP_PUT, INTERPOLATE),
        ("invers", (10, 0, 4, 24)),
        ("on", 0),
        ("fill", (0, 0, W, H), 0x00000000, OP_PUT),
        ("copy", (0, 0, 32, 24), "surf1", (0, 0, 32, 24), OP_PUT, NEAREST),
        ("copy", (32, 0, 32, 48), "surf1", (8, 4, 16, 12), OP_PUT, INTERPOLATE),
        ("pattern", (0, 24, 32, 24), "surf1", 3, 5, OP_XOR),
        ("alpha", (4, 28, 20, 12), "surf1", (0, 0, 20, 12), 160, 0),
        ("copy", (40, 30, 16, 12), "surf1", (4, 4, 16, 12), OP_OR, NEAREST),
    ],
}


def _c_rect(r: tuple) -> str:
    return f"qxl_rect_xywh({r[0]}, {r[1]}, {r[2]}, {r[3]})"


def guest_source() -> str:
    """C source of the guest that runs SCRIPTS on the QXL and dumps them."""
    out = ['#include "lib/console.h"', '#include "qxl/qxl_draw.h"', "",
           "static uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n)", "{",
           "    for (uint32_t i = 0; i < n; i++) {", "        crc ^= p[i];",
           "        for (int k = 0; k < 8; k++)",
           "            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));", "    }",
           "    return crc;", "}", "",
           "static void dump(const char *name)", "{",
           f"    struct qxl_rect all = qxl_rect_xywh(0, 0, {W}, {H});",
           "    int rc = qxl_update_area(&qxl, 0, &all, false);",
           '    if (rc) { printf("update_area %d\\n", rc); return; }',
           f'    printf("GOLDEN-BEGIN %s {W} {H} {FMT_XRGB}\\n", name);',
           "    uint32_t crc = 0xFFFFFFFFu;",
           f"    for (int y = 0; y < {H}; y++) {{",
           "        const uint32_t *row =",
           "            (const uint32_t *)(qxl.primary.mem + y * qxl.primary.stride);",
           f"        for (int x = 0; x < {W}; x++)", '            printf("%08x", row[x]);',
           '        printf("\\n");',
           f"        crc = crc32_update(crc, (const uint8_t *)row, {W * 4});", "    }",
           '    printf("GOLDEN-END %s %08x\\n", name, crc ^ 0xFFFFFFFFu);', "}", ""]
    for name, (_fmt, px) in IMAGES.items():
        vals = ", ".join(f"0x{int(v):08x}u" for v in px.reshape(-1))
        out.append(f"static const uint32_t px_{name}[] = {{{vals}}};")
    out += ["", "int main(void)", "{", "    int rc = qxl_init(&qxl, 0);",
            '    if (rc) { printf("qxl_init %d\\n", rc); return 1; }',
            f"    rc = qxl_create_primary(&qxl, {W}, {H}, {FMT_XRGB}, false);",
            '    if (rc) { printf("create_primary %d\\n", rc); return 1; }',
            "    struct qxl_rect r, a;"]
    for name, (fmt, px) in IMAGES.items():
        h, w = px.shape
        out.append(f"    struct qxl_image *im_{name} = qxl_image_bitmap(&qxl, {fmt}, {w}, {h}, "
                   f"px_{name}, {w * 4}, 0, 0, false);")
    out.append("    uint32_t sid = 0;")
    for name, ops in SCRIPTS.items():
        out.append(f"    /* {name} */")
        for op in ops:
            out.append("    " + _c_call(op))
        out.append(f'    dump("{name}");')
    out += ['    printf("done\\n");', "    return 0;", "}", ""]
    return "\n".join(out)


def _c_call(op: tuple) -> str:
    kind = op[0]
    if kind == "new_surface":
        return (f"if (qxl_surface_create(&qxl, {op[2]}, {op[3]}, {FMT_XRGB}) != {op[1]}) "
                f'printf("surface {op[1]} not created\\n");')
    if kind == "surface_image":
        return f"struct qxl_image *im_{op[1]} = qxl_image_surface(&qxl, {op[2]});"
    if kind == "on":
        return f"sid = {op[1]};"
    if kind == "fill":
        return f"r = {_c_rect(op[1])}; qxl_fill(&qxl, sid, &r, 0x{op[2]:08x}u, {op[3]});"
    if kind == "pattern":
        return (f"r = {_c_rect(op[1])}; qxl_fill_pattern(&qxl, sid, &r, im_{op[2]}, {op[3]}, "
                f"{op[4]}, {op[5]});")
    if kind in ("copy", "opaque", "blend", "alpha", "transparent"):
        head = f"r = {_c_rect(op[1])}; a = {_c_rect(op[3])}; "
        img = f"im_{op[2]}"
        if kind == "copy":
            return head + f"qxl_copy(&qxl, sid, &r, {img}, &a, {op[4]}, {op[5]});"
        if kind == "opaque":
            return head + f"qxl_opaque(&qxl, sid, &r, {img}, &a, 0x{op[4]:08x}u, {op[5]});"
        if kind == "blend":
            return head + f"qxl_blend(&qxl, sid, &r, {img}, &a, {op[4]});"
        if kind == "alpha":
            return head + f"qxl_alpha_blend(&qxl, sid, &r, {img}, &a, {op[4]}, {op[5]});"
        return head + f"qxl_transparent(&qxl, sid, &r, {img}, &a, 0x{op[4]:08x}u);"
    if kind == "copy_bits":
        return f"r = {_c_rect(op[1])}; qxl_copy_bits(&qxl, sid, &r, {op[2]}, {op[3]});"
    if kind in ("invers", "whiteness", "blackness"):
        return f"r = {_c_rect(op[1])}; qxl_{kind}(&qxl, sid, &r);"
    if kind == "stroke":
        pts = ", ".join(f"{{{x}, {y}}}" for x, y in op[1])
        return (f"{{ struct qxl_point p[] = {{{pts}}}; "
                f"qxl_stroke(&qxl, sid, p, {len(op[1])}, 0x{op[2]:08x}u, {op[3]}); }}")
    if kind == "clip":
        if not op[1]:
            return "qxl_clear_clip(&qxl);"
        rects = ", ".join(_c_rect(r) for r in op[1])
        return f"{{ struct qxl_rect c[] = {{{rects}}}; qxl_set_clip(&qxl, c, {len(op[1])}); }}"
    raise ValueError(f"unknown script operation {kind!r}")


def script_drawables(name: str) -> tuple[dict[int, tuple[int, int]], list]:
    """The off-screen surfaces ({id: (width, height)}, 32_xRGB, zeroed) and
    the spice.qxl drawables the guest library builds for one script (the
    fields rendering depends on; image ids are unique, nothing is cached)."""
    from spice import qxl

    r0 = qxl.Rect(0, 0, 0, 0)
    uid = [0]

    def rect(r: tuple) -> qxl.Rect:
        return qxl.Rect(r[1], r[0], r[1] + r[3], r[0] + r[2])

    surf_images: dict[str, int] = {}
    surfaces: dict[int, tuple[int, int]] = {}
    target = [0]

    def image(key: str) -> qxl.Image:
        if key in surf_images:
            desc = qxl.ImageDescriptor(0, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 0, 0)
            return qxl.SurfaceImage(desc, surf_images[key])
        fmt, px = IMAGES[key]
        uid[0] += 1
        h, w = px.shape
        desc = qxl.ImageDescriptor(uid[0] << 32, qxl.SPICE_IMAGE_TYPE_BITMAP, 0, w, h)
        return qxl.BitmapImage(desc, fmt, qxl.QXL_BITMAP_DIRECT | qxl.QXL_BITMAP_TOP_DOWN, w, h,
                               w * 4, None, np.ascontiguousarray(px).view(np.uint8).reshape(-1))

    clip: np.ndarray | None = None
    out = []

    def add(t: int, bbox: tuple, u: object) -> None:
        out.append(qxl.Drawable(target[0], 0, t, 0, r0, rect(bbox), clip, 0, (-1, -1, -1),
                                (r0, r0, r0), u))

    for op in SCRIPTS[name]:
        kind = op[0]
        if kind == "new_surface":
            surfaces[op[1]] = (op[2], op[3])
        elif kind == "surface_image":
            surf_images[op[1]] = op[2]
        elif kind == "on":
            target[0] = op[1]
        elif kind == "fill":
            add(qxl.QXL_DRAW_FILL, op[1], qxl.Fill(qxl.Brush(1, op[2]), op[3], qxl.NO_MASK))
        elif kind == "pattern":
            brush = qxl.Brush(2, 0, image(op[2]), qxl.Point(op[3], op[4]))
            add(qxl.QXL_DRAW_FILL, op[1], qxl.Fill(brush, op[5], qxl.NO_MASK))
        elif kind == "copy":
            add(qxl.QXL_DRAW_COPY, op[1],
                qxl.Copy(image(op[2]), rect(op[3]), op[4], op[5], qxl.NO_MASK))
        elif kind == "opaque":
            add(qxl.QXL_DRAW_OPAQUE, op[1], qxl.Opaque(image(op[2]), rect(op[3]),
                                                       qxl.Brush(1, op[4]), op[5], NEAREST,
                                                       qxl.NO_MASK))
        elif kind == "blend":
            add(qxl.QXL_DRAW_BLEND, op[1],
                qxl.Blend(image(op[2]), rect(op[3]), op[4], NEAREST, qxl.NO_MASK))
        elif kind == "alpha":
            add(qxl.QXL_DRAW_ALPHA_BLEND, op[1],
                qxl.AlphaBlend(op[5], op[4], image(op[2]), rect(op[3])))
        elif kind == "transparent":
            add(qxl.QXL_DRAW_TRANSPARENT, op[1],
                qxl.Transparent(image(op[2]), rect(op[3]), op[4], op[4]))
        elif kind == "copy_bits":
            add(qxl.QXL_COPY_BITS, op[1], qxl.CopyBits(qxl.Point(op[2], op[3])))
        elif kind in ("invers", "whiteness", "blackness"):
            t, cls = {"invers": (qxl.QXL_DRAW_INVERS, qxl.Invers),
                      "whiteness": (qxl.QXL_DRAW_WHITENESS, qxl.Whiteness),
                      "blackness": (qxl.QXL_DRAW_BLACKNESS, qxl.Blackness)}[kind]
            add(t, op[1], cls(qxl.NO_MASK))
        elif kind == "stroke":
            pts = op[1]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            bbox = (min(xs), min(ys), max(xs) + 1 - min(xs), max(ys) + 1 - min(ys))
            seg = qxl.PathSeg(qxl.QXL_PATH_BEGIN | qxl.QXL_PATH_END,
                              np.array(pts, np.int32).reshape(-1, 2) << 4)
            add(qxl.QXL_DRAW_STROKE, bbox, qxl.Stroke([seg], qxl.LineAttr(0, None),
                                                      qxl.Brush(1, op[2]), op[3], OP_PUT))
        elif kind == "clip":
            clip = (np.array([[r[1], r[0], r[1] + r[3], r[0] + r[2]] for r in op[1]], np.int32)
                    if op[1] else None)
    return surfaces, out


def build_guest_elf(workdir: Path) -> Path:
    """Compile the golden guest (guest_source + the guest toolkit and QXL
    library) into ``workdir``; returns the ELF.  Uses the compiler flags of
    tools/build_guest.py."""
    sys.path.insert(0, str(ROOT / "tools"))
    import build_guest as bg

    tools = bg.check_toolchain()
    gen = workdir / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    for script in sorted((ROOT / "guest" / "qxl").glob("gen_*.py")):
        subprocess.run([sys.executable, str(script), str(gen)], check=True, timeout=300)
    main_c = workdir / "main.c"
    main_c.write_text(guest_source())
    sources = [main_c] + [p for d in ("lib", "qxl") for p in sorted((ROOT / "guest" / d).iterdir())
                          if p.suffix in (".c", ".S")]
    objs = []
    for i, src in enumerate(sources):
        obj = workdir / f"{i:03d}_{src.stem}.o"
        flags = bg.ASFLAGS if src.suffix == ".S" else bg.CFLAGS
        subprocess.run([tools["gcc"], *flags, f"-I{ROOT / 'guest'}", f"-I{gen}", "-c", str(src),
                        "-o", str(obj)], check=True, timeout=300)
        objs.append(str(obj))
    elf = workdir / "golden.elf"
    subprocess.run([tools["gcc"], *bg.LDFLAGS, "-T", str(ROOT / "guest" / "link.ld"), "-o",
                    str(elf), *objs, "-lgcc"], check=True, timeout=300)
    return elf


def run_qemu(elf: Path, qemu: str, timeout: float) -> str:
    """Boot ``elf`` on QEMU's QXL and return what the guest wrote on serial."""
    with tempfile.TemporaryDirectory() as tmp:
        serial = Path(tmp) / "serial.txt"
        cmd = [qemu, "-vga", "qxl", "-display", "none", "-m", "128", "-no-reboot",
               "-spice", f"unix=on,addr={tmp}/spice.sock,disable-ticketing=on",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
               "-serial", f"file:{serial}", "-monitor", "none", "-kernel", str(elf)]
        log.info("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise CaptureError(f"QEMU did not finish within {timeout} s") from exc
        text = serial.read_text(errors="replace") if serial.exists() else ""
        # isa-debug-exit turns the guest's code c into exit status 2c + 1
        if proc.returncode not in (1, 3) and not text:
            raise CaptureError(f"QEMU failed ({proc.returncode}): {proc.stderr.strip()}")
        return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--elf", type=Path,
                   help="guest kernel to boot (default: build the golden guest of SCRIPTS)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the PNGs")
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--serial", type=Path, help="parse this transcript instead of booting")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.serial is not None:
        text = args.serial.read_text(errors="replace")
    elif args.elf is not None:
        if not args.elf.is_file():
            print(f"capture_golden: {args.elf} not found", file=sys.stderr)
            return 2
        text = run_qemu(args.elf, args.qemu, args.timeout)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            text = run_qemu(build_guest_elf(Path(tmp)), args.qemu, args.timeout)
    try:
        images = parse_serial(text)
    except CaptureError as exc:
        print(f"capture_golden: {exc}", file=sys.stderr)
        return 1
    if not images:
        print("capture_golden: the guest dumped no images", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for g in images:
        path = args.out / f"{g.name}.png"
        path.write_bytes(encode_png(g))
        log.info("wrote %s (%dx%d)", path, g.pixels.shape[1], g.pixels.shape[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())

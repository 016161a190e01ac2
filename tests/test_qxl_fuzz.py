"""Hypothesis throws random command structures at the QXL rings.

Each example builds, from a random seed, a handful of commands the way a
confused driver might: drawables of every draw type whose fields point at
images (bitmaps of every format with or without palettes and chunk chains,
QUIC streams, surface references), brushes, masks, clip rectangles, paths
and glyph strings; surface, update and message commands; cursor commands
with shapes of every type -- each field valid most of the time and random
some of the time, pointers sometimes into nowhere, chunk chains sometimes
looping -- and then corrupts a few random bytes.  Nothing may escape the
device: no exception and no internal error it swallowed, and whatever it
hands out is the typed host data of spice.qxl.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.qxl import layout as L
from spice import qxl as Q
from tests.qxl_harness import QXLMachine, drawable_bytes, record

ARENA = 32 * 1024
N_SURFACES = 64


class ErrorTrap(logging.Handler):
    """Collects ERROR records: the device logs a swallowed internal error
    (a bug of ours, not the guest's) at ERROR before parking itself."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, rec: logging.LogRecord) -> None:
        self.records.append(rec)


_trap = ErrorTrap()
logging.getLogger("devices").addHandler(_trap)
_machine: QXLMachine | None = None


def machine() -> QXLMachine:
    global _machine
    if _machine is None:
        _machine = QXLMachine(surfaces=N_SURFACES)
        _machine.arena = _machine.alloc(ARENA, align=4096)  # type: ignore[attr-defined]
    return _machine


def s32(value: int) -> int:
    """``value`` as an int32 field would hold it."""
    return (value & 0xFFFFFFFF) - ((value & 0x80000000) << 1)


class Builder:
    """Lays out random QXL structures in an arena image."""

    def __init__(self, rng: np.random.Generator, base: int, compat: bool,
                 m: QXLMachine) -> None:
        self.rng = rng
        self.mem = np.zeros(ARENA, np.uint8)
        self.base = base
        self.compat = compat
        self.m = m
        self.top = 0

    # -- primitives
    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def num(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def wild(self, value: int, bits: int = 32) -> int:
        """``value`` most of the time, something random sometimes."""
        if self.chance(0.03):
            return int(self.rng.integers(0, 1 << bits, dtype=np.uint64)) if bits < 64 \
                else int(self.rng.integers(0, 1 << 63)) * 2
        return value

    def alloc(self, size: int) -> int | None:
        off = (self.top + 7) & ~7
        if off + size > ARENA:
            return None
        self.top = off + size
        return off

    def ptr(self, off: int | None) -> int:
        if off is None:
            return 0
        if self.chance(0.015):  # into nowhere, or another slot, or a bad generation
            return self.wild(0, 64)
        return self.base + off if self.compat else self.m.phys(self.base + off)

    def put(self, data: bytes) -> int | None:
        off = self.alloc(len(data))
        if off is not None:
            self.mem[off:off + len(data)] = np.frombuffer(data, np.uint8)
        return off

    def put_rec(self, dtype: np.dtype, fields: dict, extra: bytes = b"") -> int | None:
        return self.put(record(dtype, fields).tobytes() + extra)

    def noise(self, n: int) -> bytes:
        return self.rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    # -- chunks
    def chunk_chain(self, data: bytes) -> tuple[dict, bytes, int | None]:
        """(first chunk header fields, first chunk's data, nothing) with the
        rest of ``data`` in further chunks; sometimes wrong or looping."""
        cuts = sorted(self.num(0, len(data)) for _ in range(self.num(0, 3)))
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)], strict=True)]
        nxt = 0
        first_off = None
        for piece in reversed(pieces[1:]):
            off = self.put_rec(L.DATA_CHUNK, {"data_size": self.wild(len(piece)),
                                              "next_chunk": nxt}, piece)
            nxt = self.ptr(off)
            first_off = first_off if first_off is not None else off
        if self.chance(0.03) and first_off is not None:  # a loop
            self.mem[first_off + 12:first_off + 20] = np.frombuffer(
                np.uint64(nxt).tobytes(), np.uint8)
        return {"data_size": self.wild(len(pieces[0])), "next_chunk": nxt}, pieces[0], None

    def chunked(self, dtype: np.dtype, fields: dict, data: bytes) -> int | None:
        head, first, _ = self.chunk_chain(data)
        fields = dict(fields)
        fields.update({f"chunk.{k}": v for k, v in head.items()})
        return self.put_rec(dtype, fields, first)

    # -- images, brushes, masks
    def image(self, mask: bool = False) -> int:
        if self.chance(0.05):
            return 0
        kind = self.rng.choice([0, 0, 0, 0, 0, 1, 2, 3])
        w, h = self.num(1, 12), self.num(1, 12)
        if kind == 1:  # surface
            img = record(L.IMAGE, {"descriptor.type": Q.SPICE_IMAGE_TYPE_SURFACE,
                                   "descriptor.width": w, "descriptor.height": h,
                                   "surface_id": self.wild(self.num(0, N_SURFACES))})
            return self.ptr(self.put(img.tobytes()))
        if kind == 2:  # guest QUIC
            stream = np.array([0x43495551, 0, self.num(0, 6), w, h], "<u4").tobytes()
            stream += self.noise(self.num(0, 64))
            img = record(L.IMAGE, {"descriptor.type": Q.SPICE_IMAGE_TYPE_QUIC,
                                   "descriptor.width": w, "descriptor.height": h,
                                   "quic_data_size": self.wild(len(stream)),
                                   "quic_chunk.data_size": self.wild(len(stream))})
            raw = img.tobytes()[:L.IMAGE_QUIC_DATA_OFFSET] + stream
            return self.ptr(self.put(raw.ljust(48, b"\0")))
        if kind == 3:
            return self.ptr(self.put(self.noise(48)))
        fmt = self.wild(self.num(1, 10) if not mask else Q.SPICE_BITMAP_FMT_1BIT_BE, 8) & 0xFF
        bpp = Q.BITMAP_FMT_BPP[fmt] if fmt < len(Q.BITMAP_FMT_BPP) else 8
        stride = self.wild((w * bpp + 7) // 8 + self.num(0, 3))
        size = min(h * stride, 4096)
        palette = 0
        if fmt in Q.BITMAP_FMT_HAS_PALETTE and not self.chance(0.1) or self.chance(0.05):
            n = self.wild(self.num(0, 16), 16) & 0xFFFF
            palette = self.ptr(self.put_rec(L.PALETTE_HEAD, {"unique": self.num(0, 99),
                                                             "num_ents": n},
                                            self.noise(4 * min(n, 64))))
        flags = self.num(0, 7)
        if flags & Q.QXL_BITMAP_DIRECT:
            data = self.ptr(self.put(self.noise(size)))
        else:
            head, first, _ = self.chunk_chain(self.noise(size))
            data = self.ptr(self.put_rec(L.DATA_CHUNK, head, first))
        img = record(L.IMAGE, {"descriptor.id": self.num(0, 1 << 40),
                               "descriptor.type": Q.SPICE_IMAGE_TYPE_BITMAP,
                               "descriptor.flags": self.num(0, 3), "descriptor.width": w,
                               "descriptor.height": h, "bitmap.format": fmt,
                               "bitmap.flags": flags, "bitmap.x": self.wild(w),
                               "bitmap.y": self.wild(h), "bitmap.stride": stride,
                               "bitmap.palette": palette, "bitmap.data": data})
        return self.ptr(self.put(img.tobytes()))

    def brush(self, prefix: str) -> dict:
        btype = self.wild(self.num(0, 2))
        fields = {f"{prefix}.type": btype}
        if btype == Q.SPICE_BRUSH_TYPE_PATTERN:
            fields[f"{prefix}.pattern.pat"] = self.image()
            fields[f"{prefix}.pattern.pos"] = (self.num(-4, 4), self.num(-4, 4))
        else:
            fields[f"{prefix}.color"] = self.num(0, 0xFFFFFFFF)
        return fields

    def qmask(self, prefix: str = "mask") -> dict:
        return {f"{prefix}.flags": self.num(0, 1), f"{prefix}.pos": (self.num(0, 9), 0),
                f"{prefix}.bitmap": self.image(mask=True) if self.chance(0.4) else 0}

    def src(self) -> dict:
        return {"src_bitmap": self.image(),
                "src_area": (0, 0, s32(self.wild(self.num(0, 12))),
                             s32(self.wild(self.num(0, 12))))}

    def path(self) -> int:
        data = b""
        for _ in range(self.num(0, 3)):
            n = self.num(0, 4)
            data += np.array([self.num(0, 31), self.wild(n)], "<u4").tobytes()
            data += self.noise(8 * n)
        return self.ptr(self.chunked(L.PATH, {"data_size": self.wild(len(data))}, data))

    def string(self) -> int:
        flags = self.wild(1 << self.num(0, 3), 16)
        bpp = {1: 1, 2: 4, 4: 8}.get(flags & 7, 8)
        data, n = b"", self.num(0, 3)
        for _ in range(n):
            w, h = self.num(0, 9), self.num(0, 9)
            glyph = record(L.RASTER_GLYPH_HEAD, {"width": self.wild(w, 16),
                                                 "height": self.wild(h, 16)})
            data += glyph.tobytes() + self.noise(h * ((w * bpp + 7) // 8))
        return self.ptr(self.chunked(L.STRING, {"data_size": self.wild(len(data)),
                                                "length": self.wild(n, 16), "flags": flags},
                                     data))

    def clip(self) -> tuple[int, int]:
        ctype = self.wild(self.rng.choice([0, 1]))
        if ctype != Q.SPICE_CLIP_TYPE_RECTS:
            return ctype, 0
        n = self.num(0, 4)
        data = np.array([[0, 0, self.num(0, 9), self.num(0, 9)]] * n, "<i4").tobytes()
        return ctype, self.ptr(self.chunked(L.CLIP_RECTS, {"num_rects": self.wild(n)}, data))

    def transform(self) -> int:
        return self.ptr(self.put(self.noise(24))) if self.chance(0.5) else 0

    # -- commands
    def union(self, dtype: int) -> np.ndarray | None:
        rop = {"rop_descriptor": self.num(0, 0x7FF)}
        if dtype == Q.QXL_DRAW_FILL:
            return record(L.FILL, {**self.brush("brush"), **rop, **self.qmask()})
        if dtype == Q.QXL_DRAW_OPAQUE:
            return record(L.OPAQUE, {**self.src(), **self.brush("brush"), **rop,
                                     **self.qmask()})
        if dtype in (Q.QXL_DRAW_COPY, Q.QXL_DRAW_BLEND):
            return record(L.COPY, {**self.src(), **rop, **self.qmask()})
        if dtype == Q.QXL_COPY_BITS:
            return record(L.COPY_BITS, {"src_pos": (self.num(0, 99), self.num(0, 99))})
        if dtype in (Q.QXL_DRAW_BLACKNESS, Q.QXL_DRAW_WHITENESS, Q.QXL_DRAW_INVERS):
            return record(L.MASK_ONLY, self.qmask())
        if dtype == Q.QXL_DRAW_ROP3:
            return record(L.ROP3, {**self.src(), **self.brush("brush"), "rop3": self.num(0, 255),
                                   **self.qmask()})
        if dtype == Q.QXL_DRAW_STROKE:
            styled = self.chance(0.3)
            nseg = self.num(0, 4)
            style = self.ptr(self.put(self.noise(4 * nseg))) if styled else 0
            return record(L.STROKE, {"path": self.path(), "attr.flags": 8 if styled else 0,
                                     "attr.style_nseg": nseg, "attr.style": style,
                                     **self.brush("brush")})
        if dtype == Q.QXL_DRAW_TEXT:
            return record(L.TEXT, {"str": self.string(), **self.brush("fore_brush"),
                                   **self.brush("back_brush")})
        if dtype == Q.QXL_DRAW_TRANSPARENT:
            return record(L.TRANSPARENT, self.src())
        if dtype == Q.QXL_DRAW_ALPHA_BLEND:
            return record(L.ALPHA_BLEND, {**self.src(), "alpha": self.num(0, 255)})
        if dtype == Q.QXL_DRAW_COMPOSITE:
            mask = self.image() if self.chance(0.5) else 0
            return record(L.COMPOSITE, {"flags": self.num(0, 1 << 19), "src": self.image(),
                                        "src_transform": self.transform(), "mask": mask,
                                        "mask_transform": self.transform()})
        return None

    def drawable(self) -> int | None:
        dtype = self.wild(self.num(0, 14), 8) & 0xFF
        union = self.union(dtype)
        head = {"type": dtype, "effect": self.num(0, 7), "bbox": (0, 0, 8, 8),
                "clip": self.clip(), "mm_time": self.num(0, 99)}
        if not self.compat:
            head["surface_id"] = self.wild(self.num(0, 2))
            head["surfaces_dest"] = tuple(s32(self.wild(int(self.rng.choice([-1, -1, 0, 1]))))
                                          for _ in range(3))
        return self.put(drawable_bytes(head, union, compat=self.compat))

    def display(self) -> tuple[int, int]:
        kind = self.rng.choice([Q.QXL_CMD_DRAW] * 6 + [Q.QXL_CMD_SURFACE, Q.QXL_CMD_UPDATE,
                                                       Q.QXL_CMD_MESSAGE, Q.QXL_CMD_NOP])
        if kind == Q.QXL_CMD_DRAW:
            off = self.drawable()
        elif kind == Q.QXL_CMD_SURFACE:
            w, h = self.num(0, 16), self.num(0, 16)
            fmt = self.wild(int(self.rng.choice([1, 8, 16, 32, 80, 96])))
            stride = s32(self.wild(-w * 4 if self.chance(0.5) else w * 4))
            data = self.ptr(self.put(self.noise(min(abs(stride) * h, 4096))))
            off = self.put_rec(L.SURFACE_CMD, {"surface_id": self.wild(self.num(0, 8)),
                                               "type": self.wild(self.num(0, 1), 8),
                                               "surface_create": (fmt, w, h, stride, data)})
        elif kind == Q.QXL_CMD_UPDATE:
            off = self.put_rec(L.UPDATE_CMD, {"area": (0, 0, 4, 4),
                                              "surface_id": self.wild(0)})
        else:
            off = self.put(np.zeros(8, np.uint8).tobytes() + self.noise(self.num(0, 40)))
        return int(kind), self.ptr(off)

    def cursor(self) -> tuple[int, int]:
        ctype = self.wild(self.num(0, 3), 8)
        fields: dict = {"type": ctype, "position": (self.num(-9, 99), self.num(-9, 99))}
        if ctype == Q.QXL_CURSOR_SET:
            stype, w, h = self.wild(self.num(0, 6), 16), self.num(0, 12), self.num(0, 12)
            size = {0: 4 * w * h, 1: 2 * ((w + 7) // 8) * h}.get(stype, 5 * w * h + 1024)
            shape = self.chunked(L.CURSOR, {"header": (1, stype, self.wild(w, 16),
                                                       self.wild(h, 16), 0, 0),
                                            "data_size": self.wild(size)}, self.noise(size))
            fields = {"type": ctype, "set_position": (1, 2), "set_visible": 1,
                      "set_shape": self.ptr(shape)}
        return Q.QXL_CMD_CURSOR, self.ptr(self.put_rec(L.CURSOR_CMD, fields))


def check_payload(obj: object, depth: int = 0) -> None:
    """Everything handed out is host data: dataclasses, tuples, ints, bytes
    and numpy arrays."""
    assert depth < 16
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            check_payload(getattr(obj, f.name), depth + 1)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            check_payload(item, depth + 1)
    else:
        assert obj is None or isinstance(obj, (int, bytes, np.ndarray)), type(obj)


scenario = st.fixed_dictionaries({
    "random": st.randoms(use_true_random=False),
    "display": st.integers(0, 4),
    "cursor": st.integers(0, 2),
    "corrupt": st.integers(0, 12),
    "compat": st.booleans(),
    "port": st.one_of(st.none(), st.tuples(st.integers(0, 31), st.integers(0, 255))),
})


@settings(max_examples=2000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenario)
def test_random_commands_never_escape_the_device(s):
    m = machine()
    m.out(Q.QXL_IO_RESET)
    if s["compat"]:
        m.set_mask(0x3F)
        m.out(Q.QXL_IO_SET_MODE, 1)
    else:
        m.native()
    rng = np.random.default_rng(s["random"].getrandbits(64))
    b = Builder(rng, m.arena, s["compat"], m)  # type: ignore[attr-defined]
    pushes = [("cmd_ring", *b.display()) for _ in range(s["display"])]
    pushes += [("cursor_ring", *b.cursor()) for _ in range(s["cursor"])]
    for _ in range(s["corrupt"]):
        b.mem[rng.integers(0, max(b.top, 1))] = rng.integers(0, 256)
    m.write(m.arena, b.mem.tobytes())  # type: ignore[attr-defined]
    _trap.records.clear()
    for ring, ctype, phys in pushes:
        m.push(ring, phys, ctype, notify=False, raw_phys=True)
    if s["port"] is not None:
        m.out(*s["port"])
    for get in (m.dev.get_command, m.dev.get_cursor_command):
        for _ in range(8):
            cmd = get()
            if cmd is None:
                break
            assert isinstance(cmd, Q.Command)
            check_payload(cmd.payload)
            m.dev.release_resource(cmd.release)
    m.dev.flush_resources()
    m.dev.req_cmd_notification()
    m.dev.req_cursor_notification()
    assert not _trap.records, [r.getMessage() for r in _trap.records]

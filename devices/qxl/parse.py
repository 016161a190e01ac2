"""QXL commands -> the typed objects of :mod:`spice.qxl`.

Everything spice-server's ``red-parse-qxl.cpp`` checks is checked here,
plus what it leaves to assertions that abort the process (clip rectangle
count vs. bytes, glyph and path lengths, styled lines without a style,
unknown command types): those are guest bugs too.  Each command is read
once into a private copy; the dispatch tables below pick the parser by the
command type and, for drawables, the draw type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from devices.qxl import layout as L
from devices.qxl.images import ResourceReader, flat_struct, point, rect
from devices.qxl.memslots import GuestBug, add_offset
from spice import qxl as Q

MESSAGE_MAX = 100_000  # spice-server scans at most this far for the NUL
CURSOR_MAX_SIZE = 512  # QEMU's cursor_alloc limit (CVE-2021-4206)


def _mono_bytes(w: int, h: int) -> int:
    return (w + 7) // 8 * h


# Bytes a cursor shape needs, by SPICE_CURSOR_TYPE_* (pixels, palette, AND mask).
CURSOR_DATA_SIZE: dict[int, Callable[[int, int], int]] = {
    Q.SPICE_CURSOR_TYPE_ALPHA: lambda w, h: 4 * w * h,
    Q.SPICE_CURSOR_TYPE_MONO: lambda w, h: 2 * _mono_bytes(w, h),
    Q.SPICE_CURSOR_TYPE_COLOR4: lambda w, h: (w + 1) // 2 * h + 16 * 4 + _mono_bytes(w, h),
    Q.SPICE_CURSOR_TYPE_COLOR8: lambda w, h: w * h + 256 * 4 + _mono_bytes(w, h),
    Q.SPICE_CURSOR_TYPE_COLOR16: lambda w, h: 2 * w * h + _mono_bytes(w, h),
    Q.SPICE_CURSOR_TYPE_COLOR24: lambda w, h: 3 * w * h + _mono_bytes(w, h),
    Q.SPICE_CURSOR_TYPE_COLOR32: lambda w, h: 4 * w * h + _mono_bytes(w, h),
}


# The drawable header and the COPY/BLEND union are read with one struct call
# each: every draw has the one, and most frames on a busy screen are the other.
_HEAD, _H = flat_struct(L.DRAWABLE_HEAD)
_H_SURFACE, _H_EFFECT, _H_TYPE, _H_SELF = (_H[n] for n in ("surface_id", "effect", "type",
                                                          "self_bitmap"))
_H_SELF_AREA, _H_BBOX, _H_CLIP_TYPE, _H_CLIP_DATA = (
    _H[n] for n in ("self_bitmap_area", "bbox", "clip.type", "clip.data"))
_H_MM_TIME, _H_DEPS, _H_DEP_RECTS = _H["mm_time"], _H["surfaces_dest"], _H["surfaces_rects"]
_COPY = flat_struct(L.COPY)[0]
_GLYPH = flat_struct(L.RASTER_GLYPH_HEAD)[0]
_UNION_AT = L.DRAWABLE_HEAD.itemsize
_COPY_TYPES = (Q.QXL_DRAW_COPY, Q.QXL_DRAW_BLEND)
_ZEROS = (0,) * 12
_NO_RECT = Q.Rect(0, 0, 0, 0)
# A Rect from a sequence of four ints without the Python-level __new__ a
# NamedTuple call goes through: the rectangles of every drawable are built so.
_rect = functools.partial(tuple.__new__, Q.Rect)
_NO_DEP_RECTS = (_NO_RECT,) * 3


class CommandParser(ResourceReader):
    """Parses one command; raises GuestBug on anything malformed."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._payloads: dict[int, Callable[[np.void, int], Q.DrawPayload]] = {
            Q.QXL_DRAW_NOP: lambda u, f: None,
            Q.QXL_DRAW_FILL: self._fill,
            Q.QXL_DRAW_OPAQUE: self._opaque,
            Q.QXL_DRAW_COPY: lambda u, f: self._copy(u, 0, f),
            Q.QXL_COPY_BITS: lambda u, f: Q.CopyBits(point(self._as(u, L.COPY_BITS)["src_pos"])),
            Q.QXL_DRAW_BLEND: lambda u, f: self._blend(u, 0, f),
            Q.QXL_DRAW_BLACKNESS: lambda u, f: Q.Blackness(self._mask_only(u, f)),
            Q.QXL_DRAW_WHITENESS: lambda u, f: Q.Whiteness(self._mask_only(u, f)),
            Q.QXL_DRAW_INVERS: lambda u, f: Q.Invers(self._mask_only(u, f)),
            Q.QXL_DRAW_ROP3: self._rop3,
            Q.QXL_DRAW_STROKE: self._stroke,
            Q.QXL_DRAW_TEXT: self._text,
            Q.QXL_DRAW_TRANSPARENT: self._transparent,
            Q.QXL_DRAW_ALPHA_BLEND: self._alpha_blend,
            Q.QXL_DRAW_COMPOSITE: self._composite,
        }

    # -- the ring entry
    def display_command(self, ctype: int, phys: int,
                        flags: int) -> tuple[Q.CommandPayload, tuple[np.ndarray, int]]:
        """Payload and the location of its QXLReleaseInfo."""
        if ctype == Q.QXL_CMD_DRAW:
            return self.drawable(phys, flags)
        release = self.slots.translate(phys, 8)
        if ctype == Q.QXL_CMD_SURFACE:
            return self.surface_cmd(phys), release
        if ctype == Q.QXL_CMD_UPDATE:
            return self.update_cmd(phys), release
        if ctype == Q.QXL_CMD_MESSAGE:
            return self.message(phys), release
        raise GuestBug(f"display ring: command type {ctype} at {phys:#x}")

    def cursor_command(self, ctype: int, phys: int) -> tuple[Q.CursorCmd, tuple[np.ndarray, int]]:
        if ctype != Q.QXL_CMD_CURSOR:
            raise GuestBug(f"cursor ring: command type {ctype} at {phys:#x}")
        release = self.slots.translate(phys, 8)
        return self.cursor_cmd(phys), release

    # -- drawables
    def drawable(self, phys: int, flags: int) -> tuple[Q.Drawable, tuple[np.ndarray, int]]:
        """The drawable at ``phys`` and where its QXLReleaseInfo lies (its
        first field, inside the one translation of the whole structure)."""
        if flags & Q.QXL_COMMAND_FLAG_COMPAT:
            return self._compat_drawable(phys, flags), self.slots.translate(phys, 8)
        array, offset = self.slots.translate(phys, L.DRAWABLE_SIZE)
        h = _HEAD.unpack_from(array, offset)  # every field read once, as plain ints
        dtype = h[_H_TYPE]
        surface_id = h[_H_SURFACE]
        if not 0 <= surface_id < self.n_surfaces:
            self.surface_id(surface_id, "drawable")  # raises
        deps = h[_H_DEPS:_H_DEPS + 3]
        if deps != Q.NO_DEPS:
            for dep in deps:
                if dep != -1:
                    self.surface_id(dep, "drawable dependency")
        # (the usual draw -- no clip, a COPY -- is parsed with as few calls
        # as it can: this runs for every command)
        clip = (None if h[_H_CLIP_TYPE] == Q.SPICE_CLIP_TYPE_NONE
                else self.clip_of(h[_H_CLIP_TYPE], h[_H_CLIP_DATA]))
        union_at = offset + _UNION_AT
        if dtype == Q.QXL_DRAW_COPY:
            payload: Q.DrawPayload = Q.Copy(*self._copy_like(array, union_at, flags, "copy"))
        elif dtype == Q.QXL_DRAW_BLEND:
            payload = self._blend(array, union_at, flags)
        else:
            payload = self._payload(dtype, array[union_at:offset + L.DRAWABLE_SIZE].copy(),
                                    flags)
        # spice-server resets self_bitmap for COPY and BLEND: some drivers set it wrongly
        self_bitmap = 0 if dtype in _COPY_TYPES else h[_H_SELF]
        # most draws have no self bitmap and no dependencies: their all-zero
        # rectangles are shared constants rather than five new tuples
        area = h[_H_SELF_AREA:_H_SELF_AREA + 4]
        r = h[_H_DEP_RECTS:_H_DEP_RECTS + 12]
        return Q.Drawable(
            surface_id=surface_id, effect=h[_H_EFFECT], type=dtype, self_bitmap=self_bitmap,
            self_bitmap_area=_NO_RECT if area == _ZEROS[:4] else _rect(area),
            bbox=_rect(h[_H_BBOX:_H_BBOX + 4]), clip=clip, mm_time=h[_H_MM_TIME],
            surfaces_dest=deps,  # type: ignore[arg-type]
            surfaces_rects=_NO_DEP_RECTS if r == _ZEROS else (
                _rect(r[:4]), _rect(r[4:8]), _rect(r[8:])),
            u=payload), (array, offset)

    def _compat_drawable(self, phys: int, flags: int) -> Q.Drawable:
        raw = self.slots.copy(phys, L.COMPAT_DRAWABLE_SIZE)
        head = raw[:L.COMPAT_DRAWABLE_HEAD.itemsize].view(L.COMPAT_DRAWABLE_HEAD)[0]
        union = raw[L.COMPAT_DRAWABLE_HEAD.itemsize:]
        dtype = int(head["type"])
        if dtype == Q.QXL_DRAW_COMPOSITE:
            raise GuestBug("compat drawable: composite does not exist in the compat layout")
        clip = self.clip(head["clip"])
        if dtype == Q.QXL_DRAW_ALPHA_BLEND:
            a = union[:L.COMPAT_ALPHA_BLEND.itemsize].view(L.COMPAT_ALPHA_BLEND)[0]
            payload: Q.DrawPayload = Q.AlphaBlend(
                0, int(a["alpha"]), self.source(int(a["src_bitmap"]), flags, "alpha blend"),
                rect(a["src_area"]))
        else:
            payload = self._payload(dtype, union, flags)
        bbox = rect(head["bbox"])
        deps = (-1, -1, -1)
        dep_rects = (Q.Rect(0, 0, 0, 0),) * 3
        if isinstance(payload, Q.CopyBits):
            # the compat layout has no dependency fields; the source is the primary
            src = payload.src_pos
            deps = (0, -1, -1)
            dep_rects = (Q.Rect(src.y, src.x, src.y + bbox.height, src.x + bbox.width),
                         dep_rects[1], dep_rects[2])
        self_bitmap = int(head["bitmap_offset"] != 0)
        if dtype in (Q.QXL_DRAW_COPY, Q.QXL_DRAW_BLEND):
            self_bitmap = 0
        return Q.Drawable(
            surface_id=0, effect=int(head["effect"]), type=dtype, self_bitmap=self_bitmap,
            self_bitmap_area=rect(head["bitmap_area"]), bbox=bbox, clip=clip,
            mm_time=int(head["mm_time"]), surfaces_dest=deps,  # type: ignore[arg-type]
            surfaces_rects=dep_rects, u=payload)  # type: ignore[arg-type]

    def _payload(self, dtype: int, union: np.ndarray, flags: int) -> Q.DrawPayload:
        parser = self._payloads.get(dtype)
        if parser is None:
            raise GuestBug(f"drawable: unknown draw type {dtype}")
        return parser(union, flags)

    @staticmethod
    def _as(union: np.ndarray, dtype: np.dtype) -> np.void:
        return union[:dtype.itemsize].view(dtype)[0]

    def _fill(self, union: np.ndarray, flags: int) -> Q.Fill:
        u = self._as(union, L.FILL)
        return Q.Fill(self.brush(u["brush"], flags), int(u["rop_descriptor"]),
                      self.qmask(u["mask"], flags))

    def _opaque(self, union: np.ndarray, flags: int) -> Q.Opaque:
        u = self._as(union, L.OPAQUE)
        return Q.Opaque(self.source(int(u["src_bitmap"]), flags, "opaque"),
                        rect(u["src_area"]), self.brush(u["brush"], flags),
                        int(u["rop_descriptor"]), int(u["scale_mode"]),
                        self.qmask(u["mask"], flags))

    def _copy_like(self, array: np.ndarray, at: int, flags: int, what: str) -> tuple:
        """The fields of a QXLCopy (also QXLBlend) at ``array[at]``."""
        (src_phys, top, left, bottom, right, rop, scale_mode, mflags, mx, my,
         mask_phys) = _COPY.unpack_from(array, at)
        src = self.image(src_phys, flags)  # (source(), inline)
        if src is None:
            raise GuestBug(f"{what}: null source image")
        area = _rect((top, left, bottom, right))
        # spice-server: the source area must not be inverted or leave the bitmap
        if left < 0 or left > right or top < 0 or top > bottom:
            raise GuestBug(f"{what}: inverted or negative source area {area}")
        if isinstance(src, Q.BitmapImage) and (right > src.x or bottom > src.y):
            raise GuestBug(f"{what}: source area {area} outside the {src.x}x{src.y} bitmap")
        mask = self.qmask_of(mflags, mx, my, mask_phys, flags) if mask_phys else Q.NO_MASK
        return src, area, rop, scale_mode, mask

    def _copy(self, array: np.ndarray, at: int, flags: int) -> Q.Copy:
        return Q.Copy(*self._copy_like(array, at, flags, "copy"))

    def _blend(self, array: np.ndarray, at: int, flags: int) -> Q.Blend:
        return Q.Blend(*self._copy_like(array, at, flags, "blend"))

    def _mask_only(self, union: np.ndarray, flags: int) -> Q.QMask:
        return self.qmask(self._as(union, L.MASK_ONLY)["mask"], flags)

    def _rop3(self, union: np.ndarray, flags: int) -> Q.Rop3:
        u = self._as(union, L.ROP3)
        return Q.Rop3(self.source(int(u["src_bitmap"]), flags, "rop3"), rect(u["src_area"]),
                      self.brush(u["brush"], flags), int(u["rop3"]), int(u["scale_mode"]),
                      self.qmask(u["mask"], flags))

    def _transparent(self, union: np.ndarray, flags: int) -> Q.Transparent:
        u = self._as(union, L.TRANSPARENT)
        return Q.Transparent(self.source(int(u["src_bitmap"]), flags, "transparent"),
                             rect(u["src_area"]), int(u["src_color"]), int(u["true_color"]))

    def _alpha_blend(self, union: np.ndarray, flags: int) -> Q.AlphaBlend:
        u = self._as(union, L.ALPHA_BLEND)
        return Q.AlphaBlend(int(u["alpha_flags"]), int(u["alpha"]),
                            self.source(int(u["src_bitmap"]), flags, "alpha blend"),
                            rect(u["src_area"]))

    def _composite(self, union: np.ndarray, flags: int) -> Q.Composite:
        u = self._as(union, L.COMPOSITE)
        src = self.source(int(u["src"]), flags, "composite")
        mask = self.image(int(u["mask"]), flags)
        src_t = self._transform(int(u["src_transform"]))
        mask_t = self._transform(int(u["mask_transform"])) if mask is not None else None
        return Q.Composite(int(u["flags"]), src, src_t, mask, mask_t,
                           point(u["src_origin"]), point(u["mask_origin"]))

    def _transform(self, phys: int) -> Q.Transform | None:
        if not phys:
            return None
        t = self.slots.read(phys, L.TRANSFORM)
        return Q.Transform(*(int(t[n]) for n in L.TRANSFORM.names))

    def _stroke(self, union: np.ndarray, flags: int) -> Q.Stroke:
        u = self._as(union, L.STROKE)
        path = self.path(int(u["path"]))
        attr = u["attr"]
        aflags = int(attr["flags"])
        style = None
        if aflags & Q.SPICE_LINE_FLAGS_STYLED:
            nseg, style_phys = int(attr["style_nseg"]), int(attr["style"])
            if not style_phys:
                raise GuestBug("stroke: styled line without a style")
            style = self.slots.copy(style_phys, 4 * nseg).view("<i4")
        return Q.Stroke(path, Q.LineAttr(aflags, style), self.brush(u["brush"], flags),
                        int(u["fore_mode"]), int(u["back_mode"]))

    def _text(self, union: np.ndarray, flags: int) -> Q.Text:
        u = self._as(union, L.TEXT)
        return Q.Text(self.string(int(u["str"])), rect(u["back_area"]),
                      self.brush(u["fore_brush"], flags), self.brush(u["back_brush"], flags),
                      int(u["fore_mode"]), int(u["back_mode"]))

    # -- chunked structures parsed from a private copy
    def clip(self, rec: np.void) -> np.ndarray | None:
        return self.clip_of(int(rec["type"]), int(rec["data"]))

    def clip_of(self, ctype: int, phys: int) -> np.ndarray | None:
        """The clip rectangles of a QXLClip of type ``ctype`` with data ``phys``."""
        if ctype == Q.SPICE_CLIP_TYPE_NONE:
            return None
        if ctype != Q.SPICE_CLIP_TYPE_RECTS:
            raise GuestBug(f"clip: unknown type {ctype}")
        head = self.slots.read(phys, L.CLIP_RECTS)
        n = int(head["num_rects"])
        first = add_offset(phys, L.CLIP_RECTS.fields["chunk"][1])
        data = self.chunks(head["chunk"], first, 16 * n, "clip rects", copy=True)
        return data.view("<i4").reshape(n, 4)

    def path(self, phys: int) -> list[Q.PathSeg]:
        head = self.slots.read(phys, L.PATH)
        first = add_offset(phys, L.PATH.fields["chunk"][1])
        data = self.chunks(head["chunk"], first, None, "path", copy=True)
        segs = []
        pos, end = 0, data.size
        # spice-server walks while a segment header plus something follows
        while pos + L.PATH_SEG_HEAD.itemsize < end:
            sflags, count = (int(v) for v in data[pos:pos + 8].view("<u4"))
            pos += 8
            if 8 * count > end - pos:
                raise GuestBug(f"path: segment of {count} points overruns {end} bytes")
            points = data[pos:pos + 8 * count].view("<i4").reshape(count, 2)
            segs.append(Q.PathSeg(sflags, points))
            pos += 8 * count
        return segs

    def string(self, phys: int) -> Q.GlyphString:
        head = self.slots.read(phys, L.STRING)
        first = add_offset(phys, L.STRING.fields["chunk"][1])
        data = self.chunks(head["chunk"], first, int(head["data_size"]), "string", copy=True)
        sflags, length = int(head["flags"]), int(head["length"])
        if sflags & Q.SPICE_STRING_FLAGS_RASTER_A1:
            bpp = 1
        elif sflags & Q.SPICE_STRING_FLAGS_RASTER_A4:
            bpp = 4
        elif sflags & Q.SPICE_STRING_FLAGS_RASTER_A8:
            bpp = 8
        else:
            raise GuestBug(f"string: no raster depth in flags {sflags:#x}")
        glyphs = []
        pos, end = 0, data.size
        hsize = L.RASTER_GLYPH_HEAD.itemsize
        while pos < end:
            if pos + hsize > end:
                raise GuestBug("string: glyph header overruns the string data")
            rx, ry, ox, oy, w, h = _GLYPH.unpack_from(data, pos)
            pos += hsize
            size = h * ((w * bpp + 7) // 8)
            if size > end - pos:
                raise GuestBug(f"string: {w}x{h} glyph overruns the string data")
            glyphs.append(Q.RasterGlyph(Q.Point(rx, ry), Q.Point(ox, oy), w, h,
                                        data[pos:pos + size]))
            pos += size
        if len(glyphs) != length:
            raise GuestBug(f"string: {len(glyphs)} glyphs, length says {length}")
        return Q.GlyphString(sflags, glyphs)

    # -- other display commands
    def surface_cmd(self, phys: int) -> Q.SurfaceCmd:
        c = self.slots.read(phys, L.SURFACE_CMD)
        sid = self.surface_id(int(c["surface_id"]), "surface command")
        ctype, cflags = int(c["type"]), int(c["flags"])
        if ctype == Q.QXL_SURFACE_CMD_DESTROY:
            return Q.SurfaceCmd(sid, ctype, cflags)
        if ctype != Q.QXL_SURFACE_CMD_CREATE:
            raise GuestBug(f"surface command: unknown type {ctype}")
        s = c["surface_create"]
        fmt, width, height, stride = (int(s["format"]), int(s["width"]), int(s["height"]),
                                      int(s["stride"]))
        if stride % 4:
            raise GuestBug(f"surface {sid}: stride {stride} is not a multiple of 4")
        size = validate_surface(width, height, stride, fmt, f"surface {sid}")
        data = self.slots.view(int(s["data"]), size)
        return Q.SurfaceCmd(sid, ctype, cflags, fmt, width, height, stride, data)

    def update_cmd(self, phys: int) -> Q.UpdateCmd:
        c = self.slots.read(phys, L.UPDATE_CMD)
        return Q.UpdateCmd(rect(c["area"]), int(c["update_id"]),
                           self.surface_id(int(c["surface_id"]), "update command"))

    def message(self, phys: int) -> Q.Message:
        text_phys = add_offset(phys, L.MESSAGE_HEAD.itemsize)
        self.slots.translate(text_phys, 0)
        n = min(self.slots.available(text_phys), MESSAGE_MAX)
        data = self.slots.copy(text_phys, n)
        nul = np.flatnonzero(data == 0)
        if not nul.size:
            raise GuestBug(f"message at {phys:#x}: no NUL in {n} bytes")
        return Q.Message(data[:nul[0]].tobytes())

    # -- cursor
    def cursor_cmd(self, phys: int) -> Q.CursorCmd:
        c = self.slots.read(phys, L.CURSOR_CMD)
        ctype = int(c["type"])
        if ctype == Q.QXL_CURSOR_SET:
            return Q.CursorCmd(ctype, position=point(c["set_position"]),
                               visible=bool(c["set_visible"]),
                               shape=self.cursor(int(c["set_shape"])))
        if ctype == Q.QXL_CURSOR_MOVE:
            return Q.CursorCmd(ctype, position=point(c["position"]))
        if ctype == Q.QXL_CURSOR_HIDE:
            return Q.CursorCmd(ctype)
        if ctype == Q.QXL_CURSOR_TRAIL:
            return Q.CursorCmd(ctype, trail_length=int(c["trail_length"]),
                               trail_frequency=int(c["trail_frequency"]))
        raise GuestBug(f"cursor command: unknown type {ctype}")

    def cursor(self, phys: int) -> Q.Cursor:
        c = self.slots.read(phys, L.CURSOR)
        h = c["header"]
        ctype, width, height = int(h["type"]), int(h["width"]), int(h["height"])
        need = CURSOR_DATA_SIZE.get(ctype)
        if need is None:
            raise GuestBug(f"cursor: unknown shape type {ctype}")
        if width > CURSOR_MAX_SIZE or height > CURSOR_MAX_SIZE:
            raise GuestBug(f"cursor: {width}x{height} is larger than "
                           f"{CURSOR_MAX_SIZE}x{CURSOR_MAX_SIZE}")
        first = add_offset(phys, L.CURSOR.fields["chunk"][1])
        data = self.chunks(c["chunk"], first, None, "cursor", copy=True)
        size = min(int(c["data_size"]), data.size)
        if size < need(width, height):
            raise GuestBug(f"cursor: {width}x{height} type {ctype} needs "
                           f"{need(width, height)} bytes, has {size}")
        return Q.Cursor(int(h["unique"]), ctype, width, height, int(h["hot_spot_x"]),
                        int(h["hot_spot_y"]), data[:size])

    # -- monitors config (QXL_IO_MONITORS_CONFIG_ASYNC)
    def monitors_config(self, phys: int, limit: int) -> Q.MonitorsConfig | None:
        """None when spice-server would ignore it (empty, or count >
        max_allowed); the count is read once (CVE-2015-3247)."""
        head = self.slots.read(phys, L.MONITORS_CONFIG_HEAD)
        self.slots.translate(phys, L.MONITORS_CONFIG_HEAD.itemsize + L.HEAD.itemsize)
        count, max_allowed = int(head["count"]), int(head["max_allowed"])
        if count == 0 or count > max_allowed:
            return None
        heads = self.slots.copy(add_offset(phys, L.MONITORS_CONFIG_HEAD.itemsize),
                                count * L.HEAD.itemsize).view(L.HEAD)
        heads = heads[:min(count, limit)]
        return Q.MonitorsConfig(
            min(max_allowed, limit),
            [Q.Head(*(int(hd[n]) for n in L.HEAD.names)) for hd in heads])


def validate_surface(width: int, height: int, stride: int, fmt: int, what: str) -> int:
    """spice-server's red_validate_surface; returns the byte size."""
    bpp = Q.SURFACE_FMT_BPP.get(fmt)
    if bpp is None:
        raise GuestBug(f"{what}: unknown surface format {fmt}")
    if stride == -(1 << 31) or (width * bpp + 7) // 8 > abs(stride):
        raise GuestBug(f"{what}: stride {stride} too small for {width} pixels of {bpp} bpp")
    size = height * abs(stride)
    if size > L.MAX_DATA_CHUNK:
        raise GuestBug(f"{what}: {height} x {abs(stride)} bytes is too large")
    return size

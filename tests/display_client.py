"""The test client's display channel: messages decoded back into
:mod:`spice.qxl` drawables, images through the real decoders, and
client-side surfaces drawn by a small reference renderer (or by the canvas).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field

import numpy as np
from spice_client import Channel

from spice import qxl
from spice.codecs import (
    GlzDecoderWindow,
    glz_decode,
    lz4_decode,
    lz_decode,
    quic_decode,
    zlib_glz_decode,
)
from spice.codecs.quic import QUIC_IMAGE_TYPE_RGBA
from spice.protocol import Msg, MsgDisplay
from spice.wire import ProtocolError, Reader


def read_rect(r: Reader) -> qxl.Rect:
    return qxl.Rect(r.i32(), r.i32(), r.i32(), r.i32())


def read_point(r: Reader) -> qxl.Point:
    return qxl.Point(r.i32(), r.i32())


@dataclass
class ClientSurface:
    id: int
    width: int
    height: int
    format: int
    flags: int
    data: np.ndarray  # flat uint8, top-down rows, stride = width * bpp

    @property
    def stride(self) -> int:
        return self.width * qxl.SURFACE_FMT_BPP[self.format] // 8

    def rows(self) -> np.ndarray:
        return self.data.reshape(self.height, self.stride)

    def pixels32(self) -> np.ndarray:
        return self.data.view("<u4").reshape(self.height, self.width)


@dataclass
class DisplayClient:
    """Decodes a display channel and keeps client-side surfaces."""

    ch: Channel
    surfaces: dict[int, ClientSurface] = field(default_factory=dict)
    cache: dict[int, qxl.Image] = field(default_factory=dict)
    palettes: dict[int, qxl.Palette] = field(default_factory=dict)
    messages: list[tuple[int, object]] = field(default_factory=list)
    marks: int = 0
    monitors: object = None
    use_canvas: bool = False
    decode_draws: bool = True  # False: count draw messages only (foreign servers)
    glz_window: GlzDecoderWindow = field(default_factory=GlzDecoderWindow)
    streams: dict[int, dict] = field(default_factory=dict)  # id -> STREAM_CREATE fields
    image_types: list[int] = field(default_factory=list)  # wire type of every image read

    def pump(self, until: int | None = None, timeout: float = 5.0, count: int | None = None):
        """Read and apply messages until one of type ``until`` (returned) or
        ``count`` messages or a quiet ``timeout``."""
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if until is None:
                    return None
                raise TimeoutError(f"display message {until} did not arrive")
            try:
                t, body = self.ch.recv(left)
            except TimeoutError:
                if until is None:
                    return None
                raise
            decoded = self.apply(t, body)
            n += 1
            if until is not None and t == until:
                return decoded
            if count is not None and n >= count:
                return decoded

    def apply(self, t: int, body: bytes) -> object:
        r = Reader(body)
        decoded: object = None
        if t == MsgDisplay.SURFACE_CREATE:
            sid, w, h, fmt, flags = struct.unpack_from("<5I", body)
            bpp = qxl.SURFACE_FMT_BPP[fmt] // 8
            self.surfaces[sid] = ClientSurface(sid, w, h, fmt, flags,
                                               np.zeros(w * h * bpp, np.uint8))
            decoded = (sid, w, h, fmt, flags)
        elif t == MsgDisplay.SURFACE_DESTROY:
            (sid,) = struct.unpack_from("<I", body)
            self.surfaces.pop(sid, None)
            decoded = sid
        elif t == MsgDisplay.MARK:
            self.marks += 1
        elif t == MsgDisplay.MONITORS_CONFIG:
            count, max_allowed = struct.unpack_from("<HH", body)
            heads = [struct.unpack_from("<7I", body, 4 + 28 * i) for i in range(count)]
            self.monitors = decoded = (max_allowed, heads)
        elif t == MsgDisplay.INVAL_LIST:
            decoded = self._inval_list(r)
        elif t == Msg.LIST:
            (n,) = struct.unpack_from("<H", body)
            offs = struct.unpack_from(f"<{n}I", body, 2)
            subs = []
            for off in offs:
                st, size = struct.unpack_from("<HI", body, off)
                sub = body[off + 6:off + 6 + size]
                subs.append((st, sub))
            for st, sub in sorted(subs, key=lambda x: x[0] != Msg.WAIT_FOR_CHANNELS):
                self.apply(st, sub)
            decoded = subs
        elif t == MsgDisplay.INVAL_ALL_PALETTES:
            self.palettes.clear()
        elif t == MsgDisplay.INVAL_PALETTE:
            self.palettes.pop(r.u64(), None)
        elif t == MsgDisplay.INVAL_ALL_PIXMAPS:
            self.cache.clear()
        elif t in _DRAW_TYPES and self.decode_draws:
            decoded = self.decode_draw(t, body)
            self.render(decoded)
        elif t in _STREAM_TYPES:
            decoded = self._stream_message(t, r)
        self.messages.append((t, decoded))
        return decoded

    def _inval_list(self, r: Reader) -> list[int]:
        n = r.u16()
        ids = []
        for _ in range(n):
            r.u8()
            ids.append(r.u64())
        for i in ids:
            self.cache.pop(i, None)
        return ids

    # -- images ------------------------------------------------------------------------

    def read_image(self, r: Reader, off: int) -> qxl.Image | None:
        if off == 0:
            return None
        ir = r.at(off)
        image_id, itype, iflags, w, h = ir.u64(), ir.u8(), ir.u8(), ir.u32(), ir.u32()
        desc = qxl.ImageDescriptor(image_id, itype, iflags, w, h)
        self.image_types.append(itype)
        if itype in (qxl.SPICE_IMAGE_TYPE_FROM_CACHE, qxl.SPICE_IMAGE_TYPE_FROM_CACHE_LOSSLESS):
            if image_id not in self.cache:
                raise ProtocolError(f"image {image_id:#x} is not in the client cache")
            return self.cache[image_id]
        if itype == qxl.SPICE_IMAGE_TYPE_SURFACE:
            img: qxl.Image = qxl.SurfaceImage(desc, ir.u32())
        elif itype == qxl.SPICE_IMAGE_TYPE_BITMAP:
            fmt, bflags, x, y, stride = ir.u8(), ir.u8(), ir.u32(), ir.u32(), ir.u32()
            palette = None
            if bflags & qxl.SPICE_BITMAP_FLAGS_PAL_FROM_CACHE:
                palette = self.palettes[ir.u64()]
            else:
                pal_off = ir.u32()
                if pal_off:
                    pr = r.at(pal_off)
                    unique, n = pr.u64(), pr.u16()
                    ents = np.frombuffer(pr.bytes(4 * n), "<u4").astype(np.uint32)
                    palette = qxl.Palette(unique, ents)
                    if bflags & qxl.SPICE_BITMAP_FLAGS_PAL_CACHE_ME:
                        self.palettes[unique] = palette
            data = np.frombuffer(ir.bytes(y * stride), np.uint8)
            qflags = qxl.QXL_BITMAP_TOP_DOWN if bflags & qxl.SPICE_BITMAP_FLAGS_TOP_DOWN else 0
            img = qxl.BitmapImage(desc, fmt, qflags, x, y, stride, palette, data)
        elif itype == qxl.SPICE_IMAGE_TYPE_QUIC:
            q = quic_decode(ir.bytes(ir.u32()), to_32bit=True, expected_size=(w, h))
            fmt = (qxl.SPICE_BITMAP_FMT_RGBA if q.qtype == QUIC_IMAGE_TYPE_RGBA
                   else qxl.SPICE_BITMAP_FMT_32BIT)
            img = _decoded_bitmap(desc, fmt, q.pixels.reshape(h, w * 4), True)
        elif itype == qxl.SPICE_IMAGE_TYPE_LZ_RGB:
            d = lz_decode(ir.bytes(ir.u32()))
            img = _decoded_bitmap(desc, _LZ_FORMATS[d.lz_type], d.pixels, d.top_down)
        elif itype == qxl.SPICE_IMAGE_TYPE_LZ_PLT:
            pflags, size = ir.u8(), ir.u32()
            if pflags & qxl.SPICE_BITMAP_FLAGS_PAL_FROM_CACHE:
                palette = self.palettes[ir.u64()]
            else:
                pr = r.at(ir.u32())
                unique, n = pr.u64(), pr.u16()
                palette = qxl.Palette(unique, np.frombuffer(pr.bytes(4 * n), "<u4").copy())
                if pflags & qxl.SPICE_BITMAP_FLAGS_PAL_CACHE_ME:
                    self.palettes[unique] = palette
            d = lz_decode(ir.bytes(size))
            img = _decoded_bitmap(desc, _LZ_FORMATS[d.lz_type], d.pixels, d.top_down, palette)
        elif itype in (qxl.SPICE_IMAGE_TYPE_GLZ_RGB, qxl.SPICE_IMAGE_TYPE_ZLIB_GLZ_RGB):
            if itype == qxl.SPICE_IMAGE_TYPE_GLZ_RGB:
                g = glz_decode(self.glz_window, ir.bytes(ir.u32()))
            else:
                glz_size, size = ir.u32(), ir.u32()
                g = zlib_glz_decode(self.glz_window, ir.bytes(size), glz_size)
            fmt = qxl.SPICE_BITMAP_FMT_RGBA if g.lz_type == 9 else qxl.SPICE_BITMAP_FMT_32BIT
            img = _decoded_bitmap(desc, fmt, g.pixels, g.top_down)
        elif itype == qxl.SPICE_IMAGE_TYPE_LZ4:
            d4 = lz4_decode(ir.bytes(ir.u32()), w, h)
            img = _decoded_bitmap(desc, d4.fmt, d4.pixels, d4.top_down)
        elif itype == qxl.SPICE_IMAGE_TYPE_JPEG:
            rgb = decode_jpeg(ir.bytes(ir.u32()))
            img = _decoded_bitmap(desc, qxl.SPICE_BITMAP_FMT_32BIT, _bgrx(rgb), True)
        elif itype == qxl.SPICE_IMAGE_TYPE_JPEG_ALPHA:
            jflags, jpeg_size, size = ir.u8(), ir.u32(), ir.u32()
            data = ir.bytes(size)
            px = _bgrx(decode_jpeg(data[:jpeg_size]))
            alpha = lz_decode(data[jpeg_size:])
            a = alpha.pixels.reshape(h, w * 4)[:, 3::4]
            px.reshape(h, w, 4)[:, :, 3] = a if alpha.top_down else a[::-1]
            img = _decoded_bitmap(desc, qxl.SPICE_BITMAP_FMT_RGBA, px, True)
            del jflags
        else:
            raise ProtocolError(f"image type {itype} not decoded by the test client")
        if iflags & qxl.SPICE_IMAGE_FLAGS_CACHE_ME:
            self.cache[image_id] = img
        return img

    def _stream_message(self, t: int, r: Reader) -> object:
        """Streams: kept, and their frames drawn on the primary (MJPEG via djpeg)."""
        if t == MsgDisplay.STREAM_CREATE:
            info = dict(surface_id=r.u32(), id=r.u32(), flags=r.u8(), codec=r.u8(), stamp=r.u64(),
                        stream_w=r.u32(), stream_h=r.u32(), src_w=r.u32(), src_h=r.u32(),
                        dest=read_rect(r), clip=self._read_clip(r), frames=0)
            self.streams[info["id"]] = info
            return info
        if t in (MsgDisplay.STREAM_DATA, MsgDisplay.STREAM_DATA_SIZED):
            sid, mm = r.u32(), r.u32()
            info = self.streams[sid]
            if t == MsgDisplay.STREAM_DATA_SIZED:
                w, h, dest = r.u32(), r.u32(), read_rect(r)
            else:
                w, h, dest = info["src_w"], info["src_h"], info["dest"]
            frame = decode_jpeg(r.bytes(r.u32()))
            assert frame.shape[:2] == (h, w), "frame of the wrong size"
            if not info["flags"] & 1:
                frame = frame[::-1]
            px = _bgrx(frame).view("<u4").reshape(h, w) & 0xFFFFFF
            info["frames"] += 1
            surface = self.surfaces[info["surface_id"]].pixels32()
            if dest.height == h and dest.width == w:
                for ct, cl, cb, cr in self._stream_clip(info, dest):
                    surface[ct:cb, cl:cr] = px[ct - dest.top:cb - dest.top,
                                               cl - dest.left:cr - dest.left]
            return (sid, mm, w, h)
        if t == MsgDisplay.STREAM_CLIP:
            sid = r.u32()
            self.streams[sid]["clip"] = self._read_clip(r)
            return sid
        if t == MsgDisplay.STREAM_DESTROY:
            return self.streams.pop(r.u32(), None)
        if t == MsgDisplay.STREAM_DESTROY_ALL:
            self.streams.clear()
            return None
        if t == MsgDisplay.STREAM_ACTIVATE_REPORT:
            return dict(stream_id=r.u32(), unique_id=r.u32(), window=r.u32(), timeout=r.u32())
        return None

    @staticmethod
    def _read_clip(r: Reader) -> list[tuple[int, int, int, int]] | None:
        if r.u8() != qxl.SPICE_CLIP_TYPE_RECTS:
            return None
        return [tuple(read_rect(r)) for _ in range(r.u32())]

    @staticmethod
    def _stream_clip(info: dict, dest: qxl.Rect) -> list[tuple[int, int, int, int]]:
        rects = [tuple(dest)] if info["clip"] is None else info["clip"]
        out = []
        for t, left, b, rt in rects:
            t, left = max(t, dest.top), max(left, dest.left)
            b, rt = min(b, dest.bottom), min(rt, dest.right)
            if t < b and left < rt:
                out.append((t, left, b, rt))
        return out

    def read_brush(self, r: Reader) -> qxl.Brush:
        btype = r.u8()
        if btype == qxl.SPICE_BRUSH_TYPE_SOLID:
            return qxl.Brush(btype, color=r.u32())
        if btype == qxl.SPICE_BRUSH_TYPE_PATTERN:
            off = r.u32()
            pos = read_point(r)
            return qxl.Brush(btype, pattern=self.read_image(r, off), pos=pos)
        return qxl.Brush(btype)

    def read_mask(self, r: Reader) -> qxl.QMask:
        flags = r.u8()
        pos = read_point(r)
        off = r.u32()
        return qxl.QMask(flags, pos, self.read_image(r, off))

    def decode_draw(self, t: int, body: bytes) -> qxl.Drawable:
        r = Reader(body)
        sid = r.u32()
        bbox = read_rect(r)
        clip = None
        if r.u8() == qxl.SPICE_CLIP_TYPE_RECTS:
            n = r.u32()
            clip = np.array([tuple(read_rect(r)) for _ in range(n)], np.int32).reshape(n, 4)
        qtype = _QXL_TYPE[t]
        u: object
        if t == MsgDisplay.DRAW_FILL:
            brush = self.read_brush(r)
            u = qxl.Fill(brush, r.u16(), self.read_mask(r))
        elif t == MsgDisplay.DRAW_OPAQUE:
            src = r.u32()
            area = read_rect(r)
            brush = self.read_brush(r)
            rop, scale = r.u16(), r.u8()
            u = qxl.Opaque(self.read_image(r, src), area, brush, rop, scale, self.read_mask(r))
        elif t in (MsgDisplay.DRAW_COPY, MsgDisplay.DRAW_BLEND):
            src = r.u32()
            area = read_rect(r)
            rop, scale = r.u16(), r.u8()
            cls = qxl.Copy if t == MsgDisplay.DRAW_COPY else qxl.Blend
            u = cls(self.read_image(r, src), area, rop, scale, self.read_mask(r))
        elif t == MsgDisplay.DRAW_BLACKNESS:
            u = qxl.Blackness(self.read_mask(r))
        elif t == MsgDisplay.DRAW_WHITENESS:
            u = qxl.Whiteness(self.read_mask(r))
        elif t == MsgDisplay.DRAW_INVERS:
            u = qxl.Invers(self.read_mask(r))
        elif t == MsgDisplay.DRAW_ROP3:
            src = r.u32()
            area = read_rect(r)
            brush = self.read_brush(r)
            rop3, scale = r.u8(), r.u8()
            u = qxl.Rop3(self.read_image(r, src), area, brush, rop3, scale, self.read_mask(r))
        elif t == MsgDisplay.DRAW_STROKE:
            pr = r.at(r.u32())
            segs = []
            for _ in range(pr.u32()):
                flags, count = pr.u8(), pr.u32()
                pts = np.array([(pr.i32(), pr.i32()) for _ in range(count)], np.int32)
                segs.append(qxl.PathSeg(flags, pts.reshape(count, 2)))
            aflags = r.u8()
            style = None
            if aflags & qxl.SPICE_LINE_FLAGS_STYLED:
                nseg = r.u8()
                soff = r.u32()
                sr = r.at(soff) if nseg else None
                style = np.array([sr.i32() for _ in range(nseg)], np.int32) if nseg else None
            brush = self.read_brush(r)
            u = qxl.Stroke(segs, qxl.LineAttr(aflags, style), brush, r.u16(), r.u16())
        elif t == MsgDisplay.DRAW_TEXT:
            sr = r.at(r.u32())
            length, sflags = sr.u16(), sr.u8()
            bpp = 1 if sflags & 1 else 4 if sflags & 2 else 8
            glyphs = []
            for _ in range(length):
                rp, go = read_point(sr), read_point(sr)
                gw, gh = sr.u16(), sr.u16()
                n = (gw * bpp + 7) // 8 * gh
                glyphs.append(qxl.RasterGlyph(rp, go, gw, gh, np.frombuffer(sr.bytes(n), np.uint8)))
            back = read_rect(r)
            fore_b, back_b = self.read_brush(r), self.read_brush(r)
            u = qxl.Text(qxl.GlyphString(sflags, glyphs), back, fore_b, back_b, r.u16(), r.u16())
        elif t == MsgDisplay.DRAW_TRANSPARENT:
            src = r.u32()
            area = read_rect(r)
            u = qxl.Transparent(self.read_image(r, src), area, r.u32(), r.u32())
        elif t == MsgDisplay.DRAW_ALPHA_BLEND:
            aflags, alpha, src = r.u8(), r.u8(), r.u32()
            u = qxl.AlphaBlend(aflags, alpha, self.read_image(r, src), read_rect(r))
        elif t == MsgDisplay.COPY_BITS:
            u = qxl.CopyBits(read_point(r))
        elif t == MsgDisplay.DRAW_COMPOSITE:
            flags = r.u32()
            src = r.u32()
            mask = r.u32() if flags & (1 << 19) else 0

            def tr():
                return qxl.Transform(*(r.u32() for _ in range(6)))
            st = tr() if flags & (1 << 20) else None
            mt = tr() if flags & (1 << 21) else None
            so = qxl.Point(r.i16(), r.i16())
            mo = qxl.Point(r.i16(), r.i16())
            u = qxl.Composite(flags & 0x7FFFF, self.read_image(r, src), st,
                              self.read_image(r, mask), mt, so, mo)
        else:
            raise ProtocolError(f"draw {t} not decoded")
        return qxl.Drawable(sid, qxl.QXL_EFFECT_OPAQUE, qtype, 0, qxl.Rect(0, 0, 0, 0), bbox,
                            clip, 0, (-1, -1, -1), (qxl.Rect(0, 0, 0, 0),) * 3, u)

    # -- rendering ------------------------------------------------------------------------

    def render(self, d: qxl.Drawable) -> None:
        s = self.surfaces.get(d.surface_id)
        if s is None:
            raise ProtocolError(f"draw on unknown surface {d.surface_id}")
        if self.use_canvas:
            self._render_canvas(d)
            return
        reference_render(s, d, self.surfaces)

    def _render_canvas(self, d: qxl.Drawable) -> None:
        from spice.canvas import SurfaceCanvas
        canvases = {}

        def get(sid: int):
            cs = self.surfaces.get(sid)
            if cs is None:
                return None
            if sid not in canvases:
                canvases[sid] = SurfaceCanvas(cs.width, cs.height, cs.stride, cs.format, cs.data)
            return canvases[sid]
        get(d.surface_id).draw(d, get)


def clip_rects(d: qxl.Drawable) -> list[tuple[int, int, int, int]]:
    b = d.bbox
    rects = [tuple(b)] if d.clip is None else [tuple(int(v) for v in c) for c in d.clip]
    out = []
    for t, left, bt, rt in rects:
        t, left, bt, rt = max(t, b.top), max(left, b.left), min(bt, b.bottom), min(rt, b.right)
        if t < bt and left < rt:
            out.append((t, left, bt, rt))
    return out


def bitmap_rows32(img: qxl.BitmapImage) -> np.ndarray:
    """Top-down (y, x) uint32 xRGB pixels of a 32/24-bit or 8-bit palette bitmap."""
    rows = img.data[: img.y * img.stride].reshape(img.y, img.stride)
    if not img.flags & qxl.QXL_BITMAP_TOP_DOWN:
        rows = rows[::-1]
    if img.format in (qxl.SPICE_BITMAP_FMT_32BIT, qxl.SPICE_BITMAP_FMT_RGBA):
        return np.ascontiguousarray(rows[:, : img.x * 4]).view("<u4").reshape(img.y, img.x)
    if img.format == qxl.SPICE_BITMAP_FMT_24BIT:
        px = rows[:, : img.x * 3].reshape(img.y, img.x, 3).astype(np.uint32)
        return px[:, :, 0] | (px[:, :, 1] << 8) | (px[:, :, 2] << 16)
    if img.format == qxl.SPICE_BITMAP_FMT_8BIT and img.palette is not None:
        return img.palette.ents[rows[:, : img.x]]
    raise ProtocolError(f"reference renderer: bitmap format {img.format}")


def reference_render(s: ClientSurface, d: qxl.Drawable, surfaces: dict) -> None:
    """The test client's own renderer for the common 32-bit cases: solid fills
    and copies with ROP PUT, COPY_BITS, clip rectangles."""
    px = s.pixels32()
    u = d.u
    if d.type == qxl.QXL_DRAW_FILL and u.brush.type == qxl.SPICE_BRUSH_TYPE_SOLID:
        for t, left, b, r in clip_rects(d):
            px[t:b, left:r] = u.brush.color
    elif d.type == qxl.QXL_DRAW_COPY and u.mask.bitmap is None:
        img = u.src_bitmap
        if isinstance(img, qxl.SurfaceImage):
            src = surfaces[img.surface_id].pixels32().copy()
        else:
            src = bitmap_rows32(img)
        a = u.src_area
        for t, left, b, r in clip_rects(d):
            sy = a.top + (t - d.bbox.top)
            sx = a.left + (left - d.bbox.left)
            px[t:b, left:r] = src[sy:sy + (b - t), sx:sx + (r - left)]
    elif d.type == qxl.QXL_COPY_BITS:
        src = px.copy()
        dx, dy = d.bbox.left - u.src_pos.x, d.bbox.top - u.src_pos.y
        for t, left, b, r in clip_rects(d):
            px[t:b, left:r] = src[t - dy:b - dy, left - dx:r - dx]
    # other draw types are decoded but only rendered with use_canvas=True


_DRAW_TYPES = {
    MsgDisplay.DRAW_FILL, MsgDisplay.DRAW_OPAQUE, MsgDisplay.DRAW_COPY, MsgDisplay.DRAW_BLEND,
    MsgDisplay.DRAW_BLACKNESS, MsgDisplay.DRAW_WHITENESS, MsgDisplay.DRAW_INVERS,
    MsgDisplay.DRAW_ROP3, MsgDisplay.DRAW_STROKE, MsgDisplay.DRAW_TEXT,
    MsgDisplay.DRAW_TRANSPARENT, MsgDisplay.DRAW_ALPHA_BLEND, MsgDisplay.COPY_BITS,
    MsgDisplay.DRAW_COMPOSITE,
}
_QXL_TYPE = {
    MsgDisplay.DRAW_FILL: qxl.QXL_DRAW_FILL, MsgDisplay.DRAW_OPAQUE: qxl.QXL_DRAW_OPAQUE,
    MsgDisplay.DRAW_COPY: qxl.QXL_DRAW_COPY, MsgDisplay.DRAW_BLEND: qxl.QXL_DRAW_BLEND,
    MsgDisplay.DRAW_BLACKNESS: qxl.QXL_DRAW_BLACKNESS,
    MsgDisplay.DRAW_WHITENESS: qxl.QXL_DRAW_WHITENESS,
    MsgDisplay.DRAW_INVERS: qxl.QXL_DRAW_INVERS, MsgDisplay.DRAW_ROP3: qxl.QXL_DRAW_ROP3,
    MsgDisplay.DRAW_STROKE: qxl.QXL_DRAW_STROKE, MsgDisplay.DRAW_TEXT: qxl.QXL_DRAW_TEXT,
    MsgDisplay.DRAW_TRANSPARENT: qxl.QXL_DRAW_TRANSPARENT,
    MsgDisplay.DRAW_ALPHA_BLEND: qxl.QXL_DRAW_ALPHA_BLEND,
    MsgDisplay.COPY_BITS: qxl.QXL_COPY_BITS, MsgDisplay.DRAW_COMPOSITE: qxl.QXL_DRAW_COMPOSITE,
}


_STREAM_TYPES = {
    MsgDisplay.STREAM_CREATE, MsgDisplay.STREAM_DATA, MsgDisplay.STREAM_DATA_SIZED,
    MsgDisplay.STREAM_CLIP, MsgDisplay.STREAM_DESTROY, MsgDisplay.STREAM_DESTROY_ALL,
    MsgDisplay.STREAM_ACTIVATE_REPORT,
}
# LZ image type -> the bitmap format its decoded bytes are in
_LZ_FORMATS = {1: qxl.SPICE_BITMAP_FMT_1BIT_LE, 2: qxl.SPICE_BITMAP_FMT_1BIT_BE,
               3: qxl.SPICE_BITMAP_FMT_4BIT_LE, 4: qxl.SPICE_BITMAP_FMT_4BIT_BE,
               5: qxl.SPICE_BITMAP_FMT_8BIT, 6: qxl.SPICE_BITMAP_FMT_16BIT,
               7: qxl.SPICE_BITMAP_FMT_24BIT, 8: qxl.SPICE_BITMAP_FMT_32BIT,
               9: qxl.SPICE_BITMAP_FMT_RGBA, 11: qxl.SPICE_BITMAP_FMT_8BIT_A}


def _decoded_bitmap(desc: qxl.ImageDescriptor, fmt: int, rows: np.ndarray, top_down: bool,
                    palette: qxl.Palette | None = None) -> qxl.BitmapImage:
    """A decoded image as the bitmap a client draws from."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    h = desc.height
    stride = rows.size // h if h else 0
    flags = qxl.QXL_BITMAP_TOP_DOWN if top_down else 0
    return qxl.BitmapImage(desc, fmt, flags, desc.width, h, stride, palette, rows.reshape(-1))


def _bgrx(rgb: np.ndarray) -> np.ndarray:
    h, w, _ = rgb.shape
    out = np.zeros((h, w * 4), np.uint8)
    out.reshape(h, w, 4)[:, :, 0] = rgb[:, :, 2]
    out.reshape(h, w, 4)[:, :, 1] = rgb[:, :, 1]
    out.reshape(h, w, 4)[:, :, 2] = rgb[:, :, 0]
    return out


def decode_jpeg(data: bytes) -> np.ndarray:
    """(h, w, 3) RGB through libjpeg's djpeg, the decoder SPICE clients use."""
    exe = shutil.which("djpeg")
    if exe is None:
        raise RuntimeError("djpeg (Debian package libjpeg-turbo-progs) is required")
    ppm = subprocess.run([exe, "-ppm"], input=bytes(data), capture_output=True,
                         check=True).stdout
    # the header is four tokens and one whitespace byte; the pixels may start
    # with bytes that look like whitespace
    fields = ppm[:64].split(maxsplit=4)
    magic, w, h, maxval = fields[:4]
    if magic != b"P6" or maxval != b"255":
        raise ProtocolError("djpeg did not produce an 8-bit PPM")
    w, h = int(w), int(h)
    return np.frombuffer(ppm[len(ppm) - w * h * 3:], np.uint8).reshape(h, w, 3)

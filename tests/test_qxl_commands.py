"""Every QXL command type, built in device memory as a driver builds it and
pulled through the QXLInterface as the server pulls it: the typed objects
of spice.qxl, with zero-copy pixel views where the data is contiguous."""

from __future__ import annotations

import numpy as np
import pytest

from devices.qxl import layout as L
from spice import qxl as Q
from tests.qxl_harness import (
    BAR0_BASE,
    QXLMachine,
    put_bitmap_image,
    put_drawable,
    record,
    rect,
)


@pytest.fixture
def m() -> QXLMachine:
    machine = QXLMachine()
    machine.native()
    return machine


def one(m: QXLMachine, addr: int, ctype: int = Q.QXL_CMD_DRAW) -> Q.Command:
    m.push("cmd_ring", addr, ctype)
    cmds = m.pull()
    assert not m.dev.guest_bug, "unexpected guest bug"
    assert len(cmds) == 1
    return cmds[0]


def bug(m: QXLMachine, addr: int, ctype: int = Q.QXL_CMD_DRAW) -> None:
    m.push("cmd_ring", addr, ctype)
    assert m.pull() == []
    assert m.dev.guest_bug and m.int_pending & Q.QXL_INTERRUPT_ERROR


def image32(m: QXLMachine, w: int = 4, h: int = 3, **kw: object) -> tuple[int, bytes]:
    pixels = np.arange(w * h, dtype="<u4").tobytes()
    return put_bitmap_image(m, pixels, w, h, w * 4, **kw), pixels


def palette(m: QXLMachine, ents: list[int], unique: int = 77) -> int:
    return m.put(L.PALETTE_HEAD, {"unique": unique, "num_ents": len(ents)},
                 np.array(ents, "<u4").tobytes())


def copy_union(src: int, area: tuple = (0, 0, 3, 4), **extra: object) -> np.ndarray:
    fields = {"src_bitmap": src, "src_area": area, "rop_descriptor": Q.SPICE_ROPD_OP_PUT}
    fields.update(extra)
    return record(L.COPY, fields)


# -- drawables ------------------------------------------------------------------

def test_fill_solid_with_clip_rects(m):
    rects = np.array([[0, 0, 5, 5], [5, 5, 10, 10], [1, 2, 3, 4]], "<i4")
    raw = rects.tobytes()
    # the rectangles arrive split over two chunks
    second = m.chunk(raw[16:])
    clip = m.put(L.CLIP_RECTS, {"num_rects": 3, "chunk.data_size": 16,
                                "chunk.next_chunk": m.phys(second)}, raw[:16])
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 0xABCDEF,
                        "rop_descriptor": Q.SPICE_ROPD_OP_PUT})
    addr = put_drawable(m, Q.QXL_DRAW_FILL, u, bbox=rect(0, 0, 10, 10), mm_time=1234,
                        surface_id=0, clip=(Q.SPICE_CLIP_TYPE_RECTS, m.phys(clip)))
    cmd = one(m, addr)
    d = cmd.payload
    assert cmd.type == Q.QXL_CMD_DRAW and cmd.group_id == L.MEMSLOT_GROUP_GUEST
    assert isinstance(d, Q.Drawable) and d.type == Q.QXL_DRAW_FILL
    assert d.bbox == Q.Rect(0, 0, 10, 10) and d.mm_time == 1234
    assert d.surfaces_dest == (-1, -1, -1)
    assert isinstance(d.u, Q.Fill) and d.u.brush == Q.Brush(Q.SPICE_BRUSH_TYPE_SOLID,
                                                             0xABCDEF)
    assert d.u.rop_descriptor == Q.SPICE_ROPD_OP_PUT and d.u.mask.bitmap is None
    assert np.array_equal(d.clip, rects)


def test_fill_with_pattern_brush_and_mask(m):
    pat, pixels = image32(m, 8, 8)
    maskbits = put_bitmap_image(m, b"\xaa\x55" * 8, 16, 8, 2, fmt=Q.SPICE_BITMAP_FMT_1BIT_BE)
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_PATTERN,
                        "brush.pattern.pat": m.phys(pat), "brush.pattern.pos": (3, 4),
                        "rop_descriptor": Q.SPICE_ROPD_OP_XOR, "mask.flags": 1,
                        "mask.pos": (1, 2), "mask.bitmap": m.phys(maskbits)})
    d = one(m, put_drawable(m, Q.QXL_DRAW_FILL, u)).payload
    brush = d.u.brush
    assert brush.type == Q.SPICE_BRUSH_TYPE_PATTERN and brush.pos == Q.Point(3, 4)
    assert brush.pattern.data.tobytes() == pixels
    mask = d.u.mask
    assert mask.flags == 1 and mask.pos == Q.Point(1, 2)
    assert mask.bitmap.format == Q.SPICE_BITMAP_FMT_1BIT_BE and mask.bitmap.palette is None


def test_copy_exposes_a_zero_copy_view(m):
    img, pixels = image32(m, 4, 3)
    cmd = one(m, put_drawable(m, Q.QXL_DRAW_COPY, copy_union(m.phys(img)), self_bitmap=1))
    d = cmd.payload
    assert d.self_bitmap == 0  # spice-server resets it for COPY
    src = d.u.src_bitmap
    assert isinstance(src, Q.BitmapImage)
    assert (src.x, src.y, src.stride, src.format) == (4, 3, 16, Q.SPICE_BITMAP_FMT_32BIT)
    assert src.descriptor == Q.ImageDescriptor(0x1234_0000_0000, Q.SPICE_IMAGE_TYPE_BITMAP,
                                               0, 4, 3)
    assert src.data.tobytes() == pixels
    # zero copy: it is the device memory the guest wrote
    data_addr = BAR0_BASE + (int(src.data.ctypes.data) - int(m.dev.ram.ctypes.data))
    m.write(data_addr, b"\xff\xff\xff\xff")
    assert src.data[:4].tobytes() == b"\xff\xff\xff\xff"
    assert d.u.src_area == Q.Rect(0, 0, 3, 4)


def test_chunked_bitmap_is_gathered_once(m):
    rows = [bytes([i]) * 16 for i in range(3)]
    img = put_bitmap_image(m, b"", 4, 3, 16, chunks=[rows[0], b"", rows[1] + rows[2]])
    src = one(m, put_drawable(m, Q.QXL_DRAW_COPY, copy_union(m.phys(img)))).payload.u.src_bitmap
    assert src.data.tobytes() == b"".join(rows)
    assert not np.shares_memory(src.data, m.dev.ram)


def test_single_chunk_bitmap_is_zero_copy(m):
    img = put_bitmap_image(m, b"", 4, 3, 16, chunks=[b"\x01" * 48])
    src = one(m, put_drawable(m, Q.QXL_DRAW_COPY, copy_union(m.phys(img)))).payload.u.src_bitmap
    assert np.shares_memory(src.data, m.dev.ram)


@pytest.mark.parametrize("fmt,bpp,needs_palette", [
    (Q.SPICE_BITMAP_FMT_1BIT_LE, 1, True), (Q.SPICE_BITMAP_FMT_1BIT_BE, 1, True),
    (Q.SPICE_BITMAP_FMT_4BIT_LE, 4, True), (Q.SPICE_BITMAP_FMT_4BIT_BE, 4, True),
    (Q.SPICE_BITMAP_FMT_8BIT, 8, True), (Q.SPICE_BITMAP_FMT_16BIT, 16, False),
    (Q.SPICE_BITMAP_FMT_24BIT, 24, False), (Q.SPICE_BITMAP_FMT_32BIT, 32, False),
    (Q.SPICE_BITMAP_FMT_RGBA, 32, False), (Q.SPICE_BITMAP_FMT_8BIT_A, 8, False),
])
def test_every_bitmap_format(m, fmt, bpp, needs_palette):
    width, height = 10, 4
    stride = (width * bpp + 7) // 8 + 2  # with padding
    pixels = bytes((i * 7) & 0xFF for i in range(stride * height))
    pal = palette(m, [0x000000, 0xFF0000, 0x00FF00, 0x0000FF]) if needs_palette else 0
    img = put_bitmap_image(m, pixels, width, height, stride, fmt=fmt, palette=pal,
                           flags=Q.QXL_BITMAP_DIRECT | Q.QXL_BITMAP_TOP_DOWN)
    area = (0, 0, height, width)
    src = one(m, put_drawable(m, Q.QXL_DRAW_COPY, copy_union(m.phys(img), area))) \
        .payload.u.src_bitmap
    assert src.format == fmt and src.top_down and src.data.tobytes() == pixels
    if needs_palette:
        assert src.palette.unique == 77
        assert list(src.palette.ents) == [0x000000, 0xFF0000, 0x00FF00, 0x0000FF]
        m2 = QXLMachine()
        m2.native()
        img = put_bitmap_image(m2, pixels, width, height, stride, fmt=fmt)
        bug(m2, put_drawable(m2, Q.QXL_DRAW_COPY, copy_union(m2.phys(img), area)))
    else:
        assert src.palette is None


def test_opaque_rop3_transparent_alpha_blend(m):
    img, _ = image32(m)
    src = m.phys(img)
    brush = {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 0x10}
    u = record(L.OPAQUE, {"src_bitmap": src, "src_area": (0, 0, 3, 4), **brush,
                          "rop_descriptor": 0x48, "scale_mode": 1})
    op = one(m, put_drawable(m, Q.QXL_DRAW_OPAQUE, u)).payload.u
    assert isinstance(op, Q.Opaque) and op.brush.color == 0x10 and op.scale_mode == 1
    assert op.rop_descriptor == 0x48
    u = record(L.ROP3, {"src_bitmap": src, "src_area": (0, 0, 3, 4), **brush, "rop3": 0xCA})
    r3 = one(m, put_drawable(m, Q.QXL_DRAW_ROP3, u)).payload.u
    assert isinstance(r3, Q.Rop3) and r3.rop3 == 0xCA
    u = record(L.TRANSPARENT, {"src_bitmap": src, "src_area": (0, 0, 2, 2),
                               "src_color": 0xFF00FF, "true_color": 0xFF00FE})
    tr = one(m, put_drawable(m, Q.QXL_DRAW_TRANSPARENT, u)).payload.u
    assert isinstance(tr, Q.Transparent) and (tr.src_color, tr.true_color) == (0xFF00FF,
                                                                               0xFF00FE)
    u = record(L.ALPHA_BLEND, {"alpha_flags": Q.SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA,
                               "alpha": 0x80, "src_bitmap": src, "src_area": (0, 0, 3, 4)})
    ab = one(m, put_drawable(m, Q.QXL_DRAW_ALPHA_BLEND, u)).payload.u
    assert isinstance(ab, Q.AlphaBlend) and (ab.alpha_flags, ab.alpha) == (2, 0x80)


def test_blend_copy_bits_and_mask_only_draws(m):
    img, _ = image32(m)
    bl = one(m, put_drawable(m, Q.QXL_DRAW_BLEND, copy_union(m.phys(img)))).payload.u
    assert isinstance(bl, Q.Blend)
    u = record(L.COPY_BITS, {"src_pos": (12, 34)})
    d = one(m, put_drawable(m, Q.QXL_COPY_BITS, u, surfaces_dest=(0, -1, -1),
                            surfaces_rects=[(34, 12, 44, 22), (0, 0, 0, 0),
                                            (0, 0, 0, 0)])).payload
    assert d.u == Q.CopyBits(Q.Point(12, 34))
    assert d.surfaces_dest == (0, -1, -1) and d.surfaces_rects[0] == Q.Rect(34, 12, 44, 22)
    for dtype, cls in ((Q.QXL_DRAW_BLACKNESS, Q.Blackness), (Q.QXL_DRAW_WHITENESS,
                                                             Q.Whiteness),
                       (Q.QXL_DRAW_INVERS, Q.Invers)):
        p = one(m, put_drawable(m, dtype, record(L.MASK_ONLY))).payload.u
        assert isinstance(p, cls) and p.mask.bitmap is None
    assert one(m, put_drawable(m, Q.QXL_DRAW_NOP)).payload.u is None


def test_stroke_with_chunked_path_and_style(m):
    seg1 = np.array([Q.QXL_PATH_BEGIN, 2, 0, 0, 160, 160], "<u4").tobytes()
    seg2 = np.array([Q.QXL_PATH_END | Q.QXL_PATH_CLOSE, 1, 320, 16], "<u4").tobytes()
    data = seg1 + seg2
    nxt = m.chunk(data[10:])
    path = m.put(L.PATH, {"data_size": len(data), "chunk.data_size": 10,
                          "chunk.next_chunk": m.phys(nxt)}, data[:10])
    style = m.put_bytes(np.array([16, 32, 48], "<i4").tobytes())
    u = record(L.STROKE, {"path": m.phys(path), "attr.flags": Q.SPICE_LINE_FLAGS_STYLED,
                          "attr.style_nseg": 3, "attr.style": m.phys(style),
                          "brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 1,
                          "fore_mode": Q.SPICE_ROPD_OP_PUT, "back_mode": Q.SPICE_ROPD_OP_OR})
    s = one(m, put_drawable(m, Q.QXL_DRAW_STROKE, u)).payload.u
    assert isinstance(s, Q.Stroke) and len(s.path) == 2
    assert s.path[0].flags == Q.QXL_PATH_BEGIN
    assert s.path[0].points.tolist() == [[0, 0], [160, 160]]
    assert s.path[1].points.tolist() == [[320, 16]]
    assert s.attr.flags == Q.SPICE_LINE_FLAGS_STYLED and s.attr.style.tolist() == [16, 32, 48]
    assert (s.fore_mode, s.back_mode) == (Q.SPICE_ROPD_OP_PUT, Q.SPICE_ROPD_OP_OR)


@pytest.mark.parametrize("flag,bpp", [(Q.SPICE_STRING_FLAGS_RASTER_A1, 1),
                                      (Q.SPICE_STRING_FLAGS_RASTER_A4, 4),
                                      (Q.SPICE_STRING_FLAGS_RASTER_A8, 8)])
def test_text_with_raster_glyphs(m, flag, bpp):
    glyphs = b""
    sizes = [(5, 3), (9, 2)]
    for i, (w, h) in enumerate(sizes):
        head = record(L.RASTER_GLYPH_HEAD, {"render_pos": (10 * i, 20), "glyph_origin": (0, -h),
                                            "width": w, "height": h})
        glyphs += head.tobytes() + bytes([0x80 + i]) * (h * ((w * bpp + 7) // 8))
    string = m.put(L.STRING, {"data_size": len(glyphs), "length": 2, "flags": flag,
                              "chunk.data_size": len(glyphs)}, glyphs)
    u = record(L.TEXT, {"str": m.phys(string), "back_area": (0, 0, 16, 40),
                        "fore_brush.type": Q.SPICE_BRUSH_TYPE_SOLID,
                        "fore_brush.color": 0xFFFFFF, "back_brush.type": 0,
                        "fore_mode": Q.SPICE_ROPD_OP_PUT})
    t = one(m, put_drawable(m, Q.QXL_DRAW_TEXT, u)).payload.u
    assert isinstance(t, Q.Text) and t.string.flags == flag
    assert [(g.width, g.height) for g in t.string.glyphs] == sizes
    assert t.string.glyphs[1].render_pos == Q.Point(10, 20)
    assert t.string.glyphs[1].data.tobytes() == b"\x81" * (2 * ((9 * bpp + 7) // 8))
    assert t.back_area == Q.Rect(0, 0, 16, 40) and t.back_brush.type == 0


def test_composite_with_transforms(m):
    img, _ = image32(m)
    maskimg = put_bitmap_image(m, b"\x80" * 12, 4, 3, 4, fmt=Q.SPICE_BITMAP_FMT_8BIT_A)
    tsrc = m.put_bytes(np.array([1 << 16, 0, 5 << 16, 0, 1 << 16, -(3 << 16)], "<i4").tobytes())
    flags = 3 | (1 << Q.COMPOSITE_SRC_FILTER_SHIFT) | Q.COMPOSITE_COMPONENT_ALPHA
    u = record(L.COMPOSITE, {"flags": flags, "src": m.phys(img), "src_transform": m.phys(tsrc),
                             "mask": m.phys(maskimg), "mask_transform": 0,
                             "src_origin": (1, 2), "mask_origin": (-3, 4)})
    c = one(m, put_drawable(m, Q.QXL_DRAW_COMPOSITE, u)).payload.u
    assert isinstance(c, Q.Composite) and c.flags == flags
    assert c.src_transform == Q.Transform(1 << 16, 0, 5 << 16, 0, 1 << 16, -(3 << 16))
    assert c.mask.format == Q.SPICE_BITMAP_FMT_8BIT_A and c.mask_transform is None
    assert (c.src_origin, c.mask_origin) == (Q.Point(1, 2), Q.Point(-3, 4))


def test_surface_image_and_quic_image(m):
    s = np.zeros(1, L.IMAGE)
    s["descriptor"] = (5, Q.SPICE_IMAGE_TYPE_SURFACE, 0, 64, 64)
    s["surface_id"] = 3
    simg = m.put_bytes(s.tobytes())
    src = one(m, put_drawable(m, Q.QXL_DRAW_COPY, copy_union(m.phys(simg)))).payload.u.src_bitmap
    assert src == Q.SurfaceImage(Q.ImageDescriptor(5, Q.SPICE_IMAGE_TYPE_SURFACE, 0, 64, 64), 3)
    stream = np.array([0x43495551, 0, 4, 8, 6], "<u4").tobytes() + b"quic-bits"
    qimg = quic_image(m, stream, 8, 6)
    src = one(m, put_drawable(m, Q.QXL_DRAW_COPY, copy_union(m.phys(qimg), (0, 0, 6, 8)))) \
        .payload.u.src_bitmap
    assert isinstance(src, Q.QuicImage) and src.data.tobytes() == stream


def quic_image(m: QXLMachine, stream: bytes, w: int, h: int, declared: int | None = None,
               ) -> int:
    """A QXLImage of type QUIC whose first chunk is embedded (as in qxl_dev.h)."""
    img = np.zeros(1, L.IMAGE)
    img["descriptor"] = (9, Q.SPICE_IMAGE_TYPE_QUIC, Q.QXL_IMAGE_CACHE, w, h)
    img["quic_data_size"] = len(stream) if declared is None else declared
    img["quic_chunk"] = (len(stream), 0, 0)
    raw = img.tobytes()[:L.IMAGE_QUIC_DATA_OFFSET] + stream
    return m.put_bytes(raw.ljust(L.IMAGE.itemsize, b"\0"))


@pytest.mark.parametrize("stream,declared", [
    (b"QUIC" + bytes(16), None),  # version ok, type 0 invalid
    (np.array([0x43495551, 1, 4, 8, 6], "<u4").tobytes(), None),  # bad version
    (np.array([0x43495551, 0, 4, 9, 6], "<u4").tobytes(), None),  # size mismatch
    (np.array([0x43495551, 0, 4, 8, 6], "<u4").tobytes(), 40),  # chunks shorter
    (b"QUIC", None),  # truncated header
])
def test_bad_quic_images_are_refused(m, stream, declared):
    qimg = quic_image(m, stream, 8, 6, declared)
    bug(m, put_drawable(m, Q.QXL_DRAW_COPY, copy_union(m.phys(qimg), (0, 0, 6, 8))))


def test_compat_drawables_and_16bpp_palettes():
    m = QXLMachine()
    m.set_mask(0x3F)
    m.out(Q.QXL_IO_SET_MODE, 4)  # 800x480x16
    pal = m.put(L.PALETTE_HEAD, {"unique": 1, "num_ents": 2},
                np.array([0x001F, 0x7FFF], "<u4").tobytes())
    # slot 0 of the compat path takes guest-physical addresses as offsets
    data = m.put_bytes(b"\x01" * 8)
    img = np.zeros(1, L.IMAGE)
    img["descriptor"] = (3, Q.SPICE_IMAGE_TYPE_BITMAP, 0, 8, 8)
    img["bitmap"] = (Q.SPICE_BITMAP_FMT_1BIT_BE, Q.QXL_BITMAP_DIRECT, 8, 8, 1, pal, data)
    img = m.put_bytes(img.tobytes())
    u = record(L.COMPAT_ALPHA_BLEND, {"alpha": 9, "src_bitmap": img, "src_area": (0, 0, 8, 8)})
    addr = put_drawable(m, Q.QXL_DRAW_ALPHA_BLEND, u, compat=True, bitmap_offset=4)
    m.push("cmd_ring", addr, Q.QXL_CMD_DRAW, raw_phys=True)
    (cmd,) = m.pull()
    d = cmd.payload
    assert d.self_bitmap == 1 and d.surfaces_dest == (-1, -1, -1)
    assert d.u.alpha == 9 and d.u.alpha_flags == 0
    assert list(d.u.src_bitmap.palette.ents) == [0x0000FF, 0xFFFFFF]
    u = record(L.COPY_BITS, {"src_pos": (5, 6)})
    addr = put_drawable(m, Q.QXL_COPY_BITS, u, compat=True, bbox=(10, 20, 30, 60))
    m.push("cmd_ring", addr, Q.QXL_CMD_DRAW, raw_phys=True)
    (cmd,) = m.pull()
    assert cmd.payload.surfaces_dest == (0, -1, -1)
    assert cmd.payload.surfaces_rects[0] == Q.Rect(6, 5, 26, 45)


# -- other display commands -------------------------------------------------------

def test_surface_create_and_destroy(m):
    data = m.alloc(64 * 16)
    addr = m.put(L.SURFACE_CMD, {"surface_id": 7, "type": Q.QXL_SURFACE_CMD_CREATE,
                                 "flags": 0, "surface_create": (
                                     Q.SPICE_SURFACE_FMT_32_ARGB, 16, 16, -64, m.phys(data))})
    s = one(m, addr, Q.QXL_CMD_SURFACE).payload
    assert isinstance(s, Q.SurfaceCmd) and (s.surface_id, s.type) == (7, 0)
    assert (s.format, s.width, s.height, s.stride) == (Q.SPICE_SURFACE_FMT_32_ARGB, 16, 16, -64)
    assert s.data.size == 1024 and np.shares_memory(s.data, m.dev.ram)
    addr = m.put(L.SURFACE_CMD, {"surface_id": 7, "type": Q.QXL_SURFACE_CMD_DESTROY})
    s = one(m, addr, Q.QXL_CMD_SURFACE).payload
    assert (s.surface_id, s.type, s.data) == (7, Q.QXL_SURFACE_CMD_DESTROY, None)


def test_update_and_message_commands(m):
    addr = m.put(L.UPDATE_CMD, {"area": (1, 2, 3, 4), "update_id": 9, "surface_id": 2})
    assert one(m, addr, Q.QXL_CMD_UPDATE).payload == Q.UpdateCmd(Q.Rect(1, 2, 3, 4), 9, 2)
    addr = m.put(L.MESSAGE_HEAD, {}, b"driver says hi\0garbage")
    assert one(m, addr, Q.QXL_CMD_MESSAGE).payload == Q.Message(b"driver says hi")


# -- cursor commands ----------------------------------------------------------------

def cursor_shape(m: QXLMachine, ctype: int, w: int, h: int, data: bytes,
                 pieces: int = 1) -> int:
    cut = len(data) // pieces
    parts = [data[i * cut:(i + 1) * cut if i < pieces - 1 else None] for i in range(pieces)]
    nxt = m.chunk_chain(parts[1:]) if pieces > 1 else 0
    return m.put(L.CURSOR, {"header": (0xC0FFEE, ctype, w, h, 1, 2), "data_size": len(data),
                            "chunk.data_size": len(parts[0]),
                            "chunk.next_chunk": m.phys(nxt) if nxt else 0}, parts[0])


def push_cursor(m: QXLMachine, fields: dict) -> list[Q.Command]:
    m.push("cursor_ring", m.put(L.CURSOR_CMD, fields), Q.QXL_CMD_CURSOR)
    return m.pull_cursor()


@pytest.mark.parametrize("ctype,size", [
    (Q.SPICE_CURSOR_TYPE_ALPHA, 32 * 32 * 4), (Q.SPICE_CURSOR_TYPE_MONO, 2 * 4 * 32),
    (Q.SPICE_CURSOR_TYPE_COLOR4, 16 * 32 + 64 + 4 * 32),
    (Q.SPICE_CURSOR_TYPE_COLOR8, 32 * 32 + 1024 + 4 * 32),
    (Q.SPICE_CURSOR_TYPE_COLOR16, 2 * 32 * 32 + 4 * 32),
    (Q.SPICE_CURSOR_TYPE_COLOR24, 3 * 32 * 32 + 4 * 32),
    (Q.SPICE_CURSOR_TYPE_COLOR32, 4 * 32 * 32 + 4 * 32),
])
def test_cursor_set_every_shape_type(m, ctype, size):
    data = bytes((i * 13) & 0xFF for i in range(size))
    shape = cursor_shape(m, ctype, 32, 32, data, pieces=3)
    (cmd,) = push_cursor(m, {"type": Q.QXL_CURSOR_SET, "set_position": (100, -5),
                             "set_visible": 1, "set_shape": m.phys(shape)})
    c = cmd.payload
    assert cmd.type == Q.QXL_CMD_CURSOR and isinstance(c, Q.CursorCmd)
    assert c.type == Q.QXL_CURSOR_SET and c.position == Q.Point(100, -5) and c.visible
    s = c.shape
    assert (s.unique, s.type, s.width, s.height, s.hot_spot_x, s.hot_spot_y) == \
        (0xC0FFEE, ctype, 32, 32, 1, 2)
    assert s.data.tobytes() == data
    # short of data for the shape: refused
    m2 = QXLMachine()
    m2.native()
    shape = cursor_shape(m2, ctype, 32, 32, data[:-1])
    assert push_cursor(m2, {"type": Q.QXL_CURSOR_SET, "set_shape": m2.phys(shape)}) == []
    assert m2.dev.guest_bug


def test_cursor_move_hide_trail(m):
    (move,) = push_cursor(m, {"type": Q.QXL_CURSOR_MOVE, "position": (-3, 40)})
    assert move.payload == Q.CursorCmd(Q.QXL_CURSOR_MOVE, position=Q.Point(-3, 40))
    (hide,) = push_cursor(m, {"type": Q.QXL_CURSOR_HIDE})
    assert hide.payload.type == Q.QXL_CURSOR_HIDE
    (trail,) = push_cursor(m, {"type": Q.QXL_CURSOR_TRAIL, "trail_length": 5,
                               "trail_frequency": 30})
    assert (trail.payload.trail_length, trail.payload.trail_frequency) == (5, 30)
    assert push_cursor(m, {"type": 9}) == [] and m.dev.guest_bug


def test_wrong_command_types(m):
    bug(m, m.put(L.UPDATE_CMD), Q.QXL_CMD_NOP)
    m.out(Q.QXL_IO_RESET)
    m.native()
    bug(m, m.put(L.UPDATE_CMD), Q.QXL_CMD_CURSOR)
    m.out(Q.QXL_IO_RESET)
    m.native()
    m.push("cursor_ring", m.put(L.UPDATE_CMD), Q.QXL_CMD_DRAW)
    assert m.pull_cursor() == [] and m.dev.guest_bug


@pytest.mark.parametrize("dtype,union", [
    (15, None), (Q.QXL_DRAW_COPY, record(L.COPY)),  # no such draw / null source
    (Q.QXL_DRAW_FILL, record(L.FILL, {"brush.type": 7})),  # unknown brush
    (Q.QXL_DRAW_FILL, record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_PATTERN})),
])
def test_malformed_drawables(m, dtype, union):
    bug(m, put_drawable(m, dtype, union))


def test_copy_source_area_checks():
    for area in ((0, 0, 4, 4), (0, 0, 3, 5), (0, 3, 3, 2), (-1, 0, 3, 4)):
        mm = QXLMachine()
        mm.native()
        img, _ = image32(mm, 4, 3)
        bug(mm, put_drawable(mm, Q.QXL_DRAW_COPY, copy_union(mm.phys(img), area)))

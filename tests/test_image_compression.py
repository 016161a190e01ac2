"""Image compression on the display channel: the policy table, every setting
on the wire (decoded bit-exactly by the reference decoders), the client's
preferred compression, JPEG / zlib-glz and their 'auto' on a slow client,
the pixmap and palette caches."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from spice_client import MainInit, Session, link
from spice_harness import Harness, copy_cmd, draw_cmd, drawable, fill_cmd, primary_create

from spice import qxl
from spice.codecs import BITMAP_GRADUAL_HIGH, corpus
from spice.image_encoders import EncoderSettings, ImageEncoders, choose, glz_dictionary_for
from spice.options import SpiceOptions
from spice.protocol import (
    ChannelType,
    DisplayCap,
    ImageCompression,
    Msg,
    MsgC,
    MsgCDisplay,
    MsgDisplay,
    MsgMain,
)

IC = ImageCompression
T = qxl
W, H = 4100, 100  # wide enough for the 4097x3 corpus image


def bitmap(img: corpus.CorpusImage, image_id: int = 0, flags: int = 0) -> qxl.BitmapImage:
    pal = None
    if img.palette is not None:
        pal = qxl.Palette(0x1000 + img.fmt, img.palette.astype(np.uint32))
    desc = qxl.ImageDescriptor(image_id, qxl.SPICE_IMAGE_TYPE_BITMAP, flags, img.width,
                               img.height)
    return qxl.BitmapImage(desc, img.fmt, qxl.QXL_BITMAP_TOP_DOWN if img.top_down else 0,
                           img.width, img.height, img.stride, pal, img.data)


def logical(bm: qxl.BitmapImage) -> np.ndarray:
    """(h, w) uint32 of what a pixel means: 0xAARRGGBB with A kept only
    where the format has alpha; 16-bit channels widened as clients do."""
    h, w = bm.y, bm.x
    rows = bm.data[: h * bm.stride].reshape(h, bm.stride)
    if not bm.flags & qxl.QXL_BITMAP_TOP_DOWN:
        rows = rows[::-1]
    f = bm.format
    if f in (T.SPICE_BITMAP_FMT_32BIT, T.SPICE_BITMAP_FMT_RGBA):
        px = np.ascontiguousarray(rows[:, : 4 * w]).view("<u4").reshape(h, w)
        return px if f == T.SPICE_BITMAP_FMT_RGBA else px & 0xFFFFFF
    if f == T.SPICE_BITMAP_FMT_24BIT:
        b = rows[:, : 3 * w].reshape(h, w, 3).astype(np.uint32)
        return b[..., 0] | b[..., 1] << 8 | b[..., 2] << 16
    if f == T.SPICE_BITMAP_FMT_16BIT:
        v = np.ascontiguousarray(rows[:, : 2 * w]).view("<u2").reshape(h, w).astype(np.uint32)
        r, g, b = (v >> 10) & 31, (v >> 5) & 31, v & 31
        r, g, b = ((c << 3) | (c >> 2) for c in (r, g, b))
        return r << 16 | g << 8 | b
    if f == T.SPICE_BITMAP_FMT_8BIT_A:
        return rows[:, :w].astype(np.uint32) << 24
    bits = T.BITMAP_FMT_BPP[f]
    idx = np.unpackbits(rows, axis=1, bitorder="little" if f in (1, 3) else "big")
    if bits == 8:
        idx = rows[:, :w].astype(np.uint32)
    elif bits == 4:
        hi, lo = rows >> 4, rows & 15
        pairs = np.stack([lo, hi] if f == T.SPICE_BITMAP_FMT_4BIT_LE else [hi, lo], -1)
        idx = pairs.reshape(h, -1)[:, :w].astype(np.uint32)
    else:
        idx = idx[:, :w].astype(np.uint32)
    return bm.palette.ents[idx] & 0xFFFFFF


def decoded_from_rgb32(bm: qxl.BitmapImage, fmt: int) -> np.ndarray:
    """A decoded image in the client's terms, for comparison with ``logical``:
    codecs that decode to 32 bits drop the x byte (and keep alpha for RGBA)."""
    out = logical(bm)
    if fmt == T.SPICE_BITMAP_FMT_8BIT_A:
        return out & 0xFF000000
    return out if fmt == T.SPICE_BITMAP_FMT_RGBA else out & 0xFFFFFF


# -- the policy table ---------------------------------------------------------------------


def test_policy_table():
    photo = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_32BIT, 96, 64))
    text = bitmap(corpus.make("text", T.SPICE_BITMAP_FMT_32BIT, 96, 64))
    padded = bitmap(corpus.make("text", T.SPICE_BITMAP_FMT_32BIT, 96, 64, pad=8))
    plt = bitmap(corpus.make("ui", T.SPICE_BITMAP_FMT_8BIT, 96, 64))
    a8 = bitmap(corpus.make("ui", T.SPICE_BITMAP_FMT_8BIT_A, 96, 64))
    tiny = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_32BIT, 3, 4))  # 48 bytes
    thin = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_32BIT, 200, 2))
    unstable = bitmap(corpus.make("text", T.SPICE_BITMAP_FMT_32BIT, 96, 64))
    unstable.flags |= qxl.QXL_BITMAP_UNSTABLE
    cases = [
        # (bitmap, setting, from a drawable, expected)
        (tiny, IC.AUTO_GLZ, True, IC.OFF),
        (photo, IC.OFF, True, IC.OFF),
        (photo, IC.QUIC, True, IC.QUIC), (plt, IC.QUIC, True, IC.OFF),
        (thin, IC.QUIC, True, IC.OFF),
        (photo, IC.AUTO_GLZ, True, IC.QUIC), (text, IC.AUTO_GLZ, True, IC.GLZ),
        (photo, IC.AUTO_LZ, True, IC.QUIC), (text, IC.AUTO_LZ, True, IC.LZ),
        (padded, IC.AUTO_GLZ, True, IC.QUIC),  # LZ cannot code padded rows
        (unstable, IC.AUTO_GLZ, True, IC.QUIC),
        (plt, IC.AUTO_GLZ, True, IC.LZ), (a8, IC.AUTO_GLZ, True, IC.LZ),
        (text, IC.AUTO_GLZ, False, IC.LZ),  # a surface image is no drawable: no GLZ
        (text, IC.GLZ, True, IC.GLZ), (photo, IC.GLZ, True, IC.GLZ),
        (plt, IC.GLZ, True, IC.LZ), (padded, IC.GLZ, True, IC.OFF),
        (text, IC.LZ, True, IC.LZ), (padded, IC.LZ, True, IC.OFF),
        (text, IC.LZ4, True, IC.LZ4), (plt, IC.LZ4, True, IC.LZ), (a8, IC.LZ4, True, IC.LZ),
    ]
    for bm, setting, from_drawable, want in cases:
        assert choose(bm, setting, from_drawable) == want, (bm.format, bm.x, setting)
    # a graduality already known (the stream detector's) is used as it is
    assert choose(text, IC.AUTO_GLZ, True, BITMAP_GRADUAL_HIGH) == IC.QUIC


def test_encoder_fallbacks_and_wrapping():
    enc = ImageEncoders()
    text = bitmap(corpus.make("text", T.SPICE_BITMAP_FMT_32BIT, 96, 64))
    noise = np.random.default_rng(1).integers(0, 256, 64 * 96 * 3, dtype=np.uint8)
    noisy = qxl.BitmapImage(qxl.ImageDescriptor(0, 0, 0, 96, 64), T.SPICE_BITMAP_FMT_24BIT,
                            qxl.QXL_BITMAP_TOP_DOWN, 96, 64, 96 * 3, None, noise)
    # LZ4 needs the client's cap, else LZ
    assert enc.compress(text, EncoderSettings(IC.LZ4, lz4=True), False).type == \
        T.SPICE_IMAGE_TYPE_LZ4
    assert enc.compress(text, EncoderSettings(IC.LZ4), False).type == T.SPICE_IMAGE_TYPE_LZ_RGB
    # GLZ without a dictionary (window 0) is LZ; with zlib wrapping, ZLIB_GLZ when smaller
    assert enc.compress(text, EncoderSettings(IC.GLZ), False).type == T.SPICE_IMAGE_TYPE_LZ_RGB
    glz = glz_dictionary_for(_Client(), 0, 1 << 20)
    assert enc.compress(text, EncoderSettings(IC.GLZ, glz=glz), False).type == \
        T.SPICE_IMAGE_TYPE_GLZ_RGB
    # (a fresh dictionary: the same image again codes to a few bytes of references)
    glz = glz_dictionary_for(_Client(), 0, 1 << 20)
    wrapped = enc.compress(text, EncoderSettings(IC.GLZ, enable_zlib_glz=True, glz=glz), False)
    assert wrapped.type == T.SPICE_IMAGE_TYPE_ZLIB_GLZ_RGB
    glz_size, zsize = struct.unpack("<II", wrapped.header)
    assert zsize == len(wrapped.data) < glz_size
    # noise: LZ and QUIC grow it, so it goes out as it is; JPEG only when lossy is allowed
    assert enc.compress(noisy, EncoderSettings(IC.LZ), False) is None
    assert enc.compress(noisy, EncoderSettings(IC.QUIC), False) is None
    photo = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_32BIT, 96, 64))
    jpeg_on = EncoderSettings(IC.AUTO_GLZ, enable_jpeg=True)
    assert enc.compress(photo, jpeg_on, False).type == T.SPICE_IMAGE_TYPE_QUIC
    out = enc.compress(photo, jpeg_on, True)
    assert out.type == T.SPICE_IMAGE_TYPE_JPEG and out.lossy
    rgba = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_RGBA, 96, 64))
    assert enc.compress(rgba, jpeg_on, True).type == T.SPICE_IMAGE_TYPE_JPEG_ALPHA
    stats = enc.stats.as_dict()
    assert stats["images_lz4"] == 1 and stats["images_jpeg"] == 1 and stats["images_bitmap"] == 2


class _Client:
    """Stands for a client session (the registry keys on the object)."""


def test_glz_dictionary_is_shared_per_client_and_id():
    a, b = _Client(), _Client()
    d = glz_dictionary_for(a, 1, 1000)
    assert glz_dictionary_for(a, 1, 5000) is d  # a second channel of the same client
    assert glz_dictionary_for(a, 2, 1000) is not d
    assert glz_dictionary_for(b, 1, 1000) is not d
    assert glz_dictionary_for(a, 3, 0) is None


# -- on the wire -----------------------------------------------------------------------------

ALLOWED = {
    "off": {T.SPICE_IMAGE_TYPE_BITMAP},
    "quic": {T.SPICE_IMAGE_TYPE_BITMAP, T.SPICE_IMAGE_TYPE_QUIC},
    "auto_glz": {T.SPICE_IMAGE_TYPE_BITMAP, T.SPICE_IMAGE_TYPE_QUIC, T.SPICE_IMAGE_TYPE_GLZ_RGB,
                 T.SPICE_IMAGE_TYPE_LZ_RGB, T.SPICE_IMAGE_TYPE_LZ_PLT},
    "auto_lz": {T.SPICE_IMAGE_TYPE_BITMAP, T.SPICE_IMAGE_TYPE_QUIC, T.SPICE_IMAGE_TYPE_LZ_RGB,
                T.SPICE_IMAGE_TYPE_LZ_PLT},
    "glz": {T.SPICE_IMAGE_TYPE_BITMAP, T.SPICE_IMAGE_TYPE_GLZ_RGB, T.SPICE_IMAGE_TYPE_LZ_RGB,
            T.SPICE_IMAGE_TYPE_LZ_PLT},
    "lz": {T.SPICE_IMAGE_TYPE_BITMAP, T.SPICE_IMAGE_TYPE_LZ_RGB, T.SPICE_IMAGE_TYPE_LZ_PLT},
    "lz4": {T.SPICE_IMAGE_TYPE_BITMAP, T.SPICE_IMAGE_TYPE_LZ4, T.SPICE_IMAGE_TYPE_LZ_RGB,
            T.SPICE_IMAGE_TYPE_LZ_PLT},
}
SEEN_AT_LEAST = {
    "quic": T.SPICE_IMAGE_TYPE_QUIC, "auto_glz": T.SPICE_IMAGE_TYPE_GLZ_RGB,
    "auto_lz": T.SPICE_IMAGE_TYPE_LZ_RGB, "glz": T.SPICE_IMAGE_TYPE_GLZ_RGB,
    "lz": T.SPICE_IMAGE_TYPE_LZ_PLT, "lz4": T.SPICE_IMAGE_TYPE_LZ4,
}


def _serve(options: SpiceOptions) -> Harness:
    h = Harness(options)
    create, mem = primary_create(W, H)
    h.worker.create_primary_surface(create)
    h.worker.start()
    h.mem = mem
    return h


def _roundtrip(h: Harness, d, images) -> list[int]:
    """Each image as a DRAW_COPY, one at a time (nothing culled); the decoded
    source must mean exactly the original pixels."""
    types = []
    for img in images:
        bm = bitmap(img)
        n = len(d.image_types)
        h.qxl.push(copy_cmd(h.qxl.token(), (0, 0, img.height, img.width), bm))
        drawn = d.pump(until=MsgDisplay.DRAW_COPY)
        got = drawn.u.src_bitmap
        types.append(d.image_types[n])
        want = logical(bm)
        if got.format in (T.SPICE_BITMAP_FMT_32BIT, T.SPICE_BITMAP_FMT_RGBA) and \
                bm.format != got.format:
            assert (decoded_from_rgb32(got, bm.format) == want).all(), img.name
        else:
            assert (logical(got) == want).all(), img.name
    return types


def _types_until(h: Harness, d, img, want: int, timeout: float = 10.0) -> int:
    """Round trips of `img` until it goes out as `want` (a message the client
    just sent is read by the server in its own time); the last type seen."""
    deadline = time.monotonic() + timeout
    (seen,) = _roundtrip(h, d, [img])
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.05)
        (seen,) = _roundtrip(h, d, [img])
    return seen


@pytest.mark.parametrize("setting", sorted(ALLOWED))
def test_every_setting_on_the_wire_decodes_bit_exactly(setting):
    opts = SpiceOptions(port=0, disable_ticketing=True, image_compression=setting)
    h = _serve(opts)
    try:
        s = Session("127.0.0.1", h.port)
        caps = (DisplayCap.MONITORS_CONFIG, DisplayCap.LZ4_COMPRESSION)
        d = s.open_display(caps=caps, glz_window=1 << 22)
        d.use_canvas = True
        d.pump(until=MsgDisplay.MARK)
        types = _roundtrip(h, d, corpus.corpus())
        assert set(types) <= ALLOWED[setting], set(types)
        if setting in SEEN_AT_LEAST:
            assert SEEN_AT_LEAST[setting] in types
        s.close()
    finally:
        h.close()


def test_client_preferred_compression_wins():
    h = _serve(SpiceOptions(port=0, disable_ticketing=True, image_compression="off"))
    try:
        s = Session("127.0.0.1", h.port)
        d = s.open_display(caps=(DisplayCap.PREF_COMPRESSION, DisplayCap.LZ4_COMPRESSION))
        d.use_canvas = True
        d.pump(until=MsgDisplay.MARK)
        text = corpus.make("text", T.SPICE_BITMAP_FMT_32BIT, 96, 64)
        assert _roundtrip(h, d, [text]) == [T.SPICE_IMAGE_TYPE_BITMAP]
        d.ch.send(MsgCDisplay.PREFERRED_COMPRESSION, bytes((IC.LZ4,)))
        assert _types_until(h, d, text, T.SPICE_IMAGE_TYPE_LZ4) == T.SPICE_IMAGE_TYPE_LZ4
        d.ch.send(MsgCDisplay.PREFERRED_COMPRESSION, bytes((IC.QUIC,)))
        assert _types_until(h, d, text, T.SPICE_IMAGE_TYPE_QUIC) == T.SPICE_IMAGE_TYPE_QUIC
        s.close()
    finally:
        h.close()


# -- JPEG, zlib-glz, lossy areas ---------------------------------------------------------------


def test_jpeg_always_sends_photos_lossy_and_resends_before_exact_draws():
    opts = SpiceOptions(port=0, disable_ticketing=True, jpeg_wan_compression="always",
                        streaming_video="off")
    h = _serve(opts)
    try:
        s = Session("127.0.0.1", h.port)
        d = s.open_display(glz_window=1 << 22)
        d.pump(until=MsgDisplay.MARK)
        photo = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_32BIT, 96, 64))
        h.qxl.push(copy_cmd(h.qxl.token(), (0, 0, 64, 96), photo))
        d.pump(until=MsgDisplay.DRAW_COPY)
        assert d.image_types[-1] == T.SPICE_IMAGE_TYPE_JPEG
        # an XOR over the lossy photo: the area first comes again losslessly
        h.qxl.push(fill_cmd(h.qxl.token(), (10, 10, 20, 40), 0x0F0F0F,
                            rop=qxl.SPICE_ROPD_OP_XOR))
        got = []
        while True:
            t, _ = d.ch.recv(5)
            got.append(t)
            if t == MsgDisplay.DRAW_FILL:
                break
            d.apply(t, _)
        assert got[-2:] == [MsgDisplay.DRAW_COPY, MsgDisplay.DRAW_FILL]
        assert d.image_types[-1] in (T.SPICE_IMAGE_TYPE_QUIC, T.SPICE_IMAGE_TYPE_LZ_RGB)
        # a second XOR there needs nothing resent
        h.qxl.push(fill_cmd(h.qxl.token(), (10, 10, 20, 40), 0x0F0F0F,
                            rop=qxl.SPICE_ROPD_OP_XOR))
        assert d.ch.recv(5)[0] == MsgDisplay.DRAW_FILL
        s.close()
    finally:
        h.close()


def test_cache_lossless_entries_and_lossy_replacement():
    opts = SpiceOptions(port=0, disable_ticketing=True, jpeg_wan_compression="always",
                        streaming_video="off")
    h = _serve(opts)
    try:
        s = Session("127.0.0.1", h.port)
        d = s.open_display()
        d.pump(until=MsgDisplay.MARK)
        text = bitmap(corpus.make("text", T.SPICE_BITMAP_FMT_32BIT, 96, 64), 7 << 32,
                      qxl.QXL_IMAGE_CACHE)
        photo = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_32BIT, 96, 64), 8 << 32,
                       qxl.QXL_IMAGE_CACHE)
        q = h.qxl
        for img, dest in ((text, 0), (text, 100), (photo, 200), (photo, 300)):
            q.push(copy_cmd(q.token(), (0, dest, 64, dest + 96), img))
            d.pump(until=MsgDisplay.DRAW_COPY)
        assert d.image_types[-4:] == [T.SPICE_IMAGE_TYPE_LZ_RGB,
                                 T.SPICE_IMAGE_TYPE_FROM_CACHE_LOSSLESS,
                                 T.SPICE_IMAGE_TYPE_JPEG, T.SPICE_IMAGE_TYPE_FROM_CACHE]
        # the cached photo is lossy: a draw that must not be lossy gets it again, lossless
        u = qxl.Transparent(photo, qxl.Rect(0, 0, 64, 96), 0x123456, 0x123456)
        q.push(draw_cmd(drawable(0, qxl.QXL_DRAW_TRANSPARENT, (0, 400, 64, 496), u,
                                 effect=qxl.QXL_EFFECT_BLEND), q.token()))
        d.pump(until=MsgDisplay.DRAW_TRANSPARENT)
        assert d.image_types[-1] == T.SPICE_IMAGE_TYPE_QUIC
        s.close()
    finally:
        h.close()


def _slow_main_session(h: Harness) -> Session:
    """A client whose main channel answers the 250 KiB rate ping late, so
    the network test finds it slow (under 10 Mbit/s).  Returns once the
    server has read the last answer (the test's result decides how the
    display channel opened next is configured)."""
    s = Session.__new__(Session)
    s.host, s.port, s.password = "127.0.0.1", h.port, b""
    s.main = link("127.0.0.1", h.port, ChannelType.MAIN)
    s.main.auto_pong = False
    body = s.main.recv_until(MsgMain.INIT)
    s.init = MainInit(*struct.unpack("<8I", body[:32]))
    s.session_id = s.init.session_id
    pings = 0
    while pings < 3:
        t, body = s.main.recv(5)
        if t == Msg.PING:
            pings += 1
            if len(body) > 12:
                time.sleep(0.5)
            read = h.call(h.server.stats)["messages_in"]
            s.main.send(MsgC.PONG, body[:12])
    deadline = time.monotonic() + 10
    while h.call(h.server.stats)["messages_in"] <= read:
        assert time.monotonic() < deadline, "the server never read the last PONG"
        time.sleep(0.01)
    return s


def test_auto_wan_compression_follows_the_network_test():
    h = _serve(SpiceOptions(port=0, disable_ticketing=True, streaming_video="off"))
    try:
        photo = bitmap(corpus.make("photo", T.SPICE_BITMAP_FMT_32BIT, 96, 64))
        text = bitmap(corpus.make("text", T.SPICE_BITMAP_FMT_32BIT, 256, 64))
        s = _slow_main_session(h)
        d = s.open_display(glz_window=1 << 22)
        d.pump(until=MsgDisplay.MARK)
        for img in (photo, text):
            h.qxl.push(copy_cmd(h.qxl.token(), (0, 0, img.y, img.x), img))
            d.pump(until=MsgDisplay.DRAW_COPY)
        assert d.image_types[-2:] == [T.SPICE_IMAGE_TYPE_JPEG, T.SPICE_IMAGE_TYPE_ZLIB_GLZ_RGB]
        s.close()
        # a fast client (the pings answered at once) gets neither
        s = Session("127.0.0.1", h.port)
        s.channels()  # answers the network test's pings on the way
        time.sleep(0.2)
        d = s.open_display(glz_window=1 << 22)
        d.pump(until=MsgDisplay.MARK)
        for img in (photo, text):
            h.qxl.push(copy_cmd(h.qxl.token(), (0, 200, img.y, 200 + img.x), img))
            d.pump(until=MsgDisplay.DRAW_COPY)
        assert d.image_types[-2:] == [T.SPICE_IMAGE_TYPE_QUIC, T.SPICE_IMAGE_TYPE_GLZ_RGB]
        s.close()
    finally:
        h.close()


def test_palette_cache_with_lz_plt():
    h = _serve(SpiceOptions(port=0, disable_ticketing=True, image_compression="lz"))
    try:
        s = Session("127.0.0.1", h.port)
        d = s.open_display()
        d.pump(until=MsgDisplay.MARK)
        img = bitmap(corpus.make("ui", T.SPICE_BITMAP_FMT_8BIT, 96, 64))
        flags = []
        orig = d.apply

        def spy(t, body):
            if t == MsgDisplay.DRAW_COPY:
                off = struct.unpack_from("<I", body, 4 + 16 + 1)[0]
                flags.append(body[off + 18])
            return orig(t, body)
        d.apply = spy
        for x in (0, 100, 200):
            h.qxl.push(copy_cmd(h.qxl.token(), (0, x, 64, x + 96), img))
            d.pump(until=MsgDisplay.DRAW_COPY)
        assert d.image_types[-3:] == [T.SPICE_IMAGE_TYPE_LZ_PLT] * 3
        assert flags == [qxl.SPICE_BITMAP_FLAGS_PAL_CACHE_ME | qxl.SPICE_BITMAP_FLAGS_TOP_DOWN,
                         qxl.SPICE_BITMAP_FLAGS_PAL_FROM_CACHE | qxl.SPICE_BITMAP_FLAGS_TOP_DOWN,
                         qxl.SPICE_BITMAP_FLAGS_PAL_FROM_CACHE | qxl.SPICE_BITMAP_FLAGS_TOP_DOWN]
        s.close()
    finally:
        h.close()

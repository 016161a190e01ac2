"""GLZ: image sequences decoded in order by the model of the client's window,
references across images, FIFO eviction in step with the client, resets,
concurrent encoders, ZLIB_GLZ wrapping, and malformed streams."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spice.codecs.corpus import RGB_FORMATS, CorpusImage, corpus, make
from spice.codecs.glz import (
    GLZ_HEADER_SIZE,
    LZ_MAX_WINDOW_SIZE,
    GlzDictionary,
    glz_encode,
    zlib_glz_encode,
)
from spice.codecs.glz_client import GlzDecoderWindow, glz_decode, zlib_glz_decode
from spice.codecs.lz_layout import LzImageType, load_values, lz_type_for_format, rgb16_to_rgb32
from spice.qxl import (
    SPICE_BITMAP_FMT_8BIT,
    SPICE_BITMAP_FMT_8BIT_A,
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)

ROOT = Path(__file__).resolve().parent.parent


def encode(d: GlzDictionary, im: CorpusImage) -> bytes | None:
    return glz_encode(d, im.data, im.width, im.height, im.stride, im.fmt, im.top_down)


def client_pixels(im: CorpusImage) -> np.ndarray:
    """What the client holds for an image: 32-bit pixels, 16-bit colours
    widened, the unused byte of 24/32-bit pixels 0, alpha kept for RGBA."""
    lz_type = lz_type_for_format(im.fmt)
    v = load_values(im.data, im.width, im.height, im.stride, lz_type).astype(np.uint32)
    if lz_type == LzImageType.RGB16:
        v = rgb16_to_rgb32(v)
    elif lz_type != LzImageType.RGBA:
        v = v & 0xFFFFFF
    return v.reshape(im.height, im.width)


def check_sequence(images: list[CorpusImage], window: int) -> tuple[int, int]:
    """Encode then decode each image in turn; returns (raw bytes, GLZ bytes)."""
    d = GlzDictionary(window)
    client = GlzDecoderWindow()
    raw = coded = 0
    for im in images:
        stream = encode(d, im)
        if stream is None:
            assert im.width * im.height >= window
            continue
        out = glz_decode(client, stream)
        assert out.top_down == im.top_down, im.name
        assert np.array_equal(out.values, client_pixels(im)), im.name
        # The server's window and the client's hold the same images.
        assert client.image_ids == list(d.window_image_ids), im.name
        assert client.held_pixels <= window
        raw += im.height * im.stride
        coded += len(stream)
    return raw, coded


def test_corpus_sequence_round_trip() -> None:
    images = corpus(RGB_FORMATS)
    check_sequence(images + images[::-1], 1 << 20)


def test_small_window_evicts_in_step_with_the_client() -> None:
    images = corpus(RGB_FORMATS)
    for window in (20000, 7000, 100):
        check_sequence(images + images, window)


def test_repeated_image_references_the_earlier_one() -> None:
    im = make("ui", SPICE_BITMAP_FMT_32BIT, 200, 150)
    d = GlzDictionary(1 << 20)
    first = encode(d, im)
    second = encode(d, im)
    assert len(second) < len(first) / 20
    client = GlzDecoderWindow()
    glz_decode(client, first)
    assert np.array_equal(glz_decode(client, second).values, client_pixels(im))
    # A client without the first image cannot decode the second.
    with pytest.raises(ValueError, match="does not hold"):
        glz_decode(GlzDecoderWindow(), second)


def test_evicted_images_are_never_referenced() -> None:
    a = make("ui", SPICE_BITMAP_FMT_32BIT, 100, 100, seed=1)
    b = make("text", SPICE_BITMAP_FMT_32BIT, 100, 100, seed=2)
    d = GlzDictionary(25000)  # room for two of these images
    client = GlzDecoderWindow()
    for im in (a, b, b, a):  # the last a comes after the first a left the window
        out = glz_decode(client, encode(d, im))
        assert np.array_equal(out.values, client_pixels(im))
    assert client.image_ids == [2, 3]


def test_header_fields() -> None:
    d = GlzDictionary(10000)
    images = [make("text", SPICE_BITMAP_FMT_24BIT, 60, 50, top_down=td, seed=k)
              for k, td in enumerate((True, False, True, True))]
    heads = []
    for k, im in enumerate(images):
        stream = encode(d, im)
        magic, version, type_byte, w, h, stride, image_id, head = struct.unpack(
            ">IIBIIIQI", stream[:GLZ_HEADER_SIZE])
        assert (magic, version, w, h, stride, image_id) == (0x20205A4C, 0x10001, 60, 50, 180, k)
        assert type_byte == LzImageType.RGB24 | (0x10 if im.top_down else 0)
        heads.append(head)
    assert heads == [0, 1, 2, 2]  # 3000-pixel images, a 10000-pixel window holds 3


def test_image_as_large_as_the_window_is_left_to_lz() -> None:
    d = GlzDictionary(100)
    assert encode(d, make("flat", SPICE_BITMAP_FMT_32BIT, 10, 10)) is None
    assert d.next_image_id == 0
    assert encode(d, make("flat", SPICE_BITMAP_FMT_32BIT, 9, 11)) is not None


def test_reset_forgets_every_image() -> None:
    im = make("ui", SPICE_BITMAP_FMT_32BIT, 64, 64)
    d = GlzDictionary(1 << 16)
    client = GlzDecoderWindow()
    glz_decode(client, encode(d, im))
    glz_decode(client, encode(d, im))
    d.reset()
    assert list(d.window_image_ids) == []
    stream = encode(d, im)
    assert struct.unpack(">Q", stream[21:29])[0] == 2  # ids keep counting
    out = glz_decode(client, stream)
    assert out.window_head_distance == 0
    assert client.image_ids == [2]  # the client freed everything older
    glz_decode(GlzDecoderWindow(), stream)  # no references to what was forgotten


def test_first_image_id_and_window_limits() -> None:
    d = GlzDictionary(5000, first_image_id=1000)
    im = make("text", SPICE_BITMAP_FMT_32BIT, 30, 30)
    client = GlzDecoderWindow()
    for k in range(4):
        out = glz_decode(client, encode(d, im))
        assert out.image_id == 1000 + k
        assert np.array_equal(out.values, client_pixels(im))
    for bad in (0, -1, LZ_MAX_WINDOW_SIZE + 1):
        with pytest.raises(ValueError):
            GlzDictionary(bad)
    GlzDictionary(LZ_MAX_WINDOW_SIZE)


@pytest.mark.parametrize("fmt", [SPICE_BITMAP_FMT_8BIT, SPICE_BITMAP_FMT_8BIT_A])
def test_formats_clients_cannot_glz_decode_are_refused(fmt: int) -> None:
    im = make("text", fmt, 20, 20)
    d = GlzDictionary(1 << 16)
    with pytest.raises(ValueError):
        encode(d, im)
    assert d.next_image_id == 0


def test_concurrent_encoders_share_one_dictionary() -> None:
    d = GlzDictionary(1 << 18)
    images = {fmt: [make(k, fmt, 80, 60, seed=s) for s in range(2)
                    for k in ("ui", "text", "photo")]
              for fmt in (SPICE_BITMAP_FMT_32BIT, SPICE_BITMAP_FMT_16BIT,
                          SPICE_BITMAP_FMT_RGBA, SPICE_BITMAP_FMT_24BIT)}
    results: list[tuple[int, bytes, CorpusImage]] = []
    lock = threading.Lock()

    def channel(ims: list[CorpusImage]) -> None:
        for im in ims * 3:
            stream = encode(d, im)
            assert stream is not None
            with lock:
                results.append((struct.unpack(">Q", stream[21:29])[0], stream, im))

    threads = [threading.Thread(target=channel, args=(ims,)) for ims in images.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.sort(key=lambda r: r[0])
    assert [r[0] for r in results] == list(range(len(results)))
    client = GlzDecoderWindow()
    for _, stream, im in results:
        assert np.array_equal(glz_decode(client, stream).values, client_pixels(im))


def test_zlib_glz() -> None:
    d = GlzDictionary(1 << 20)
    client = GlzDecoderWindow()
    im = make("ui", SPICE_BITMAP_FMT_32BIT, 160, 120)
    glz = encode(d, im)
    packed = zlib_glz_encode(glz)
    assert packed is not None and len(packed) < len(glz)
    out = zlib_glz_decode(client, packed, len(glz))
    assert np.array_equal(out.values, client_pixels(im))
    assert zlib_glz_encode(glz[:99]) is None  # too short to be worth it
    assert zlib_glz_encode(np.random.default_rng(0).bytes(5000)) is None  # zlib cannot shrink it
    with pytest.raises(ValueError):
        zlib_glz_decode(GlzDecoderWindow(), packed, len(glz) - 1)
    with pytest.raises(ValueError):
        zlib_glz_decode(GlzDecoderWindow(), packed[:-3], len(glz))


# -- malformed streams ----------------------------------------------------------


def _valid_sequence() -> list[bytes]:
    d = GlzDictionary(1 << 16)
    ims = [make("ui", SPICE_BITMAP_FMT_32BIT, 40, 30), make("text", SPICE_BITMAP_FMT_RGBA, 25, 9),
           make("photo", SPICE_BITMAP_FMT_16BIT, 21, 5)]
    return [encode(d, im) for im in ims + ims]


VALID = _valid_sequence()


def _decoded_in_order(streams: list[bytes]) -> list[np.ndarray]:
    client = GlzDecoderWindow()
    return [glz_decode(client, s).values.copy() for s in streams]


VALID_VALUES = _decoded_in_order(VALID)


def decode_or_value_error(prefix: list[bytes], stream: bytes,
                          intact: int | None = None) -> None:
    """Decode `stream` after the `prefix` images.  A stream the decoder
    rejects must leave the window exactly as it was -- it still decodes the
    intact stream VALID[intact] to the right pixels; one it accepts must
    yield an image of the size its header gives.  (Whether the window keeps
    it depends on the ids and head distance the mangled header claims, as in
    the client.)"""
    client = GlzDecoderWindow()
    for s in prefix:
        glz_decode(client, s)
    held = (client.image_ids, client.held_pixels)
    try:
        out = glz_decode(client, stream)
    except ValueError:
        assert (client.image_ids, client.held_pixels) == held
        if intact is not None:
            assert np.array_equal(glz_decode(client, VALID[intact]).values,
                                  VALID_VALUES[intact])
        return
    assert out.pixels.shape == (out.height, out.width * 4)
    assert out.values.shape == (out.height, out.width)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(VALID) - 1), cut=st.integers(0, 10**6),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=6),
       tail=st.binary(max_size=8))
def test_mutated_streams_fail_cleanly(which: int, cut: int, flips: list[tuple[int, int]],
                                      tail: bytes) -> None:
    stream = bytearray(VALID[which])
    for pos, xor in flips:
        stream[pos % len(stream)] ^= xor
    if cut % 3 == 0:
        stream = stream[: max(1, cut % (len(stream) + 1))]
    decode_or_value_error(VALID[:which], bytes(stream) + tail, intact=which)


@settings(max_examples=300, deadline=None)
@given(type_byte=st.one_of(st.sampled_from([6, 7, 8, 9, 0x16, 0x18]), st.integers(0, 255)),
       width=st.integers(0, 300), height=st.integers(0, 300),
       stride=st.one_of(st.none(), st.integers(0, 1 << 22)),
       image_id=st.one_of(st.integers(0, 8), st.integers(0, (1 << 64) - 1)),
       head=st.one_of(st.integers(0, 8), st.integers(0, (1 << 32) - 1)),
       body=st.binary(max_size=120))
def test_random_headers_and_bodies_fail_cleanly(type_byte: int, width: int, height: int,
                                                stride: int | None, image_id: int, head: int,
                                                body: bytes) -> None:
    if stride is None:  # consistent with the type, so decoding gets past the header
        stride = width * {6: 2, 7: 3}.get(type_byte & 15, 4)
    header = struct.pack(">IIBIIIQI", 0x20205A4C, 0x10001, type_byte, width, height, stride,
                         image_id, head)
    decode_or_value_error(VALID[:3], header + body)


def test_malformed_streams_never_read_out_of_bounds() -> None:
    """Fuzzing with numba bounds checking on, in a fresh process."""
    script = textwrap.dedent("""
        import random, sys
        from spice.codecs.glz_client import GlzDecoderWindow
        streams = [bytes.fromhex(h) for h in sys.stdin.read().split()]
        rng = random.Random(7)
        for k in range(400):
            i = rng.randrange(len(streams))
            client = GlzDecoderWindow()
            for s in streams[:i]:
                client.decode(s)
            s = bytearray(streams[i])
            for _ in range(rng.randint(1, 4)):
                s[rng.randrange(len(s))] ^= rng.randint(1, 255)
            if rng.random() < 0.3:
                s = s[: rng.randrange(1, len(s))]
            try:
                client.decode(bytes(s))
            except ValueError:
                pass
        print("ok")
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", PYTHONPATH=str(ROOT),
               NUMBA_CACHE_DIR=str(ROOT / "build" / "numba-boundscheck"))
    done = subprocess.run([sys.executable, "-c", script], input=" ".join(s.hex() for s in VALID),
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"

"""LZ: round trips of the test corpus through the reference decoder, the
header and hand-written streams as the SPICE LZ format defines them, input
validation, and malformed streams."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spice.codecs.corpus import ALL_FORMATS, FORMAT_NAMES, CorpusImage, corpus, make
from spice.codecs.lz import LZ_HEADER_SIZE, lz_decode, lz_encode, lz_encode_alpha
from spice.codecs.lz_layout import LzImageType, header_stride, lz_type_for_format
from spice.qxl import (
    SPICE_BITMAP_FMT_1BIT_LE,
    SPICE_BITMAP_FMT_8BIT,
    SPICE_BITMAP_FMT_8BIT_A,
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)

ROOT = Path(__file__).resolve().parent.parent


def encode(im: CorpusImage) -> bytes:
    return lz_encode(im.data, im.width, im.height, im.stride, im.fmt, im.top_down, im.palette)


def expected_rows(im: CorpusImage) -> np.ndarray:
    """What a decoder must give back: the unpadded rows, with the pad byte of
    32-bit pixels zero (decoders write 0 there) and 16-bit pixels compared
    without bit 15 (x1r5g5b5: clients ignore it, so matches may ignore it)."""
    rows = im.rows().copy()
    if im.fmt == SPICE_BITMAP_FMT_32BIT:
        rows.reshape(im.height, im.width, 4)[..., 3] = 0
    if im.fmt == SPICE_BITMAP_FMT_16BIT:
        return rows.view("<u2") & 0x7FFF
    return rows


def decoded_rows(im: CorpusImage, pixels: np.ndarray) -> np.ndarray:
    if im.fmt == SPICE_BITMAP_FMT_16BIT:
        return pixels.view("<u2") & 0x7FFF
    return pixels


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=[FORMAT_NAMES[f] for f in ALL_FORMATS])
def test_corpus_round_trip(fmt: int) -> None:
    for im in corpus((fmt,)):
        stream = encode(im)
        out = lz_decode(stream)
        assert out.lz_type == lz_type_for_format(fmt), im.name
        assert (out.width, out.height, out.top_down) == (im.width, im.height, im.top_down)
        assert out.stride == header_stride(out.lz_type, im.width)
        assert np.array_equal(decoded_rows(im, out.pixels), expected_rows(im)), im.name


def test_alpha_plane_round_trip() -> None:
    for im in corpus((SPICE_BITMAP_FMT_RGBA,)):
        stream = lz_encode_alpha(im.data, im.width, im.height, im.stride, im.top_down)
        out = lz_decode(stream)
        assert out.lz_type == LzImageType.XXXA
        alpha = im.rows().reshape(im.height, im.width, 4)[..., 3]
        assert np.array_equal(out.pixels, alpha), im.name


def test_header_layout() -> None:
    im = make("ui", SPICE_BITMAP_FMT_32BIT, 33, 7, top_down=False, pad=12)
    stream = encode(im)
    assert struct.unpack(">7I", stream[:LZ_HEADER_SIZE]) == (
        0x20205A4C, 0x00010001, LzImageType.RGB32, 33, 7, 33 * 4, 0)
    plt = make("text", SPICE_BITMAP_FMT_1BIT_LE, 13, 5, pad=3)
    header = struct.unpack(">7I", encode(plt)[:LZ_HEADER_SIZE])
    assert header[2:] == (LzImageType.PLT1_LE, 13, 5, 2, 1)  # 13 pixels fit in 2 bytes


def test_hand_written_streams_decode() -> None:
    # 40x1 RGB32: one literal pixel, then a 39-pixel run (distance 1 sent as
    # 0, length field 39 = 7 + extension byte 32).
    header = struct.pack(">7I", 0x20205A4C, 0x10001, LzImageType.RGB32, 40, 1, 160, 1)
    out = lz_decode(header + bytes([0, 0x11, 0x22, 0x33, 7 << 5, 32, 0]))
    assert np.array_equal(out.pixels.view("<u4"), np.full((1, 40), 0x332211, np.uint32))
    # 8196x1 A8: 8193 literal bytes, then a far match (distance 8193) copying
    # bytes 0..2: length field 1 means 3 bytes; distance 8193 - 1 - 8191 = 1
    # follows 0xff after the 0x1f distance bits.
    lit = (np.arange(8193) * 7 % 251).astype(np.uint8)
    body = bytearray()
    for k in range(0, 8193, 32):
        chunk = lit[k : k + 32]
        body += bytes([len(chunk) - 1]) + chunk.tobytes()
    body += bytes([(1 << 5) | 31, 255, 0, 1])
    header = struct.pack(">7I", 0x20205A4C, 0x10001, LzImageType.A8, 8196, 1, 8196, 0)
    out = lz_decode(header + bytes(body))
    assert np.array_equal(out.pixels[0, :8193], lit)
    assert np.array_equal(out.pixels[0, 8193:], lit[:3])
    assert not out.top_down


def test_far_repeats_round_trip() -> None:
    rng = np.random.default_rng(1)
    row = rng.integers(0, 256, 20000, dtype=np.uint8)  # incompressible within a row
    data = np.concatenate([row, row, row[::-1], row])  # repeats 20000 bytes back: far matches
    stream = lz_encode(data, 20000, 4, 20000, SPICE_BITMAP_FMT_8BIT, True)
    assert len(stream) < data.size * 0.6  # the repeats were found
    assert np.array_equal(lz_decode(stream).pixels.reshape(-1), data)


def test_compresses_screen_content() -> None:
    flat = make("flat", SPICE_BITMAP_FMT_32BIT, 640, 480)
    assert len(encode(flat)) < flat.data.size / 500  # runs cost a byte per 255 pixels
    text = make("text", SPICE_BITMAP_FMT_32BIT, 640, 480)
    assert len(encode(text)) < text.data.size / 10


def test_deterministic_and_accepts_other_dtypes() -> None:
    im = make("photo", SPICE_BITMAP_FMT_32BIT, 50, 20)
    as_words = im.data.view(np.uint32)
    assert encode(im) == lz_encode(as_words, 50, 20, 200, SPICE_BITMAP_FMT_32BIT, True)
    assert lz_encode(im.data.tobytes(), 50, 20, 200, SPICE_BITMAP_FMT_32BIT, True) == encode(im)


@pytest.mark.parametrize(
    "args",
    [
        (0, 4, 16, SPICE_BITMAP_FMT_32BIT),  # zero width
        (4, 0, 16, SPICE_BITMAP_FMT_32BIT),  # zero height
        (4, 4, 15, SPICE_BITMAP_FMT_32BIT),  # stride shorter than a row
        (4, 4, 16, 0),  # invalid format
        (4, 4, 16, 11),  # unknown format
        (4, 5, 16, SPICE_BITMAP_FMT_32BIT),  # buffer holds 4 rows only
        (40000, 40000, 160000, SPICE_BITMAP_FMT_32BIT),  # beyond the decoder's 1 GiB limit
    ],
)
def test_bad_bitmaps_are_refused(args: tuple[int, int, int, int]) -> None:
    width, height, stride, fmt = args
    with pytest.raises(ValueError):
        lz_encode(np.zeros(64, np.uint8), width, height, stride, fmt, True)


def test_palettes_clients_would_overrun_are_refused() -> None:
    data = np.array([0, 1, 2, 200], np.uint8)
    with pytest.raises(ValueError):
        lz_encode(data, 4, 1, 4, SPICE_BITMAP_FMT_8BIT, True, palette=np.zeros(16, np.uint32))
    assert lz_encode(data, 4, 1, 4, SPICE_BITMAP_FMT_8BIT, True,
                     palette=np.zeros(256, np.uint32))
    with pytest.raises(ValueError):
        lz_encode(data, 4, 1, 1, SPICE_BITMAP_FMT_1BIT_LE, True, palette=np.zeros(1, np.uint32))


# -- malformed streams ----------------------------------------------------------

VALID = [encode(make(kind, fmt, w, h, seed=3))
         for kind, fmt, w, h in (("text", SPICE_BITMAP_FMT_32BIT, 40, 12),
                                 ("ui", SPICE_BITMAP_FMT_RGBA, 17, 9),
                                 ("photo", SPICE_BITMAP_FMT_16BIT, 23, 4),
                                 ("text", SPICE_BITMAP_FMT_8BIT, 30, 6),
                                 ("ui", SPICE_BITMAP_FMT_8BIT_A, 12, 12))]


def decode_or_value_error(stream: bytes) -> None:
    try:
        out = lz_decode(stream)
    except ValueError:
        return
    assert out.pixels.shape[0] == out.height


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(VALID) - 1), cuts=st.lists(st.integers(0, 10**6), max_size=4),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=6),
       tail=st.binary(max_size=8))
def test_mutated_streams_fail_cleanly(which: int, cuts: list[int],
                                      flips: list[tuple[int, int]], tail: bytes) -> None:
    stream = bytearray(VALID[which])
    for pos, xor in flips:
        stream[pos % len(stream)] ^= xor
    for cut in cuts:
        stream = stream[: max(1, cut % (len(stream) + 1))]
    decode_or_value_error(bytes(stream) + tail)


@settings(max_examples=300, deadline=None)
@given(type_=st.integers(0, 13),
       width=st.one_of(st.integers(0, 300), st.integers(0, (1 << 32) - 1)),
       height=st.one_of(st.integers(0, 300), st.integers(0, (1 << 32) - 1)),
       stride=st.one_of(st.none(), st.integers(0, 300000)), top_down=st.integers(0, 2),
       body=st.binary(max_size=200))
def test_random_headers_and_bodies_fail_cleanly(type_: int, width: int, height: int,
                                                stride: int | None, top_down: int,
                                                body: bytes) -> None:
    if stride is None:  # consistent with the type, so decoding gets past the header
        stride = header_stride(LzImageType(type_), width) if 1 <= type_ <= 11 else width
        stride &= 0xFFFFFFFF
    header = struct.pack(">7I", 0x20205A4C, 0x10001, type_, width, height, stride, top_down)
    decode_or_value_error(header + body)


def test_malformed_streams_never_read_out_of_bounds() -> None:
    """The same fuzzing with numba bounds checking on, in a fresh process: an
    out-of-bounds access in the decoder would raise IndexError there."""
    script = textwrap.dedent("""
        import random, sys
        from spice.codecs.lz import lz_decode
        streams = [bytes.fromhex(h) for h in sys.stdin.read().split()]
        rng = random.Random(5)
        for k in range(600):
            s = bytearray(rng.choice(streams))
            for _ in range(rng.randint(1, 4)):
                s[rng.randrange(len(s))] ^= rng.randint(1, 255)
            if rng.random() < 0.3:
                s = s[: rng.randrange(1, len(s))]
            try:
                lz_decode(bytes(s))
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

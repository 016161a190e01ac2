"""LZ4 image payloads: round trips, the block framing, decoding the way
spice-common's canvas does with the system liblz4, and malformed payloads."""

from __future__ import annotations

import ctypes
import ctypes.util
import struct

import numpy as np
import pytest
from firmware_harness import missing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spice.codecs.corpus import RGB_FORMATS, CorpusImage, corpus, make
from spice.codecs.lz4img import lz4_decode, lz4_encode
from spice.qxl import (
    SPICE_BITMAP_FMT_8BIT,
    SPICE_BITMAP_FMT_8BIT_A,
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)


def encode(im: CorpusImage) -> bytes:
    return lz4_encode(im.data, im.width, im.height, im.stride, im.fmt, im.top_down)


def blocks(payload: bytes) -> list[bytes]:
    out, pos = [], 2
    while pos < len(payload):
        (n,) = struct.unpack_from(">I", payload, pos)
        out.append(payload[pos + 4 : pos + 4 + n])
        pos += 4 + n
    assert pos == len(payload)
    return out


def test_corpus_round_trip() -> None:
    for im in corpus(RGB_FORMATS):
        payload = encode(im)
        assert payload[:2] == bytes((1 if im.top_down else 0, im.fmt))
        out = lz4_decode(payload, im.width, im.height)
        assert (out.fmt, out.top_down) == (im.fmt, im.top_down)
        assert np.array_equal(out.pixels, im.rows()), im.name


def test_large_images_are_split_into_chained_blocks() -> None:
    im = make("ui", SPICE_BITMAP_FMT_32BIT, 1024, 300)  # 1.2 MB of pixels
    payload = encode(im)
    parts = blocks(payload)
    assert len(parts) > 1
    assert np.array_equal(lz4_decode(payload, 1024, 300).pixels, im.rows())
    # Blocks are 64 rows here; the second reaches back into the first, so
    # alone it does not decode.
    second = payload[:2] + struct.pack(">I", len(parts[1])) + parts[1]
    with pytest.raises(ValueError):
        lz4_decode(second, 1024, 64)


def _liblz4() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("lz4")
    return ctypes.CDLL(name) if name else None


def client_decode(lib: ctypes.CDLL, payload: bytes, width: int, height: int) -> np.ndarray:
    """canvas_get_lz4's loop: blocks decoded back to back with
    LZ4_decompress_safe_continue into one buffer."""
    lib.LZ4_createStreamDecode.restype = ctypes.c_void_p
    lib.LZ4_freeStreamDecode.argtypes = [ctypes.c_void_p]
    lib.LZ4_decompress_safe_continue.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                 ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    bpp = {6: 2, 7: 3, 8: 4, 9: 4}[payload[1]]
    out = np.zeros(width * height * bpp, np.uint8)
    stream = lib.LZ4_createStreamDecode()
    try:
        done = 0
        for block in blocks(payload):
            n = lib.LZ4_decompress_safe_continue(stream, block, out.ctypes.data + done, len(block),
                                                 out.size - done)
            assert n > 0
            done += n
    finally:
        lib.LZ4_freeStreamDecode(stream)
    assert done == out.size
    return out.reshape(height, -1)


def test_liblz4_streaming_decoder_agrees() -> None:
    lib = _liblz4()
    if lib is None:
        missing("liblz4 is not installed (Debian: liblz4-1)")
    images = corpus(RGB_FORMATS)[::3] + [make("text", SPICE_BITMAP_FMT_32BIT, 900, 400),
                                         make("photo", SPICE_BITMAP_FMT_16BIT, 700, 300)]
    for im in images:
        assert np.array_equal(client_decode(lib, encode(im), im.width, im.height), im.rows())


@pytest.mark.parametrize("fmt", [SPICE_BITMAP_FMT_8BIT, SPICE_BITMAP_FMT_8BIT_A, 0, 42])
def test_formats_clients_cannot_decode_are_refused(fmt: int) -> None:
    with pytest.raises(ValueError):
        lz4_encode(np.zeros(100, np.uint8), 10, 10, 10, fmt, True)


def test_bad_bitmaps_are_refused() -> None:
    with pytest.raises(ValueError):
        lz4_encode(np.zeros(100, np.uint8), 10, 10, 40, SPICE_BITMAP_FMT_32BIT, True)
    with pytest.raises(ValueError):
        lz4_encode(np.zeros(100, np.uint8), 0, 10, 40, SPICE_BITMAP_FMT_32BIT, True)


# -- malformed payloads ---------------------------------------------------------

SAMPLES = [(encode(im), im.width, im.height) for im in (
    make("ui", SPICE_BITMAP_FMT_32BIT, 300, 250), make("text", SPICE_BITMAP_FMT_RGBA, 20, 7),
    make("photo", SPICE_BITMAP_FMT_16BIT, 9, 9))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(SAMPLES) - 1), cut=st.integers(0, 10**6),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=5),
       tail=st.binary(max_size=8), resize=st.integers(-2, 2))
def test_mutated_payloads_fail_cleanly(which: int, cut: int, flips: list[tuple[int, int]],
                                       tail: bytes, resize: int) -> None:
    payload, width, height = SAMPLES[which]
    data = bytearray(payload)
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if cut % 3 == 0:
        data = data[: cut % (len(data) + 1)]
    try:
        out = lz4_decode(bytes(data) + tail, width, max(0, height + resize))
    except ValueError:
        return
    assert out.pixels.shape[0] == height + resize

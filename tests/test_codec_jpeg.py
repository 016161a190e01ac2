"""JPEG: streams pinned to libjpeg-turbo's output with spice-server's
settings, decoded by libjpeg's djpeg, bitmap formats, JPEG_ALPHA."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import threading

import numpy as np
import pytest

from spice.codecs.corpus import RGB_FORMATS, pack, picture
from spice.codecs.jpeg import (
    SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN,
    bitmap_to_rgb,
    jpeg_alpha_encode,
    jpeg_encode,
    jpeg_encode_bitmap,
    mjpeg_encode_frame,
)
from spice.codecs.jpeg_tables import LUMINANCE_QUANT, ZIGZAG, scaled_quant
from spice.codecs.lz import lz_decode
from spice.qxl import SPICE_BITMAP_FMT_8BIT, SPICE_BITMAP_FMT_16BIT, SPICE_BITMAP_FMT_RGBA


def djpeg(data: bytes) -> np.ndarray:
    """Decode with libjpeg (Debian package libjpeg-turbo-progs)."""
    exe = shutil.which("djpeg")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("djpeg (Debian package libjpeg-turbo-progs) is required")
        pytest.skip("djpeg (Debian package libjpeg-turbo-progs) is not installed")
    ppm = subprocess.run([exe, "-ppm"], input=data, capture_output=True, check=True).stdout
    magic, w, h, maxval, rest = ppm.split(maxsplit=4)
    assert magic == b"P6" and maxval == b"255"
    w, h = int(w), int(h)
    return np.frombuffer(rest[: w * h * 3], np.uint8).reshape(h, w, 3)


def cjpeg(rgb: np.ndarray, quality: int, fast: bool) -> bytes:
    """libjpeg-turbo's own encoding with spice-server's settings (the
    defaults: 4:2:0, standard tables; quality forced to baseline)."""
    exe = shutil.which("cjpeg")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("cjpeg (Debian package libjpeg-turbo-progs) is required")
        pytest.skip("cjpeg (Debian package libjpeg-turbo-progs) is not installed")
    h, w, _ = rgb.shape
    ppm = b"P6\n%d %d\n255\n" % (w, h) + rgb.tobytes()
    args = [exe, "-quality", str(quality), "-baseline", "-dct", "fast" if fast else "int"]
    return subprocess.run(args, input=ppm, capture_output=True, check=True).stdout


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def segments(stream: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of every segment up to the scan data."""
    assert stream[:2] == b"\xff\xd8" and stream[-2:] == b"\xff\xd9"
    out, pos = [], 2
    while True:
        marker, length = struct.unpack_from(">HH", stream, pos)
        out.append((marker, stream[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        if marker == 0xFFDA:
            return out


def synthetic(w: int, h: int) -> np.ndarray:
    """Integer-only RGB content (stable across numpy versions)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.uint64)
    noise = ((x * np.uint64(2654435761) + y * np.uint64(40503)) >> np.uint64(9)) & np.uint64(15)
    r = (x * np.uint64(255) // np.uint64(max(w - 1, 1)) + noise) & np.uint64(255)
    g = (y * np.uint64(255) // np.uint64(max(h - 1, 1)) + np.uint64(3) * noise) & np.uint64(255)
    stripes = ((x // np.uint64(5)) + (y // np.uint64(7))) % np.uint64(3) == 0
    b = np.where(stripes, 200, 30).astype(np.uint64)
    return np.stack([r, g, b], -1).astype(np.uint8)


# Length and sha256 (first half) of libjpeg-turbo 2.1's output for these
# images with spice-server's settings (jpeg_set_defaults, jpeg_set_quality
# forcing baseline, the fast DCT for video frames), recorded by running it
# during development.  Odd sizes exercise edge padding and dummy blocks.
REFERENCE_STREAMS = [
    # width, height, quality, fast DCT, length, sha256
    (96, 64, 85, False, 3720, "e4685b7484190aa9c81a231bb2efc356"),
    (37, 23, 85, False, 1261, "38064a574f6a091cd317b5691d54b486"),
    (1, 1, 85, False, 634, "7d0f484b688a4848b75f6a9473e1d5c3"),
    (101, 67, 20, True, 1577, "11e5cba41ebc2bc387e4491885ce2890"),
    (64, 48, 80, True, 1998, "7e1a1b0ba489b65bc2af4c44492d88e7"),
    (255, 3, 100, False, 4094, "f4ad5bf6be229cfaceef03fa947abcd3"),
    (3, 255, 1, False, 727, "394aab465166bc78f15656094003ab86"),
]


@pytest.mark.parametrize("w,h,quality,fast,length,digest", REFERENCE_STREAMS)
def test_stream_identical_to_libjpeg(w, h, quality, fast, length, digest) -> None:
    stream = jpeg_encode(synthetic(w, h), quality, fast_dct=fast)
    assert len(stream) == length
    assert hashlib.sha256(stream).hexdigest()[:32] == digest


@pytest.mark.parametrize("seed", range(6))
def test_identical_to_cjpeg(seed: int) -> None:
    # random sizes (edge blocks, dummy blocks, odd rows), qualities, both DCTs,
    # content from noise (long codes, 0xFF bytes to stuff) to smooth
    rng = np.random.default_rng(seed)
    for _ in range(8):
        w, h = (int(v) for v in rng.integers(1, 120, 2))
        quality, fast = int(rng.integers(1, 101)), bool(rng.integers(0, 2))
        y, x = np.mgrid[0:h, 0:w]
        smooth = np.stack([(x * 7 + y) % 256, (y * 3) % 256, (x * y) % 256], -1)
        noise = rng.integers(0, 1 + 40 * int(rng.integers(0, 7)), (h, w, 3))
        rgb = np.clip(smooth + noise, 0, 255).astype(np.uint8)
        assert jpeg_encode(rgb, quality, fast_dct=fast) == cjpeg(rgb, quality, fast)


def test_output_larger_than_the_first_buffer_identical_to_cjpeg() -> None:
    # Each thread codes into a buffer of its own that starts at 1 MiB and is
    # replaced by a larger one when the next row might not fit; noise at
    # quality 100 needs more.  A new thread starts with the first buffer.
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (720, 960, 3)).astype(np.uint8)
    for fast in (False, True):
        out: list[bytes] = []
        t = threading.Thread(target=lambda fast=fast, out=out: out.append(
            jpeg_encode(rgb, 100, fast_dct=fast)))
        t.start()
        t.join()
        assert len(out[0]) > 1 << 20
        assert out[0] == cjpeg(rgb, 100, fast)
        assert jpeg_encode(rgb[:16, :16], 100, fast_dct=fast) == cjpeg(rgb[:16, :16], 100, fast)


def test_unaligned_and_padded_bitmaps_encode_alike() -> None:
    # 32-bit pixels in rows of whole words are read in place (aligned or not)
    # and converted otherwise
    rgb, alpha = picture("photo", 50, 30, seed=4)
    data, stride, _ = pack(rgb, alpha, SPICE_BITMAP_FMT_RGBA)
    raw = bytes(np.asarray(data, np.uint8).reshape(-1))
    shifted = np.frombuffer(b"\0" + raw, np.uint8)[1:]  # off by one byte
    padded, pstride, _ = pack(rgb, alpha, SPICE_BITMAP_FMT_RGBA, pad=2)  # stride % 4 == 2
    expected = jpeg_encode(rgb, 85)
    assert jpeg_encode_bitmap(raw, 50, 30, stride, SPICE_BITMAP_FMT_RGBA, True) == expected
    assert jpeg_encode_bitmap(shifted, 50, 30, stride, SPICE_BITMAP_FMT_RGBA, True) == expected
    assert jpeg_encode_bitmap(padded, 50, 30, pstride, SPICE_BITMAP_FMT_RGBA, True) == expected
    # the last row may end at its last pixel
    wide, wstride, _ = pack(rgb, alpha, SPICE_BITMAP_FMT_RGBA, pad=8)
    trimmed = np.asarray(wide, np.uint8).reshape(-1)[:-8]
    assert jpeg_encode_bitmap(trimmed, 50, 30, wstride, SPICE_BITMAP_FMT_RGBA, True) == expected


def test_stream_layout() -> None:
    stream = jpeg_encode(synthetic(50, 30), 85)
    segs = segments(stream)
    markers = [m for m, _ in segs]
    # SOI, JFIF, two DQT, baseline SOF0, four DHT, SOS.
    assert markers == [0xFFE0, 0xFFDB, 0xFFDB, 0xFFC0] + [0xFFC4] * 4 + [0xFFDA]
    assert segs[0][1][:5] == b"JFIF\x00"
    luma = np.frombuffer(segs[1][1][1:], np.uint8)
    np.testing.assert_array_equal(luma, scaled_quant(LUMINANCE_QUANT, 85)[ZIGZAG])
    precision, height, width, ncomp = struct.unpack_from(">BHHB", segs[3][1])
    assert (precision, width, height, ncomp) == (8, 50, 30, 3)
    assert segs[3][1][6:] == bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])  # 4:2:0


@pytest.mark.parametrize("kind", ["photo", "gradient", "text", "ui", "flat"])
def test_decodes_with_libjpeg(kind: str) -> None:
    rgb, _ = picture(kind, 320, 240, seed=0)
    stream = jpeg_encode(rgb, 85)
    decoded = djpeg(stream)
    assert decoded.shape == rgb.shape
    # Photographs must survive quality 85 well; sharp synthetic edges lose
    # more to 4:2:0 chroma but stay recognisable.
    assert psnr(decoded, rgb) > (35.0 if kind in ("photo", "gradient", "flat") else 28.0)


@pytest.mark.parametrize("size", [(1, 1), (17, 9), (3, 250), (250, 3)])
def test_odd_sizes_and_video_settings_decode(size: tuple[int, int]) -> None:
    rgb, _ = picture("photo", *size, seed=2)
    for quality, fast in ((85, False), (20, True), (80, True), (100, False)):
        decoded = djpeg(jpeg_encode(rgb, quality, fast_dct=fast))
        assert decoded.shape == rgb.shape
        if quality >= 80:
            assert psnr(decoded, rgb) > 30.0


def test_quality_changes_size_and_is_clamped() -> None:
    rgb, _ = picture("photo", 128, 96, seed=1)
    sizes = [len(jpeg_encode(rgb, q)) for q in (20, 50, 85, 100)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] / 3
    assert jpeg_encode(rgb, 0) == jpeg_encode(rgb, 1)
    assert jpeg_encode(rgb, 150) == jpeg_encode(rgb, 100)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        jpeg_encode(np.zeros((4, 4, 4), np.uint8), 85)
    with pytest.raises(ValueError):
        jpeg_encode(np.zeros((4, 4, 3), np.uint16), 85)
    with pytest.raises(ValueError):
        jpeg_encode(np.zeros((0, 4, 3), np.uint8), 85)
    with pytest.raises(ValueError):
        jpeg_encode_bitmap(np.zeros(64, np.uint8), 8, 8, 8, SPICE_BITMAP_FMT_8BIT, True)
    with pytest.raises(ValueError):
        jpeg_encode_bitmap(np.zeros(100, np.uint8), 8, 8, 32, SPICE_BITMAP_FMT_RGBA, True)


@pytest.mark.parametrize("fmt", RGB_FORMATS)
def test_bitmap_formats_and_row_order(fmt: int) -> None:
    rgb, alpha = picture("photo", 45, 29, seed=3)
    top, stride, _ = pack(rgb, alpha, fmt, pad_x=0x77)
    bottom, bstride, _ = pack(rgb, alpha, fmt, top_down=False, pad=6)
    # What the encoder sees: the colour as the server converts it.
    seen = bitmap_to_rgb(top, 45, 29, stride, fmt, True)
    if fmt == SPICE_BITMAP_FMT_16BIT:
        expected = (rgb >> 3 << 3) | (rgb >> 5)
    else:
        expected = rgb
    np.testing.assert_array_equal(seen, expected)
    a = jpeg_encode_bitmap(top, 45, 29, stride, fmt, True)
    b = jpeg_encode_bitmap(bottom, 45, 29, bstride, fmt, False)
    assert a == b == jpeg_encode(seen, 85)


@pytest.mark.parametrize("top_down", [True, False])
def test_jpeg_alpha(top_down: bool) -> None:
    rgb, alpha = picture("photo", 60, 40, seed=5)
    data, stride, _ = pack(rgb, alpha, SPICE_BITMAP_FMT_RGBA, top_down=top_down, pad=4)
    payload = jpeg_alpha_encode(data, 60, 40, stride, top_down, 85)
    assert payload.flags == (SPICE_JPEG_ALPHA_FLAGS_TOP_DOWN if top_down else 0)
    jpeg, lz = payload.data[: payload.jpeg_size], payload.data[payload.jpeg_size :]
    assert jpeg == jpeg_encode(rgb, 85)  # the colour, always top row first
    assert psnr(djpeg(jpeg), rgb) > 35.0
    # The alpha plane in memory row order, its direction in the LZ header.
    dec = lz_decode(lz)
    assert (dec.width, dec.height, dec.top_down) == (60, 40, top_down)
    np.testing.assert_array_equal(dec.pixels, alpha if top_down else alpha[::-1])


@pytest.mark.parametrize("top_down", [True, False])
@pytest.mark.parametrize("fmt", RGB_FORMATS)
@pytest.mark.parametrize("pad", [8, 2])  # 32-bit rows of whole words are read in place
def test_mjpeg_frame_area_in_memory_row_order(top_down: bool, fmt: int, pad: int) -> None:
    rgb, alpha = picture("photo", 64, 48, seed=6)
    data, stride, _ = pack(rgb, alpha, fmt, top_down=top_down, pad=pad)
    top, left, bottom, right = 5, 7, 37, 50
    frame = mjpeg_encode_frame(data, 64, 48, stride, fmt, (top, left, bottom, right), top_down,
                               60)  # fmt: skip
    area = bitmap_to_rgb(data, 64, 48, stride, fmt, top_down)[top:bottom, left:right]
    # A bottom-up source is sent upside down; the client flips it.
    expected = area if top_down else area[::-1]
    assert frame == jpeg_encode(np.ascontiguousarray(expected), 60, fast_dct=True)
    assert psnr(djpeg(frame), expected) > 30.0
    with pytest.raises(ValueError):
        mjpeg_encode_frame(data, 64, 48, stride, fmt, (0, 0, 49, 10), True, 60)


def test_later_video_frames_leave_out_the_huffman_tables() -> None:
    # libjpeg-turbo's second frame from the same compressor (the server keeps
    # one per stream): quantisation tables again, Huffman tables not.
    rgb = synthetic(80, 40)
    later = jpeg_encode(rgb, 30, fast_dct=True, huffman_tables=False)
    assert (len(later), hashlib.sha256(later).hexdigest()[:32]) == (
        775,
        "b8349fe0d2d3e2f21ca3dbe45380c5e6",
    )
    assert 0xFFC4 not in [m for m, _ in segments(later)]
    first = jpeg_encode(rgb, 30, fast_dct=True)
    assert later[-200:] == first[-200:]  # same scan data
    # libjpeg decodes it with the standard tables.
    np.testing.assert_array_equal(djpeg(later), djpeg(first))
    data, stride, _ = pack(rgb, np.zeros((40, 80), np.uint8), SPICE_BITMAP_FMT_RGBA)
    area = (0, 0, 40, 80)
    assert mjpeg_encode_frame(data, 80, 40, stride, SPICE_BITMAP_FMT_RGBA, area, True, 30) == first
    assert mjpeg_encode_frame(data, 80, 40, stride, SPICE_BITMAP_FMT_RGBA, area, True, 30,
                              first_frame=False) == later  # fmt: skip

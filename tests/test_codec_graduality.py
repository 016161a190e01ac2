"""The graduality classifier: hand-computed sample scores and corpus content."""

from __future__ import annotations

import numpy as np
import pytest

from spice.codecs.corpus import RGB_FORMATS, make, pack
from spice.codecs.graduality import (
    BITMAP_GRADUAL_HIGH,
    BITMAP_GRADUAL_LOW,
    BITMAP_GRADUAL_MEDIUM,
    bitmap_graduality,
)
from spice.qxl import (
    SPICE_BITMAP_FMT_8BIT,
    SPICE_BITMAP_FMT_16BIT,
    SPICE_BITMAP_FMT_24BIT,
    SPICE_BITMAP_FMT_32BIT,
    SPICE_BITMAP_FMT_RGBA,
)


def classify(rgb: np.ndarray, fmt: int = SPICE_BITMAP_FMT_32BIT, **kw) -> int:
    h, w, _ = rgb.shape
    data, stride, _ = pack(rgb.astype(np.uint8), np.full((h, w), 255, np.uint8), fmt)
    return bitmap_graduality(data, w, h, stride, fmt, **kw)


def square(p1, p2, p3) -> np.ndarray:
    """A 2x2 image sampled once: pixel 0 against its right, lower and
    lower-right neighbours."""
    return np.array([[(0, 0, 0), p1], [p2, p3]])


@pytest.mark.parametrize(
    "p1,p2,p3,expected",
    [
        # Three small differences: 3 x -0.25 -> average -0.25.
        ((8, 0, 0), (0, 8, 0), (0, 0, 8), BITMAP_GRADUAL_HIGH),
        # A small difference (-0.25), an equal pair (+0.5) and a contrasting
        # pair (+1.0, red 100 >= 60) -> 1.25 / 3.
        ((8, 0, 0), (0, 0, 0), (100, 0, 0), BITMAP_GRADUAL_LOW),
        # Differences just under the contrast threshold are gradual.
        ((59, 0, 0), (0, 59, 0), (0, 0, 59), BITMAP_GRADUAL_HIGH),
        # Four identical pixels: the square scores 0, which is "medium".
        ((0, 0, 0), (0, 0, 0), (0, 0, 0), BITMAP_GRADUAL_MEDIUM),
    ],
)
def test_single_sample(p1, p2, p3, expected) -> None:
    assert classify(square(p1, p2, p3)) == expected


def test_contrast_threshold_of_16bit_pixels() -> None:
    # In 5-bit channels a difference of 8 (64 in 8 bits) is already contrast.
    img = square((64, 0, 0), (64, 0, 0), (64, 0, 0))
    assert classify(img, SPICE_BITMAP_FMT_16BIT) == BITMAP_GRADUAL_LOW
    # 7 steps (56) are not, neither in 16 nor in 32 bits.
    img = square((56, 0, 0), (56, 0, 0), (56, 0, 0))
    assert classify(img, SPICE_BITMAP_FMT_16BIT) == BITMAP_GRADUAL_HIGH
    assert classify(img, SPICE_BITMAP_FMT_32BIT) == BITMAP_GRADUAL_HIGH


def test_high_threshold_differs_between_16_and_32_bits() -> None:
    # 150x3: samples at pixels 75, 90, ... 285 (15 squares).  Only the first
    # square is gradual (-0.75); the one sampled at row 1, x=75 shares two
    # of its pixels and nets 0.  Average -0.75 / 45 = -0.0167: photo-like
    # for 16-bit (< 0), only medium for 32-bit (>= -0.03).
    img = np.full((3, 150, 3), 100)
    img[0, 76] = img[1, 75] = img[1, 76] = (100, 100, 108)
    assert classify(img, SPICE_BITMAP_FMT_16BIT) == BITMAP_GRADUAL_HIGH
    assert classify(img, SPICE_BITMAP_FMT_32BIT) == BITMAP_GRADUAL_MEDIUM
    assert classify(img, SPICE_BITMAP_FMT_24BIT) == BITMAP_GRADUAL_MEDIUM


def test_single_row_or_column_is_artificial() -> None:
    assert classify(np.zeros((1, 40, 3))) == BITMAP_GRADUAL_LOW
    assert classify(np.zeros((40, 1, 3))) == BITMAP_GRADUAL_LOW


def test_chunks_are_scored_separately() -> None:
    # One chunk of 2 rows is a single gradual square; split into two
    # one-row chunks each counts as one artificial sample (score 1.0).
    img = square((8, 0, 0), (0, 8, 0), (0, 0, 8))
    assert classify(img) == BITMAP_GRADUAL_HIGH
    assert classify(img, chunk_heights=[1, 1]) == BITMAP_GRADUAL_LOW
    with pytest.raises(ValueError):
        classify(img, chunk_heights=[1, 2])


@pytest.mark.parametrize("fmt", RGB_FORMATS)
def test_corpus_content(fmt: int) -> None:
    def level(kind: str) -> int:
        im = make(kind, fmt, 320, 200, seed=4)
        return bitmap_graduality(im.data, im.width, im.height, im.stride, im.fmt)

    assert level("photo") == BITMAP_GRADUAL_HIGH
    assert level("text") != BITMAP_GRADUAL_HIGH
    assert level("ui") != BITMAP_GRADUAL_HIGH
    assert level("flat") == BITMAP_GRADUAL_MEDIUM


def test_alpha_is_ignored_and_bad_input_rejected() -> None:
    h, w = 64, 64
    im = make("photo", SPICE_BITMAP_FMT_RGBA, w, h, seed=1)
    opaque = im.data.reshape(h, -1).copy()
    opaque[:, 3::4] = 255
    a = bitmap_graduality(im.data, w, h, im.stride, im.fmt)
    assert a == bitmap_graduality(opaque, w, h, im.stride, im.fmt) == BITMAP_GRADUAL_HIGH
    with pytest.raises(ValueError):
        bitmap_graduality(im.data, w, h, im.stride, SPICE_BITMAP_FMT_8BIT)
    with pytest.raises(ValueError):
        bitmap_graduality(im.data, w, h, w * 4 - 1, im.fmt)
    with pytest.raises(ValueError):
        bitmap_graduality(im.data[:100], w, h, im.stride, im.fmt)

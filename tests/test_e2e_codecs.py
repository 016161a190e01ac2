"""Every image-compression setting through spice-gtk: a corpus of images in
every bitmap format (text, gradients, photo-like, flat, a UI mock-up, odd
sizes such as 1x1, 1xN and 4097x3, bottom-up and padded rows) goes out as
DRAW_COPYs; spice-gtk (GObject introspection under Debian's python3)
decodes them with the real C decoders and its primary must equal the
server's canvas pixel for pixel.  The Python reference decoders see the
same corpus in test_image_compression.py.

Lossless settings only: the codecs here must be bit-exact.  Under CI=true
a missing client fails the test.

1BIT_LE and 4BIT_LE are left out: spice-common's canvas does not draw them
(spice-gtk aborts on such a BITMAP in spice_bitmap_to_pixman, and the
server canvas, which follows spice-common, skips the draw), while inside an
LZ_PLT image spice-gtk does decode them: there is no common picture to
compare."""

from __future__ import annotations

import time

import numpy as np
import pytest
from real_clients import GtkReader, poll, require_gi
from spice_harness import Harness, copy_cmd, primary_create

from spice import qxl
from spice.codecs import corpus
from spice.options import SpiceOptions
from spice.protocol import ImageCompression

pytestmark = pytest.mark.e2e

W = 4104  # the 4097x3 image fits


def layout(images) -> tuple[list[tuple[int, int]], int]:
    """Shelf-pack the images left to right, top to bottom: (top, left) each."""
    x = y = shelf = 0
    spots = []
    for img in images:
        if x + img.width > W:
            x, y, shelf = 0, y + shelf + 1, 0
        spots.append((y, x))
        x += img.width + 1
        shelf = max(shelf, img.height)
    return spots, y + shelf + 1


def bitmap(img, n: int) -> qxl.BitmapImage:
    pal = None
    if img.palette is not None:
        pal = qxl.Palette(0x100 + img.fmt, img.palette.astype(np.uint32))
    desc = qxl.ImageDescriptor((n + 1) << 32, qxl.SPICE_IMAGE_TYPE_BITMAP, 0, img.width,
                               img.height)
    return qxl.BitmapImage(desc, img.fmt, qxl.QXL_BITMAP_TOP_DOWN if img.top_down else 0,
                           img.width, img.height, img.stride, pal, img.data)


FORMATS = tuple(f for f in corpus.ALL_FORMATS
                if f not in (qxl.SPICE_BITMAP_FMT_1BIT_LE, qxl.SPICE_BITMAP_FMT_4BIT_LE))


def wait_equal(reader: GtkReader, want: np.ndarray) -> np.ndarray:
    return poll(reader.dump, lambda got: got.shape == want.shape and
                ((got & 0xFFFFFF) == want).all())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    def rgb(x):
        return np.stack([(x >> s) & 255 for s in (16, 8, 0)], -1).astype(np.float64)
    mse = np.mean((rgb(a) - rgb(b)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


CASES = [  # (server image-compression, client preferred compression or None, codec seen)
    ("off", None, "bitmap"),
    ("auto_glz", None, "glz"),
    ("auto_lz", None, "lz"),
    ("quic", None, "quic"),
    ("glz", None, "glz"),
    ("lz", None, "lz_plt"),
    ("lz4", None, "lz4"),
    ("auto_glz", ImageCompression.LZ4, "lz4"),
    ("off", ImageCompression.QUIC, "quic"),
]


@pytest.mark.parametrize("setting,preferred,seen", CASES,
                         ids=[f"{s}-{p.name.lower() if p else 'server'}" for s, p, _ in CASES])
def test_spice_gtk_decodes_every_image_like_the_server(setting, preferred, seen, monkeypatch):
    run(setting, preferred, seen, corpus.corpus(FORMATS), monkeypatch)


@pytest.mark.parametrize("setting,seen", [("auto_glz", "glz"), ("quic", "quic"),
                                          ("lz4", "lz4")])
def test_spice_gtk_decodes_screen_sized_images(setting, seen, monkeypatch):
    """1024x768 desktop-like, text, photo, gradient and flat screens."""
    run(setting, None, seen, corpus.bench_corpus(), monkeypatch)


def test_spice_gtk_decodes_zlib_wrapped_glz():
    """zlib-glz-wan-compression=always: ZLIB_GLZ_RGB, still bit-exact."""
    run("auto_glz", None, "zlib_glz", corpus.corpus(FORMATS), None, zlib_glz="always")


def test_spice_gtk_decodes_jpeg_within_its_loss():
    """jpeg-wan-compression=always: photo-like images go out as JPEG (and
    JPEG_ALPHA); the rest stays exact, the photos close."""
    run("auto_glz", None, "jpeg", corpus.corpus(FORMATS), None, jpeg="always")


def run(setting: str, preferred: ImageCompression | None, seen: str, images: list,
        monkeypatch, jpeg: str = "never", zlib_glz: str = "never") -> None:
    require_gi()
    spots, height = layout(images)
    opts = SpiceOptions(port=0, disable_ticketing=True, image_compression=setting,
                        streaming_video="off", jpeg_wan_compression=jpeg,
                        zlib_glz_wan_compression=zlib_glz)
    h = Harness(opts)
    reader = None
    try:
        create, _mem = primary_create(W, height)
        h.worker.create_primary_surface(create)
        h.worker.start()
        if preferred is not None and monkeypatch is not None:
            monkeypatch.setenv("GI_READER_PREFERRED_COMPRESSION", str(int(preferred)))
        reader = GtkReader(h.port)
        reader.expect("mark")
        if preferred is not None:
            time.sleep(0.3)  # the preference arrives right after the channel is up
        for n, (img, (top, left)) in enumerate(zip(images, spots, strict=True)):
            h.qxl.push(copy_cmd(h.qxl.token(), (top, left, top + img.height, left + img.width),
                                bitmap(img, n)))
        h.qxl.wait_drained()
        want = h.call(lambda: h.server.screendump(0))
        if jpeg == "always":
            got = poll(reader.dump, lambda got: got.shape == want.shape and
                       psnr(got & 0xFFFFFF, want) > 35) & 0xFFFFFF
            assert got.shape == want.shape and psnr(got, want) > 35
        else:
            got = wait_equal(reader, want)
            bad = np.argwhere((got & 0xFFFFFF) != want)
            assert not len(bad), (f"{len(bad)} pixels differ, first at {bad[0]}: "
                                  f"{int(got[tuple(bad[0])]):#x} != "
                                  f"{int(want[tuple(bad[0])]):#x}")
        stats = h.call(h.server.stats)
        assert stats.get(f"display0_images_{seen}", 0) > 0, {
            k: v for k, v in stats.items() if k.startswith("display0_images_") and
            k.count("_") == 2}
    finally:
        if reader is not None:
            reader.close()
        h.close()

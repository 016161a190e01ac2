"""Compile the numba kernels into numba's cache before the first session.

numba compiles a kernel the first time it meets new argument types and
keeps the machine code in ``__pycache__`` next to the source.  A fresh
checkout has no cache, so the first session paid for every compile on the
red worker, as it first met each kind of work: about 20 s on this project's
2-core machines (region algebra 5.7 s, the MJPEG encoder 6.6 s, LZ 2.2 s,
...), with the client's picture standing still meanwhile.  ``setup.sh``
runs this once per version of the kernels' sources.

Four parts run side by side (each compile uses one core), then once more
one after the other: numba updates a cache index by reading and rewriting
it, so two processes saving signatures of one kernel at the same moment can
drop one, and the second pass compiles whatever was dropped (a few seconds
when nothing was).

* ``machine``: the default guest boots headless with SPICE on a free
  loopback port and a display client is served until the demo's video
  stream has sent frames -- the worker's own calls, with the argument
  types it really passes (guest memory views, read-only regions);
* ``suites``: the guest driver test suites (fills, copies, blends, text,
  strokes, transparency, alpha blending, surfaces and UPDATE_AREA), so the
  canvas kernels they reach meet their real arguments;
* ``canvas``: the draws the bundled guests never send (ROP3, COMPOSITE,
  masks), straight on the canvas;
* ``codecs``: every image codec on a small corpus in every format it
  codes, for the encodings the demo does not ask for, and the region
  algebra on regions of several rectangles.

Run directly: ``.venv/bin/python tools/warm_kernels.py`` (exit status 0
when every part finished).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "tests"))

STREAM_FRAMES = 10  # STREAM_DATA messages the client waits for
MACHINE_TIMEOUT_S = 120.0  # the stream runs after about 20 s when every kernel compiles


def warm_codecs() -> None:
    import numpy as np

    from spice import region
    from spice.codecs import corpus
    from spice.codecs.glz import GlzDictionary, glz_encode
    from spice.codecs.graduality import bitmap_graduality
    from spice.codecs.jpeg import jpeg_alpha_encode, jpeg_encode_bitmap, mjpeg_encode_frame
    from spice.codecs.lz import lz_encode
    from spice.codecs.lz4img import lz4_encode
    from spice.codecs.quic import quic_encode
    from spice.qxl import SPICE_BITMAP_FMT_RGBA

    glz = GlzDictionary(1 << 20)
    for fmt in corpus.ALL_FORMATS:
        img = corpus.make("photo", fmt, 48, 32)
        # guest bitmaps reach the encoders as writable views of guest memory
        px = np.frombuffer(bytearray(img.data), np.uint8)
        args = (px, img.width, img.height, img.stride, fmt, img.top_down)
        lz_encode(*args, palette=img.palette)
        if fmt in corpus.RGB_FORMATS:
            quic_encode(*args)
            glz_encode(glz, *args)
            lz4_encode(*args)
            bitmap_graduality(px, img.width, img.height, img.stride, fmt)
            jpeg_encode_bitmap(*args)
            mjpeg_encode_frame(px, img.width, img.height, img.stride, fmt,
                               (0, 0, img.height, img.width), img.top_down, 70, True)
        if fmt == SPICE_BITMAP_FMT_RGBA:
            jpeg_alpha_encode(px, img.width, img.height, img.stride, img.top_down)
    # regions of several rectangles, as the server's are: read-only, and a
    # guest's clip rectangles as they are parsed (a writable copy)
    clip = np.array([(0, 0, 8, 8), (4, 4, 12, 12), (20, 0, 24, 30)], np.int32)
    ring = region.subtract(region.rect(0, 0, 40, 40), region.rect(10, 10, 30, 30))
    rects = region.from_rects(clip)
    region.contains(ring, rects)
    region.intersects(ring, rects)
    region.union(ring, rects)
    region.intersect(ring, rects)


def warm_machine() -> None:
    from spice.options import SpiceOptions
    from vm.board import Board, BoardConfig
    from vm.cli import build_firmware

    outputs = build_firmware(["demo"])
    config = BoardConfig(bios=outputs["bios"].read_bytes(), kernel=outputs["demo"].read_bytes(),
                         no_reboot=True, serial="none", qxl=[{"vga": True}],
                         spice=SpiceOptions(port=0, addr="127.0.0.1",  # any free port
                                            disable_ticketing=True))
    board = Board(config)
    board.start()
    # the main loop (the main and inputs channels) runs on its own thread
    loop = threading.Thread(target=board.wait, name="warm-machine", daemon=True)
    loop.start()
    try:
        assert board.spice is not None
        # The second client arrives while the stream runs: the server then
        # renders its pending drawables, video frames among them.
        for _client in range(2):
            _serve_client(board.spice.port)
    finally:
        board.stop()
        loop.join(30)


def _serve_client(port: int) -> None:
    """Connect a display client and read until the demo's video stream has
    sent STREAM_FRAMES frames."""
    from spice_client import GTK_CACHE_PIXELS, GTK_DISPLAY_CAPS, Session

    from spice.protocol import MsgDisplay

    session = Session("127.0.0.1", port)
    try:
        session.channels()
        display = session.open_display(caps=GTK_DISPLAY_CAPS, cache_size=GTK_CACHE_PIXELS,
                                       decode_draws=False)
        frames = 0
        deadline = time.monotonic() + MACHINE_TIMEOUT_S
        while frames < STREAM_FRAMES:
            # one wait for the rest of the time: a timeout in the middle of a
            # message would lose the client's place in the stream
            left = deadline - time.monotonic()
            try:
                msg_type, _body = display.ch.recv(max(left, 0.001))
            except TimeoutError:
                raise SystemExit(f"warm_kernels: no video stream within "
                                 f"{MACHINE_TIMEOUT_S:.0f} s") from None
            if msg_type in (MsgDisplay.STREAM_DATA, MsgDisplay.STREAM_DATA_SIZED):
                frames += 1
    finally:
        session.close()


def warm_suites() -> None:
    """The guest driver test suites (``spicevm test-guest``): the draws,
    surfaces and UPDATE_AREA paths they use, rendered by the server's
    canvas."""
    import contextlib
    import io

    from vm.testguest import main as test_guest

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = test_guest([])
    if status != 0:
        raise SystemExit(f"warm_kernels: the guest suites failed:\n{out.getvalue()[-2000:]}")


def warm_canvas() -> None:
    """The draws the bundled guests never send -- ROP3 with solid and
    pattern brushes, COMPOSITE with a mask and a transform, a fill through
    a 1-bit mask -- on surfaces like the server's (writable memory)."""
    import numpy as np
    from test_canvas_support import (
        ARGB,
        bitmap32,
        clip,
        drawable,
        mask_bits,
        new_canvas,
        no_surfaces,
        pattern,
        rect,
        solid,
    )

    from spice import qxl

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 1 << 32, (16, 16), dtype=np.uint32)
    xrgb = new_canvas(16, 16, init=pixels)
    for brush in (solid(0x123456), pattern(bitmap32(pixels[:3, :5]), 1, 2)):
        u = qxl.Rop3(bitmap32(pixels), rect(0, 0, 16, 16), brush, 0xB8,
                     qxl.SPICE_IMAGE_SCALE_MODE_NEAREST, qxl.NO_MASK)
        xrgb.draw(drawable(qxl.QXL_DRAW_ROP3, rect(1, 1, 15, 15), u, clip((0, 0, 9, 16))),
                  no_surfaces)
    bits = rng.integers(0, 2, (8, 8), dtype=np.uint8)
    mask = qxl.QMask(0, qxl.Point(0, 0), mask_bits(bits))
    xrgb.draw(drawable(qxl.QXL_DRAW_FILL, rect(2, 2, 10, 10),
                       qxl.Fill(solid(7), qxl.SPICE_ROPD_OP_PUT, mask)), no_surfaces)
    argb = new_canvas(16, 16, ARGB, init=pixels)
    rgba = qxl.SPICE_BITMAP_FMT_RGBA
    flags = (3 << qxl.COMPOSITE_SRC_FILTER_SHIFT) | (1 << qxl.COMPOSITE_SRC_REPEAT_SHIFT)
    for mask_image in (None, bitmap32(pixels[:1, :3], rgba)):
        u = qxl.Composite(flags | 3, bitmap32(pixels[:4, :4], rgba),
                          qxl.Transform(1 << 16, 0, 1 << 16, 0, 1 << 16, 0), mask_image, None,
                          qxl.Point(0, 0), qxl.Point(0, 0))
        argb.draw(drawable(qxl.QXL_DRAW_COMPOSITE, rect(0, 0, 16, 16), u), no_surfaces)


PARTS = {"codecs": warm_codecs, "machine": warm_machine, "suites": warm_suites,
         "canvas": warm_canvas}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=sorted(PARTS), help="run one part in this process")
    args = ap.parse_args()
    if args.part:
        PARTS[args.part]()
        return 0
    t0 = time.monotonic()
    part = [sys.executable, __file__, "--part"]
    procs = {name: subprocess.Popen([*part, name]) for name in PARTS}
    failed = [name for name, p in procs.items() if p.wait() != 0]
    # again, one part at a time: what a race between the parts dropped from
    # the cache's indexes is compiled now
    failed += [name for name in PARTS
               if name not in failed and subprocess.run([*part, name]).returncode != 0]
    if failed:
        print(f"warm_kernels: the {' and '.join(failed)} part failed", file=sys.stderr)
        return 1
    print(f"warm_kernels: kernels compiled into the cache in {time.monotonic() - t0:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

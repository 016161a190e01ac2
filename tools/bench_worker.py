#!/usr/bin/env python3
"""The red worker's own cost per streamed frame, without a machine around it.

A scripted QXL device (tests/spice_harness.py) feeds 320x240 DRAW_COPY
frames of the demo's kind to a server whose one client (tests/spice_client.py,
spice-gtk's display caps) reads without decoding.  Once the frames have
become a video stream, each measured step is what the worker does per frame
in the demo: the round that takes the frame (tree, stream, pipe, MJPEG,
STREAM_DATA on the socket) and then polls the empty ring once more.  It
runs directly on the worker thread, timed with its CPU clock; between
frames the thread idles for ``--gap`` seconds (its caches go cold as they
do between real frames: compare 0.001 with 0.04).

``--no-jpeg`` replaces the encoder by a constant frame of the usual size, to
see the rest of the pipeline alone; the MJPEG rate control is told to keep
every frame either way.  Prints microseconds of worker CPU per frame; not a
pass/fail test::

    tools/bench_worker.py                  # 1500 frames, 1 ms apart
    tools/bench_worker.py --gap 0.04 --frames 300 --no-jpeg
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "tests"))

import numpy as np  # noqa: E402
from spice_client import GTK_CACHE_PIXELS, GTK_DISPLAY_CAPS, Session  # noqa: E402
from spice_harness import Harness, bitmap32, copy_cmd, primary_create  # noqa: E402

from spice import mjpeg_rate, video_stream_wire  # noqa: E402
from spice.codecs import corpus  # noqa: E402
from spice.options import SpiceOptions  # noqa: E402

DEST = (100, 600, 340, 920)  # where the demo's video sits on a 1024x768 desktop


def frames() -> list[np.ndarray]:
    """Two photo-like 320x240 xRGB frames to alternate."""
    out = []
    for seed in (0, 1):
        rgb, _ = corpus.picture("photo", 320, 240, seed=seed)
        rgb = rgb.astype(np.uint32)
        out.append(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    return out


def run(n: int, gap: float, no_jpeg: bool) -> tuple[list[int], int]:
    """Worker CPU nanoseconds of each of ``n`` frames, and frames sent."""
    if no_jpeg:
        fake = bytes(7800)
        video_stream_wire.mjpeg_encode_frame = lambda *a, **k: fake
    h = Harness(SpiceOptions(port=0, disable_ticketing=True, streaming_video="filter"))
    stop = threading.Event()
    session = None
    try:
        create, _mem = primary_create(1024, 768)
        h.worker.create_primary_surface(create)
        h.worker.start()
        session = Session("127.0.0.1", h.port)
        session.channels()
        d = session.open_display(caps=GTK_DISPLAY_CAPS, cache_size=GTK_CACHE_PIXELS,
                                 decode_draws=False)

        def reader() -> None:  # the client reads (and acknowledges) all the time
            while not stop.is_set():
                try:
                    d.ch.recv(0.2)
                except (TimeoutError, OSError):
                    continue
        threading.Thread(target=reader, daemon=True).start()
        images = [bitmap32(f) for f in frames()]
        for i in range(30):  # at the demo's pace until the stream exists
            h.qxl.push(copy_cmd(h.qxl.token(), DEST, images[i % 2]))
            time.sleep(0.04)
        time.sleep(0.2)
        # from here on frames come faster than 25 fps: keep them all
        mjpeg_rate.MjpegRateControl.start_frame = lambda self, mm: 70
        worker = h.worker._w
        cmds = [copy_cmd(h.qxl.token(), DEST, images[i % 2]) for i in range(n)]

        def measure() -> list[int]:
            out = []
            for cmd in cmds:
                h.qxl.cmds.append(cmd)
                t0 = time.thread_time_ns()
                worker._round()  # takes the frame, pushes it, polls the empty ring again
                out.append(time.thread_time_ns() - t0)
                time.sleep(gap)
                worker.loop.run_once(0.001)  # the client's acknowledgements
            return out
        before = h.call(h.server.stats)["display0_stream_frames_sent"]
        times = worker.dispatcher.call(measure)
        sent = h.call(h.server.stats)["display0_stream_frames_sent"] - before
        return times, sent
    finally:
        stop.set()
        if session is not None:
            session.close()
        h.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--gap", type=float, default=0.001, help="idle seconds between frames")
    ap.add_argument("--no-jpeg", action="store_true", help="constant frames, no encoder")
    args = ap.parse_args()
    times, sent = run(args.frames, args.gap, args.no_jpeg)
    us = [t / 1000 for t in times]
    print(f"{len(us)} frames ({sent} sent as STREAM_DATA), {args.gap * 1000:g} ms apart"
          f"{', no JPEG' if args.no_jpeg else ''}: worker CPU per frame median "
          f"{statistics.median(us):.1f} us, mean {statistics.fmean(us):.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

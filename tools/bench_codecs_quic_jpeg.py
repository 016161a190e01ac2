#!/usr/bin/env python3
"""Benchmark the QUIC and JPEG encoders (and the QUIC decoder) against zlib
level 1 and LZ4 measured in the same run, on one core.

For every image of the benchmark corpus it prints the throughput in MB/s
of source bitmap bytes (height * stride) and the compression ratio (source
bytes / output bytes).  It then measures the first call of each numba
kernel in a fresh interpreter: with an empty cache (compilation) and again
with the cache that run left behind.

    .venv/bin/python tools/bench_codecs_quic_jpeg.py [--repeat N] [--no-compile]

Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import lz4.block

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spice.codecs.corpus import CorpusImage, bench_corpus  # noqa: E402
from spice.codecs.graduality import bitmap_graduality  # noqa: E402
from spice.codecs.jpeg import jpeg_encode_bitmap  # noqa: E402
from spice.codecs.quic import quic_decode, quic_encode  # noqa: E402
from spice.qxl import SPICE_BITMAP_FMT_8BIT  # noqa: E402

FIRST_CALLS = {
    "quic_encode": "quic_encode(im.data, im.width, im.height, im.stride, im.fmt, True)",
    "quic_decode": "quic_decode(quic_encode(im.data, im.width, im.height, im.stride, im.fmt, "
    "True))",
    "jpeg_encode": "jpeg_encode_bitmap(im.data, im.width, im.height, im.stride, im.fmt, True, 85)",
    "graduality": "bitmap_graduality(im.data, im.width, im.height, im.stride, im.fmt)",
}
FIRST_CALL_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from spice.codecs.corpus import make
from spice.codecs.graduality import bitmap_graduality
from spice.codecs.jpeg import jpeg_encode_bitmap
from spice.codecs.quic import quic_decode, quic_encode
im = make("photo", 8, 64, 48)
t1 = time.perf_counter()
{call}
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def best_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm (compiled, caches touched)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(im: CorpusImage, repeat: int) -> list[tuple[str, float, float]]:
    """(codec, MB/s, ratio) for one image."""
    src = im.height * im.stride
    raw = im.data.tobytes()
    args = (im.data, im.width, im.height, im.stride, im.fmt)
    rows: list[tuple[str, float, float]] = []

    def add(name: str, fn: Callable[[], bytes]) -> bytes:
        out = fn()
        t = best_time(fn, repeat)
        rows.append((name, src / t / 1e6, src / max(len(out), 1)))
        return out

    quic_ok = im.fmt != SPICE_BITMAP_FMT_8BIT
    if quic_ok:
        stream = add("quic", lambda: quic_encode(*args, im.top_down))
        t = best_time(lambda: quic_decode(stream), repeat)
        rows.append(("quic decode", src / t / 1e6, src / len(stream)))
        add("jpeg q85", lambda: jpeg_encode_bitmap(*args, im.top_down, 85))
        add("mjpeg q50 fast", lambda: jpeg_encode_bitmap(*args, im.top_down, 50, fast_dct=True))
        t = best_time(lambda: bitmap_graduality(*args), repeat)
        rows.append(("graduality", src / t / 1e6, 0.0))
    add("zlib -1", lambda: zlib.compress(raw, 1))
    add("lz4", lambda: lz4.block.compress(raw, store_size=False))
    return rows


def first_calls() -> None:
    print("\nfirst call in a fresh interpreter (seconds: import, call)")
    print(f"{'kernel':14s} {'cold cache':>12s} {'warm cache':>12s}")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for name, call in FIRST_CALLS.items():
            times = []
            for _ in range(2):  # cold, then warm from the cache just written
                script = FIRST_CALL_SCRIPT.format(root=str(ROOT), call=call)
                out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
                times.append(float(out.split()[1]))
            print(f"{name:14s} {times[0]:12.2f} {times[1]:12.2f}")
        # Everything at once, as a server start-up sees it.
        script = FIRST_CALL_SCRIPT.format(root=str(ROOT), call="\n".join(FIRST_CALLS.values()))
        with tempfile.TemporaryDirectory() as cold:
            for label, d in (("all, cold", cold), ("all, warm", cold)):
                env = dict(os.environ, NUMBA_CACHE_DIR=d)
                out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
                print(f"{label:14s} {float(out.split()[1]):12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per codec (best kept)")
    parser.add_argument("--no-compile", action="store_true", help="skip the first-call timings")
    opts = parser.parse_args()
    print(f"{'image':24s} {'codec':16s} {'MB/s':>9s} {'ratio':>7s}")
    for im in bench_corpus():
        for codec, mbs, ratio in measure(im, opts.repeat):
            r = f"{ratio:7.2f}" if ratio else "      -"
            print(f"{im.name:24s} {codec:16s} {mbs:9.1f} {r}")
        print()
    if not opts.no_compile:
        first_calls()


if __name__ == "__main__":
    main()

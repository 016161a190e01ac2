#!/usr/bin/env python3
"""Benchmark the LZ-family image encoders (not a test).

For each image of the benchmark corpus: throughput (MB/s of raw bitmap
bytes, one core, best of several runs) and compression ratio (raw bytes /
payload bytes) of LZ, GLZ with a cold dictionary, GLZ with a warm one (the
same image again, and the image scrolled by 13 rows), ZLIB_GLZ, and the LZ4
payload, next to the lz4 package alone and zlib level 1 on the same bytes,
measured in the same run.  Then the first-call time of each encoder in a
fresh process with an empty numba cache (compilation) and with the cache
that run filled.

    .venv/bin/python tools/bench_codecs_lz.py [--quick]
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
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spice.codecs.corpus import CorpusImage, bench_corpus, make  # noqa: E402
from spice.codecs.glz import GlzDictionary, glz_encode, zlib_glz_encode  # noqa: E402
from spice.codecs.lz import lz_encode  # noqa: E402
from spice.codecs.lz4img import lz4_encode  # noqa: E402

WINDOW = 16 << 20  # pixels: spice-gtk's largest default window (64 MiB / 4)


def best_time(fn: Callable[[], object], min_total: float) -> tuple[float, object]:
    result = fn()  # warm-up (and compilation)
    best = float("inf")
    spent = 0.0
    runs = 0
    while runs < 3 or spent < min_total:
        t = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t
        best = min(best, dt)
        spent += dt
        runs += 1
    return best, result


def scrolled(im: CorpusImage, rows: int) -> np.ndarray:
    data = im.data.reshape(im.height, im.stride)
    return np.ascontiguousarray(np.concatenate([data[-rows:], data[:-rows]])).reshape(-1)


def bench_image(im: CorpusImage, min_total: float) -> dict[str, tuple[float, int]]:
    args = (im.width, im.height, im.stride, im.fmt, im.top_down)
    raw = im.data.tobytes()
    res: dict[str, tuple[float, int]] = {}

    def record(name: str, fn: Callable[[], object]) -> object:
        dt, out = best_time(fn, min_total)
        res[name] = (dt, len(out) if out is not None else 0)
        return out

    record("lz", lambda: lz_encode(im.data, *args, palette=im.palette))
    if im.fmt in (6, 7, 8, 9):
        moved = scrolled(im, 13)
        # (name, images already in the dictionary, image timed)
        for name, before, data in (("glz cold", (), im.data), ("glz warm", (im.data,), im.data),
                                   ("glz scroll", (im.data,), moved)):
            best = float("inf")
            for _ in range(3):
                d = GlzDictionary(WINDOW)
                for earlier in before:
                    glz_encode(d, earlier, *args)
                t = time.perf_counter()
                out = glz_encode(d, data, *args)
                best = min(best, time.perf_counter() - t)
            res[name] = (best, len(out))
        glz = glz_encode(GlzDictionary(WINDOW), im.data, *args)
        dt_glz = res["glz cold"][0]
        dt_z, z = best_time(lambda: zlib_glz_encode(glz), min_total)
        res["zlib-glz"] = (dt_glz + dt_z, len(z) if z is not None else len(glz))
        record("lz4 payload", lambda: lz4_encode(im.data, *args))
    record("lz4 pkg", lambda: lz4.block.compress(raw, store_size=False))
    record("zlib -1", lambda: zlib.compress(raw, 1))
    return res


COLUMNS = ("lz", "glz cold", "glz warm", "glz scroll", "zlib-glz", "lz4 payload", "lz4 pkg",
           "zlib -1")


def print_table(rows: list[tuple[CorpusImage, dict[str, tuple[float, int]]]]) -> None:
    print("MB/s (raw bitmap bytes per second, one core) / compression ratio")
    print(f"{'image':30s}" + "".join(f"{c:>16s}" for c in COLUMNS))
    for im, res in rows:
        raw = im.height * im.stride
        cells = []
        for c in COLUMNS:
            if c in res:
                dt, size = res[c]
                cells.append(f"{raw / dt / 1e6:8.0f} /{raw / max(size, 1):6.1f}")
            else:
                cells.append("-")
        print(f"{im.name:30s}" + "".join(f"{x:>16s}" for x in cells))


FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from spice.codecs.corpus import make
from spice.codecs.lz import lz_encode, lz_decode
from spice.codecs.glz import GlzDictionary, glz_encode
from spice.codecs.glz_client import GlzDecoderWindow
from spice.codecs.lz4img import lz4_encode
t1 = time.perf_counter()
im = make("ui", 8, 64, 48)
args = (im.data, im.width, im.height, im.stride, im.fmt, im.top_down)
def first(fn):
    t = time.perf_counter(); r = fn(); return time.perf_counter() - t, r
a, s = first(lambda: lz_encode(*args))
b, _ = first(lambda: lz_decode(s))
c, g = first(lambda: glz_encode(GlzDictionary(1 << 20), *args))
d, _ = first(lambda: GlzDecoderWindow().decode(g))
e, _ = first(lambda: lz4_encode(*args))
print(f"{t1 - t0:.2f} {a:.2f} {b:.2f} {c:.2f} {d:.2f} {e:.3f}")
"""


def first_calls() -> None:
    top = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(top))
        print("\nfirst call in a fresh process, seconds "
              "(import, lz_encode, lz_decode, glz_encode, glz decode, lz4_encode):")
        for label in ("cold numba cache", "warm numba cache"):
            out = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            print(f"  {label:18s} " + "  ".join(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer images, shorter timing runs")
    opts = ap.parse_args()
    images = bench_corpus()
    if opts.quick:
        images = images[:3]
    images.append(make("ui", 8, 300, 200, seed=1))
    rows = [(im, bench_image(im, 0.05 if opts.quick else 0.3)) for im in images]
    print_table(rows)
    first_calls()


if __name__ == "__main__":
    main()

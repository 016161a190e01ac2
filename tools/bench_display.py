#!/usr/bin/env python3
"""Display benchmark: the demo guest's 25 fps animation for 20 s, on the
whole spicevm machine and on QEMU 7.2 + spice-server, same guest, same
image-compression and streaming-video settings.

One client (tests/spice_client.py, announcing spice-gtk's display caps and
cache sizes) reads the display channel without decoding; optionally it
reads at a capped rate (``--throttle``) to play a slow network.  Over the
measured window it reports:

* frames of the animated area the client received (as STREAM_DATA or as
  DRAW_COPY of the area) and how many the guest drew (its serial reports);
* bytes on the wire per frame: all display channel bytes, and the video's
  alone;
* CPU seconds per frame of the display worker thread: ``spice-worker-0`` in
  spicevm, ``SPICE Worker`` in QEMU, both read from /proc/PID/task/*/stat;
  and of the whole process, for scale.

Targets (README of the tracker): bytes per frame within 10 % of
spice-server's, at least as many frames received, worker CPU per frame at
most 2x.  With ``--runs N`` the machines take turns (ours, QEMU, ours, ...),
since a shared VM's speed drifts from minute to minute, and the worker CPU
ratio of each pair is printed as well.  Prints a table and the ratios; not
a pass/fail test::

    tools/bench_display.py                       # ours and qemu, auto_glz, filter
    tools/bench_display.py --image-compression lz --streaming-video off
    tools/bench_display.py ours --throttle 2     # a 2 Mbit/s client
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "tests"))

from bench_spice import free_port, stop_process  # noqa: E402
from spice_client import GTK_CACHE_PIXELS, GTK_DISPLAY_CAPS, Session  # noqa: E402

from spice.protocol import Msg, MsgDisplay  # noqa: E402

LZ_MAX_WINDOW = 1 << 25
CLK_TCK = os.sysconf("SC_CLK_TCK")
_FRAMES = re.compile(r"^demo: fps [\d.]+ frames (\d+)")


# -- the machines ------------------------------------------------------------------------


class Machine:
    """A VM process whose serial console is read line by line."""

    def __init__(self, name: str, argv: list[str], worker_prefix: str) -> None:
        self.name = name
        self.worker_prefix = worker_prefix
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, cwd=TOP)
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()

    def expect(self, pattern: str, timeout: float) -> None:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(rx.search(ln) for _, ln in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"{self.name}: no serial line {pattern!r}")
                self._cond.wait(min(left, 0.5))

    def frame_reports(self) -> list[tuple[float, int]]:
        with self._cond:
            return [(t, int(m.group(1))) for t, ln in self.lines if (m := _FRAMES.search(ln))]

    def thread_cpu(self, prefix: str | None) -> float:
        """CPU seconds of the threads whose name starts with ``prefix`` (all
        threads when None).  Each thread's run time in nanoseconds comes from
        its schedstat; utime and stime in stat are whole clock ticks (10 ms),
        and a worker that runs 0.2 s in the window would carry up to 5 % of
        rounding in each reading."""
        total = 0.0
        task = Path(f"/proc/{self.proc.pid}/task")
        for t in task.iterdir():
            try:
                comm = (t / "comm").read_text().strip()
                if prefix is not None and not comm.startswith(prefix):
                    continue
                total += _thread_seconds(t)
            except OSError:
                continue
        return total

    def close(self) -> None:
        stop_process(self.proc)


def _thread_seconds(task: Path) -> float:
    try:
        return int((task / "schedstat").read_text().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):  # a kernel without schedstat
        stat = (task / "stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def spice_options(port: int, args: argparse.Namespace) -> str:
    return (f"port={port},addr=127.0.0.1,disable-ticketing=on,"
            f"image-compression={args.image_compression},"
            f"streaming-video={args.streaming_video},"
            f"jpeg-wan-compression={args.jpeg},zlib-glz-wan-compression={args.zlib_glz}")


def start_ours(port: int, kernel: Path, args: argparse.Namespace) -> Machine:
    argv = [sys.executable, "-m", "vm.cli", "run", str(kernel), "-m", "128",
            "-spice", spice_options(port, args), "-serial", "stdio", "-display", "none"]
    if args.append:
        argv += ["-append", args.append]
    return Machine("spicevm", argv, "spice-worker")


def start_qemu(port: int, kernel: Path, args: argparse.Namespace) -> Machine:
    qemu = shutil.which(os.environ.get("QEMU", "qemu-system-x86_64"))
    if qemu is None:
        raise SystemExit("qemu-system-x86_64 is not installed")
    argv = [qemu, "-vga", "qxl", "-m", "128", "-spice", spice_options(port, args),
            "-kernel", str(kernel), "-serial", "stdio", "-display", "none", "-no-reboot"]
    if args.append:
        argv += ["-append", args.append]
    return Machine("qemu + spice-server", argv, "SPICE Worker")


# -- the client ------------------------------------------------------------------------


@dataclass
class Counts:
    bytes_all: int = 0
    bytes_video: int = 0
    stream_frames: int = 0
    copies: Counter = field(default_factory=Counter)  # DRAW_COPY box -> count
    copy_bytes: Counter = field(default_factory=Counter)
    types: Counter = field(default_factory=Counter)

    def snapshot(self) -> Counts:
        return Counts(self.bytes_all, self.bytes_video, self.stream_frames, Counter(self.copies),
                      Counter(self.copy_bytes), Counter(self.types))


@dataclass
class Result:
    name: str
    seconds: float
    guest_fps: float
    frames: int  # animation frames received
    stream_frames: int
    copy_frames: int
    bytes_all: int
    bytes_video: int
    worker_cpu: float
    process_cpu: float
    messages: dict


def measure(m: Machine, port: int, warmup: float, seconds: float,
            throttle_bps: float | None) -> Result:
    s = Session("127.0.0.1", port)
    s.channels()  # the network test's pings are answered on the way
    stop = threading.Event()

    def keep_main_alive() -> None:
        while not stop.is_set():
            try:
                s.main.recv(0.5)
            except (TimeoutError, OSError):
                continue
    threading.Thread(target=keep_main_alive, daemon=True).start()
    glz_window = min(LZ_MAX_WINDOW, s.init.ram_hint // 2 // 4)
    d = s.open_display(caps=GTK_DISPLAY_CAPS, cache_size=GTK_CACHE_PIXELS, decode_draws=False,
                       glz_window=glz_window)
    counts = Counts()
    video_box = None
    t0 = time.monotonic()
    start = end = None
    cpu0 = cpu1 = (0.0, 0.0)
    try:
        while True:
            now = time.monotonic()
            if start is None and now - t0 >= warmup:
                start, cpu0 = counts.snapshot(), (m.thread_cpu(m.worker_prefix),
                                                  m.thread_cpu(None))
                t_start = now
            if start is not None and now - t_start >= seconds:
                end, cpu1 = counts.snapshot(), (m.thread_cpu(m.worker_prefix),
                                                m.thread_cpu(None))
                t_end = now
                break
            try:
                t, body = d.ch.recv(0.5)
            except TimeoutError:
                continue
            size = 6 + len(body)
            counts.bytes_all += size
            counts.types[t] += 1
            if t == MsgDisplay.DRAW_COPY:
                box = struct.unpack_from("<iiii", body, 4)
                counts.copies[box] += 1
                counts.copy_bytes[box] += size
                if box == video_box:
                    counts.bytes_video += size
            elif t in (MsgDisplay.STREAM_DATA, MsgDisplay.STREAM_DATA_SIZED):
                counts.stream_frames += 1
                counts.bytes_video += size
            elif t == MsgDisplay.STREAM_CREATE:
                video_box = struct.unpack_from("<iiii", body, 4 + 4 + 1 + 1 + 8 + 16)
            if video_box is None and counts.copies:
                box, n = counts.copies.most_common(1)[0]
                if n >= 10:
                    video_box = box
            if throttle_bps:
                time.sleep(size * 8 / throttle_bps)
    finally:
        stop.set()
        s.close()
    copies = end.copies - start.copies
    copy_frames = copies.get(video_box, 0) if video_box else 0
    stream_frames = end.stream_frames - start.stream_frames
    reports = [(t, n) for t, n in m.frame_reports() if t_start - 10 <= t <= t_end + 1]
    guest_fps = ((reports[-1][1] - reports[0][1]) / (reports[-1][0] - reports[0][0])
                 if len(reports) >= 2 else float("nan"))
    return Result(m.name, t_end - t_start, guest_fps, copy_frames + stream_frames,
                  stream_frames, copy_frames, end.bytes_all - start.bytes_all,
                  end.bytes_video - start.bytes_video, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1],
                  {_msg_name(k): v for k, v in (end.types - start.types).items()})


def _msg_name(t: int) -> str:
    for enum in (MsgDisplay, Msg):
        try:
            return enum(t).name
        except ValueError:
            pass
    return str(t)


# -- the report ------------------------------------------------------------------------


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(f"\ndemo animation, {args.seconds:.0f} s after {args.warmup:.0f} s of warm-up; "
          f"image-compression={args.image_compression}, "
          f"streaming-video={args.streaming_video}, jpeg={args.jpeg}, zlib-glz={args.zlib_glz}"
          + (f", client throttled to {args.throttle} Mbit/s" if args.throttle else ""))
    head = (f"{'':22s}{'guest fps':>10s}{'frames':>8s}{'(stream':>9s}{'/ copy)':>8s}"
            f"{'fps':>7s}{'B/frame':>10s}{'video B/fr':>12s}{'worker s':>10s}"
            f"{'worker ms/fr':>13s}{'process s':>11s}")
    print(head)
    for r in results:
        n = max(1, r.frames)
        print(f"{r.name:22s}{r.guest_fps:10.1f}{r.frames:8d}{r.stream_frames:9d}"
              f"{r.copy_frames:8d}{r.frames / r.seconds:7.1f}{r.bytes_all / n:10.0f}"
              f"{r.bytes_video / n:12.0f}{r.worker_cpu:10.2f}{1000 * r.worker_cpu / n:13.2f}"
              f"{r.process_cpu:11.2f}")
    ref = next((r for r in results if r.name.startswith("qemu")), None)
    if ref is None:
        return
    for r in results:
        if r is ref:
            continue
        rf, n = max(1, ref.frames), max(1, r.frames)
        bpf = (r.bytes_all / n) / max(1e-9, ref.bytes_all / rf)
        vbpf = (r.bytes_video / n) / max(1e-9, ref.bytes_video / rf)
        cpf = (r.worker_cpu / n) / max(1e-9, ref.worker_cpu / rf)
        print(f"{r.name} / {ref.name}: frames {r.frames / rf:.2f}x (target >= 1), "
              f"bytes per frame {bpf:.2f}x, video bytes per frame {vbpf:.2f}x "
              f"(target within 10 %), worker CPU per frame {cpf:.2f}x (target <= 2)")
    if args.verbose:
        for r in results:
            print(f"{r.name} messages: {dict(sorted(r.messages.items()))}")


def _ms_per_frame(r: Result) -> float:
    return 1000 * r.worker_cpu / max(1, r.frames)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", default=["ours", "qemu"], help="ours and/or qemu")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds after the first picture before measuring")
    ap.add_argument("--image-compression", default="auto_glz")
    ap.add_argument("--streaming-video", default="filter")
    ap.add_argument("--jpeg", default="auto", help="jpeg-wan-compression")
    ap.add_argument("--zlib-glz", default="auto", help="zlib-glz-wan-compression")
    ap.add_argument("--throttle", type=float, default=None, metavar="MBIT",
                    help="read the display channel at this many Mbit/s")
    ap.add_argument("--kernel", default=str(TOP / "guest/build/demo.elf"))
    ap.add_argument("--append", default="", help="guest command line (e.g. fps=25)")
    ap.add_argument("--runs", type=int, default=1,
                    help="repeat (the targets take turns); the run with the median worker "
                         "CPU per frame is shown")
    ap.add_argument("-v", "--verbose", action="store_true", help="message counts too")
    args = ap.parse_args()
    kernel = Path(args.kernel)
    if not kernel.exists():
        raise SystemExit(f"{kernel} is missing: build it with tools/build_guest.py")
    throttle = args.throttle * 1e6 if args.throttle else None
    starters = {}
    for target in args.targets:
        starter = {"ours": start_ours, "qemu": start_qemu}.get(target)
        if starter is None:
            ap.error(f"unknown target {target!r}")
        starters[target] = starter
    # The targets take turns, run by run: this VM's speed drifts from minute
    # to minute, and a pair of runs a minute apart sees the same machine.
    runs: dict[str, list[Result]] = {t: [] for t in starters}
    for _ in range(args.runs):
        for target, starter in starters.items():
            port = free_port()
            m = starter(port, kernel, args)
            try:
                m.expect(r"^demo: ready", timeout=120)
                runs[target].append(measure(m, port, args.warmup, args.seconds, throttle))
            finally:
                m.close()
    results = []
    for rs in runs.values():
        # the run with the median worker CPU per frame stands for the target
        ordered = sorted(rs, key=_ms_per_frame)
        results.append(ordered[len(ordered) // 2])
        print(f"{results[-1].name}: frames {[r.frames for r in rs]}, worker ms/frame "
              f"{[round(_ms_per_frame(r), 3) for r in rs]}, "
              f"worker s {[round(r.worker_cpu, 3) for r in rs]}", file=sys.stderr)
    if "ours" in runs and "qemu" in runs:
        pairs = [_ms_per_frame(a) / max(1e-9, _ms_per_frame(b))
                 for a, b in zip(runs["ours"], runs["qemu"], strict=True)]
        print(f"worker CPU per frame, ours / qemu, run by run: {[round(x, 2) for x in pairs]} "
              f"(median {statistics.median(pairs):.2f}x)", file=sys.stderr)
    print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Connect to a SPICE server and print what it sends: the link reply, MAIN_INIT,
the channel list, then every display and cursor message for a while.

    tools/spice_probe.py [--host 127.0.0.1] [--port 5900] [--seconds 5] [--save out.ppm]

The password comes from $SPICE_PASSWORD.  Draw messages are decoded and
rendered by the project's test client (our own server's images are
uncompressed; a foreign server's compressed images are counted only).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "tests"))

from spice_client import Session, decode_cursor  # noqa: E402

from spice.protocol import ChannelType, Msg, MsgCursor, MsgDisplay  # noqa: E402
from spice.wire import ProtocolError  # noqa: E402


def name_of(channel: int, msg_type: int) -> str:
    table = {ChannelType.DISPLAY: MsgDisplay, ChannelType.CURSOR: MsgCursor}.get(channel)
    for enum in (table, Msg):
        if enum is not None:
            try:
                return enum(msg_type).name
            except ValueError:
                pass
    return str(msg_type)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5900)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--save", help="write the primary surface as a PPM")
    args = ap.parse_args()

    t0 = time.perf_counter()
    s = Session(args.host, args.port, os.environ.get("SPICE_PASSWORD", ""))
    print(f"linked in {(time.perf_counter() - t0) * 1000:.1f} ms: {s.init}")
    chans = s.channels()
    print("channels:", ", ".join(f"{ChannelType(t).name}:{i}" for t, i in chans))
    d = s.open_display()
    cur = s.open(ChannelType.CURSOR) if (ChannelType.CURSOR, 0) in chans else None
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            t, body = d.ch.recv(0.05)
            try:
                d.apply(t, body)
            except ProtocolError:
                d.decode_draws = False
                d.apply(t, body)
            n = name_of(ChannelType.DISPLAY, t)
            if counts[n] < 3:
                print(f"display {n} ({len(body)} bytes)")
            counts[n] += 1
        except TimeoutError:
            pass
        if cur is not None:
            try:
                t, body = cur.recv(0.01)
                if t > 100:
                    fields = decode_cursor(t, body)
                    print("cursor", {k: v for k, v in fields.items() if k != "data"})
            except TimeoutError:
                pass
    print("display messages:", dict(counts))
    if args.save and 0 in d.surfaces:
        px = d.surfaces[0].pixels32()
        rgb = bytearray()
        for row in px:
            for v in row:
                rgb += bytes(((int(v) >> 16) & 255, (int(v) >> 8) & 255, int(v) & 255))
        h, w = px.shape
        Path(args.save).write_bytes(f"P6 {w} {h} 255\n".encode() + bytes(rgb))
        print("saved", args.save)
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""spice-gtk (SpiceClientGLib) as a test client, run with Debian's python3.

Usage: python3 gi_spice_reader.py PORT [PASSWORD]

With GI_READER_PREFERRED_COMPRESSION=N in the environment the client asks
for image compression N (SpiceImageCompression) when its display channel
comes up.

Connects, waits for the display's MARK, then serves commands on stdin:
``dump PATH`` writes the client's primary surface (raw, top-down rows of
``stride`` bytes) to PATH and answers ``dumped W H STRIDE FORMAT``;
``quit`` exits.  Prints ``mark`` once the first MARK arrived.
"""

import ctypes
import os
import sys

import gi

gi.require_version("SpiceClientGLib", "2.0")
from gi.repository import GLib, GObject  # noqa: E402
from gi.repository import SpiceClientGLib as Spice  # noqa: E402

port = int(sys.argv[1])
password = sys.argv[2] if len(sys.argv) > 2 else None
loop = GLib.MainLoop()
session = Spice.Session()
session.set_property("uri", f"spice://127.0.0.1:{port}")
if password:
    session.set_property("password", password)
if os.environ.get("GI_READER_PREFERRED_COMPRESSION"):
    session.set_property("preferred-compression",
                         int(os.environ["GI_READER_PREFERRED_COMPRESSION"]))
primary = {}
state = {"marked": False}


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def on_channel(sess, channel):
    if isinstance(channel, Spice.DisplayChannel):
        def on_create(ch, fmt, width, height, stride, shmid, data):
            primary.update(format=fmt, width=width, height=height, stride=stride, data=data)

        def on_mark(ch, mark):
            if mark and not state["marked"]:
                state["marked"] = True
                say("mark")

        GObject.Object.connect(channel, "display-primary-create", on_create)
        GObject.Object.connect(channel, "display-mark", on_mark)
        channel.connect()


def on_stdin(source, condition):
    line = sys.stdin.readline()
    if not line or line.strip() == "quit":
        loop.quit()
        return False
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "dump":
        size = primary["stride"] * primary["height"]
        with open(arg, "wb") as f:
            f.write(ctypes.string_at(primary["data"], size))
        say(f"dumped {primary['width']} {primary['height']} {primary['stride']} "
            f"{primary['format']}")
    return True


GObject.Object.connect(session, "channel-new", on_channel)
GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
session.connect()
GLib.timeout_add_seconds(120, loop.quit)
loop.run()
session.disconnect()

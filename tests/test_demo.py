"""The demo desktop on spicevm, input end to end: a SPICE client's keys and
mouse reach the guest through the inputs channel, the i8042 and the guest's
PS/2 driver; with the VDIPort agent, client mouse mode, a monitor layout
(the guest recreates its primary at the client's size) and clipboard text
both ways.  The guest reports what it receives on COM1."""

from __future__ import annotations

import struct
import time

import pytest
from demo_harness import DemoVM
from spice_client import Session

from spice.protocol import ChannelType, MsgCInputs, MsgDisplay
from vm.agentpeer import AgentPeer

SCAN = {"h": 0x23, "i": 0x17, "\n": 0x1C}


@pytest.fixture
def plain_demo():
    vm = DemoVM(vdiport=False)
    try:
        vm.expect(r"^demo: ready 1024x768$")
        yield vm
    finally:
        vm.close()


def test_keys_and_ps2_mouse_reach_the_demo(plain_demo: DemoVM) -> None:
    session = Session("127.0.0.1", plain_demo.port)
    try:
        inputs = session.open(ChannelType.INPUTS)
        mark = plain_demo.mark()
        for ch in "hi\n":
            inputs.send(MsgCInputs.KEY_DOWN, struct.pack("<I", SCAN[ch]))
            inputs.send(MsgCInputs.KEY_UP, struct.pack("<I", SCAN[ch] | 0x80))
        plain_demo.expect(r"^demo: key 0x23 'h'$", start=mark)
        plain_demo.expect(r"^demo: key 0x17 'i'$", start=mark)
        plain_demo.expect(r'^demo: text "hi"$', start=mark)

        # server mouse mode: relative motion (SPICE dy grows downwards), then
        # the left button; the cursor starts in the middle of the screen
        mark = plain_demo.mark()
        inputs.send(MsgCInputs.MOUSE_MOTION, struct.pack("<iiH", 40, 30, 0))
        time.sleep(0.2)
        inputs.send(MsgCInputs.MOUSE_PRESS, struct.pack("<BH", 1, 1))
        inputs.send(MsgCInputs.MOUSE_RELEASE, struct.pack("<BH", 1, 0))
        plain_demo.expect(r"^demo: button 1 down at 552,414$", start=mark)
        plain_demo.expect(r"^demo: button 1 up at 552,414$", start=mark)
    finally:
        session.close()


def test_agent_mouse_resize_and_clipboard_reach_the_demo() -> None:
    vm = DemoVM(vdiport=True)
    peer = None
    try:
        vm.expect(r"^demo: ready 1024x768$")
        # the scripted client: monitors config 800x600, client mouse mode at
        # (123, 45) with the left button down, clipboard echo
        peer = AgentPeer("127.0.0.1", vm.port)
        peer.start()
        vm.expect(r"^demo: resize 800x600$")
        vm.expect(r"^demo: button 1 down at 123,45$")
        mark = vm.mark()
        peer.send_keys([SCAN[c] for c in "hi\n"])
        vm.expect(r'^demo: text "hi"$', start=mark)
        # Enter put the line on the guest clipboard; the client fetched it and
        # offered its own text back, which the guest fetched in turn
        vm.expect(r'^demo: clipboard "peer saw: hi"$', start=mark)
        assert peer.guest_clipboard == b"hi"
        assert not peer.errors
    finally:
        if peer is not None:
            peer.close()
        vm.close()


def test_the_animated_area_is_streamed_as_video(plain_demo: DemoVM) -> None:
    """25 same-size DRAW_COPYs a second over one area: the server sends it
    as a video stream."""
    session = Session("127.0.0.1", plain_demo.port)
    try:
        session.channels()  # ATTACH_CHANNELS: the server starts the session
        display = session.open_display(decode_draws=False)
        body = display.pump(until=MsgDisplay.STREAM_CREATE, timeout=15)
        assert body is not None
    finally:
        session.close()

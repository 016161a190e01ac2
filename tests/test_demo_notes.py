"""The demo's notes window when a typed line wraps: Enter reports (and puts
on the clipboard) the characters of the current screen line, never the
leftovers of the line before it."""

from __future__ import annotations

import re
import struct

import pytest
from demo_harness import DemoVM
from spice_client import Session

from spice.protocol import ChannelType, MsgCInputs

X, ENTER = 0x2D, 0x1C  # set-1 make codes
LONG = 60  # more than one line of the notes window holds, less than two


@pytest.fixture
def typist():
    vm = DemoVM(vdiport=False)
    session = None
    try:
        vm.expect(r"^demo: ready 1024x768$")
        session = Session("127.0.0.1", vm.port)
        inputs = session.open(ChannelType.INPUTS)

        def key(code: int) -> None:
            # one key at a time: the PS/2 queue, like a real one, drops a burst
            mark = vm.mark()
            inputs.send(MsgCInputs.KEY_DOWN, struct.pack("<I", code))
            inputs.send(MsgCInputs.KEY_UP, struct.pack("<I", code | 0x80))
            vm.expect(rf"^demo: key 0x{code:02x}", start=mark)

        def line(n: int) -> str:
            mark = vm.mark()
            for _ in range(n):
                key(X)
            key(ENTER)
            return vm.expect(r'^demo: text "(.*)"$', start=mark).group(1)

        yield line
    finally:
        if session is not None:
            session.close()
        vm.close()


def test_enter_after_a_wrapped_line_reports_the_screen_line(typist) -> None:
    tail = typist(LONG)
    assert re.fullmatch(r"x+", tail) and len(tail) < LONG, "the line did not wrap once"
    # the first screen line held LONG - len(tail) characters after the prompt:
    # exactly that many fit without wrapping and are reported whole
    first = LONG - len(tail)
    assert typist(first) == "x" * first
    # one more wraps, leaving one character on the new screen line
    assert typist(first + 1) == "x"

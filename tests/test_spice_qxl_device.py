"""The server with the real QXL device: VGA-mode updates and driver commands
flow from device memory to a client, and come back on the release ring."""

from __future__ import annotations

import time

import numpy as np
import pytest
from spice_client import Session

from devices.qxl import layout as L
from spice import qxl as Q
from spice.eventloop import LoopThread
from spice.options import SpiceOptions
from spice.protocol import MsgDisplay
from spice.server import SpiceServer
from tests.qxl_harness import BAR0_BASE, QXLMachine, put_bitmap_image, put_drawable, record


class Live:
    def __init__(self) -> None:
        self.core = LoopThread("test-core").start()
        self.m = QXLMachine(attach=False)
        self.server = self.core.call(
            lambda: SpiceServer(self.core.loop, SpiceOptions(port=0, disable_ticketing=True)))
        self.worker = self.core.call(lambda: self.server.add_qxl(self.m.dev))
        self.core.call(self.server.start)
        self.worker.start()
        self.port = self.server.port

    def close(self) -> None:
        self.core.call(self.server.close)
        self.core.stop()


@pytest.fixture
def live():
    lv = Live()
    yield lv
    lv.close()


def wait_for(pred, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_vga_text_mode_reaches_the_client(live):
    m = live.m
    m.refresh()  # the device creates its host primary for text mode
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    assert (d.surfaces[0].width, d.surfaces[0].height) == (720, 400)
    cells = np.array([ord(c) | 0x1F << 8 for c in "SPICE"], "<u2")
    m.write(0xB8000, cells.tobytes())
    m.refresh()
    d.pump(until=MsgDisplay.DRAW_COPY)
    d.pump(timeout=0.5)
    top_left = d.surfaces[0].pixels32()[0:16, 0:40]
    assert (top_left == 0x0000AA).any() and (top_left == 0xFFFFFF).any()


def test_driver_draw_round_trip(live):
    m = live.m
    m.native(64, 48)
    s = Session("127.0.0.1", live.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    assert (d.surfaces[0].width, d.surfaces[0].height) == (64, 48)
    pixels = np.random.default_rng(1).integers(0, 1 << 24, 8 * 10, dtype=np.uint32)
    img = put_bitmap_image(m, pixels.astype("<u4").tobytes(), 10, 8, 40,
                           flags=Q.QXL_BITMAP_DIRECT | Q.QXL_BITMAP_TOP_DOWN)
    union = record(L.COPY, {"src_bitmap": m.phys(img), "src_area": (0, 0, 8, 10),
                            "rop_descriptor": Q.SPICE_ROPD_OP_PUT})
    addr = put_drawable(m, Q.QXL_DRAW_COPY, union, bbox=(5, 6, 13, 16))
    m.push("cmd_ring", addr, Q.QXL_CMD_DRAW)
    d.pump(until=MsgDisplay.DRAW_COPY)
    assert (d.surfaces[0].pixels32()[5:13, 6:16] == pixels.reshape(8, 10)).all()
    # the guest asks for the area: the server renders into the primary in BAR0
    m.ram_set("update_area", (0, 0, 48, 64))
    m.ram_set("update_surface", 0)
    m.out(Q.QXL_IO_UPDATE_AREA)
    stride = 64 * 4
    raw = np.frombuffer(m.read(BAR0_BASE, 48 * stride), "<u4").reshape(48, 64)
    assert (raw[::-1][5:13, 6:16] == pixels.reshape(8, 10)).all()  # negative stride
    # and the drawable comes back on the release ring
    m.out(Q.QXL_IO_FLUSH_RELEASE)
    released: list[int] = []
    wait_for(lambda: released.extend(m.pop_release()) or addr in released)
    s.close()

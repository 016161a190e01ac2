"""The QXLWorker handle: synchronous and asynchronous requests, start/stop,
client capabilities, monitors config, several QXL devices."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from spice_client import Session
from spice_harness import (
    Harness,
    bitmap32,
    copy_cmd,
    fill_cmd,
    primary_create,
    surface_cmd,
    wait_for,
)

from spice import qxl
from spice.options import SpiceOptions
from spice.protocol import ChannelType, DisplayCap, Msg, MsgDisplay

W, H = 32, 24


@pytest.fixture
def h():
    harness = Harness()
    create, mem = primary_create(W, H)
    harness.mem = mem
    harness.create = create
    yield harness
    harness.close()


def test_nothing_is_pulled_before_start_or_after_stop(h):
    h.worker.create_primary_surface(h.create)
    tok = h.qxl.token()
    h.qxl.push(fill_cmd(tok, (0, 0, 4, 4), 0xFF))
    time.sleep(0.1)
    assert len(h.qxl.cmds) == 1
    h.worker.start()
    h.qxl.wait_drained()
    h.worker.stop()  # renders what is pending: the guest may read the surface
    assert (h.mem.view("<u4").reshape(H, W)[:4, :4] == 0xFF).all()
    assert h.qxl.wait_released([tok])
    h.qxl.push(fill_cmd(h.qxl.token(), (0, 0, 4, 4), 0xEE))
    time.sleep(0.1)
    assert len(h.qxl.cmds) == 1
    h.worker.start()
    h.qxl.wait_drained()


def test_async_requests_complete_with_their_cookie(h):
    h.worker.create_primary_surface_async(h.create, 11)
    h.worker.start()
    h.qxl.push(fill_cmd(h.qxl.token(), (2, 2, 6, 6), 0x1234))
    h.worker.update_area_async(0, qxl.Rect(0, 0, H, W), True, 12)
    create, smem = surface_cmd(h.qxl.token(), 3, 8, 8)
    h.qxl.push(create)
    h.worker.flush_surfaces_async(13)
    h.worker.destroy_surface_async(3, 14)
    h.worker.monitors_config_async(qxl.MonitorsConfig(2, [qxl.Head(0, 0, W, H, 0, 0, 0)]), 15)
    h.worker.destroy_primary_surface_async(16)
    h.worker.destroy_surfaces_async(17)
    wait_for(lambda: len(h.qxl.async_done) == 7)
    assert h.qxl.async_done == [11, 12, 13, 14, 15, 16, 17]
    assert (h.mem.view("<u4").reshape(H, W)[2:6, 2:6] == 0x1234).all()


def test_update_area_renders_and_reports_dirty(h):
    h.worker.create_primary_surface(h.create)
    h.worker.start()
    h.qxl.push(fill_cmd(h.qxl.token(), (1, 2, 3, 4), 0xAB))
    dirty = h.worker.update_area(0, qxl.Rect(0, 0, H, W), True)
    assert dirty == [qxl.Rect(1, 2, 3, 4)]
    assert h.worker.update_area(0, qxl.Rect(0, 0, H, W), True) == []
    assert h.worker.update_area(0, qxl.Rect(0, 0, H, W), False) == []


def test_oom_hands_back_pending_drawables(h):
    h.worker.create_primary_surface(h.create)
    h.worker.start()
    toks = [h.qxl.token() for _ in range(20)]
    for i, t in enumerate(toks):
        h.qxl.push(fill_cmd(t, (i % H, 0, i % H + 1, W), i))
    h.qxl.wait_drained()
    h.worker.oom()
    assert h.qxl.wait_released(toks)


def test_guest_learns_client_display_caps(h):
    h.worker.create_primary_surface(h.create)
    h.worker.start()
    s = Session("127.0.0.1", h.port)
    d = s.open_display(caps=(DisplayCap.MONITORS_CONFIG, DisplayCap.COMPOSITE))
    d.pump(until=MsgDisplay.MARK)
    present, caps = h.qxl.client_caps[-1]
    assert present and len(caps) == 58
    assert caps[0] == (1 << DisplayCap.MONITORS_CONFIG) | (1 << DisplayCap.COMPOSITE)
    s.close()
    wait_for(lambda: h.qxl.client_caps[-1][0] is False)


def test_driver_monitors_config_goes_to_clients(h):
    h.worker.create_primary_surface(h.create)
    h.worker.start()
    s = Session("127.0.0.1", h.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    heads = [qxl.Head(0, 0, 16, 24, 0, 0, 0), qxl.Head(1, 0, 16, 24, 16, 0, 0),
             qxl.Head(2, 0, 0, 0, 0, 0, 0)]  # zero-sized heads are left out
    h.worker.monitors_config_async(qxl.MonitorsConfig(4, heads), 1)
    max_allowed, got = d.pump(until=MsgDisplay.MONITORS_CONFIG)
    assert max_allowed == 4
    assert got == [(0, 0, 16, 24, 0, 0, 0), (1, 0, 16, 24, 16, 0, 0)]
    s.close()


def test_two_qxl_devices_share_one_pixmap_cache():
    with Harness(num_qxl=2) as h:
        mems = []
        for w in h.workers:
            create, mem = primary_create(W, H)
            w.create_primary_surface(create)
            w.start()
            mems.append(mem)
        s = Session("127.0.0.1", h.port)
        assert s.init.display_channels_hint == 2
        assert s.channels() == [(ChannelType.DISPLAY, 1), (ChannelType.CURSOR, 1),
                                (ChannelType.DISPLAY, 0), (ChannelType.CURSOR, 0),
                                (ChannelType.INPUTS, 0)]
        d0 = s.open_display(0, cache_size=8 * 8)
        d1 = s.open_display(1, cache_size=8 * 8)
        d0.pump(until=MsgDisplay.MARK)
        d1.pump(until=MsgDisplay.MARK)
        pix = np.arange(64, dtype=np.uint32).reshape(8, 8)
        a = (1 << 32) | qxl.QXL_IMAGE_GROUP_DRIVER
        b = (2 << 32) | qxl.QXL_IMAGE_GROUP_DRIVER
        h.qxls[0].push(copy_cmd(h.qxls[0].token(), (0, 0, 8, 8), bitmap32(pix, a, cache=True)))
        d0.pump(until=MsgDisplay.DRAW_COPY)
        # channel 1 evicts what channel 0 put in the shared cache: the client
        # must first have processed channel 0's message (WAIT_FOR_CHANNELS)
        h.qxls[1].push(copy_cmd(h.qxls[1].token(), (0, 0, 8, 8), bitmap32(pix + 1, b,
                                                                         cache=True)))
        subs = d1.pump(until=Msg.LIST)
        types = [t for t, _ in subs]
        assert sorted(types) == [5, MsgDisplay.INVAL_LIST]
        wait = dict(subs)[5]
        count, ctype, cid, serial = struct.unpack_from("<BBBQ", wait)
        assert (count, ctype, cid) == (1, ChannelType.DISPLAY, 0) and serial > 0
        d1.pump(until=MsgDisplay.DRAW_COPY)
        assert (d1.surfaces[0].pixels32()[:8, :8] == pix + 1).all()
        s.close()


def test_device_learns_the_compression_level():
    with Harness() as h:
        wait_for(lambda: h.qxl.compression_levels == [0])  # auto_glz: 0
    opts = SpiceOptions(port=0, disable_ticketing=True, image_compression="quic",
                        streaming_video="off")
    with Harness(opts) as h:
        wait_for(lambda: h.qxl.compression_levels == [1])


def test_server_start_and_vm_stop_drive_the_workers():
    with Harness(vm_running=True) as h:
        create, mem = primary_create(W, H)
        h.worker.create_primary_surface(create)
        tok = h.qxl.token()
        h.qxl.push(fill_cmd(tok, (0, 0, 2, 2), 0x42))
        h.qxl.wait_drained()
        h.call(h.server.vm_stop)  # renders what is pending
        assert (mem.view("<u4").reshape(H, W)[:2, :2] == 0x42).all()
        h.qxl.push(fill_cmd(h.qxl.token(), (0, 0, 2, 2), 0x43))
        time.sleep(0.1)
        assert len(h.qxl.cmds) == 1
        h.call(h.server.vm_start)
        h.qxl.wait_drained()


def test_destroy_surface_wait_leaves_the_surface(h):
    h.worker.create_primary_surface(h.create)
    h.worker.start()
    s = Session("127.0.0.1", h.port)
    d = s.open_display()
    d.pump(until=MsgDisplay.MARK)
    create, smem = surface_cmd(h.qxl.token(), 4, 8, 8)
    h.qxl.push(create)
    d.pump(until=MsgDisplay.SURFACE_CREATE)
    h.worker.destroy_surface_wait(4)
    # still there: drawing on it and copying from it work
    h.qxl.push(fill_cmd(h.qxl.token(), (0, 0, 8, 8), 0x5A5A5A, surface_id=4),
               copy_cmd(h.qxl.token(), (0, 0, 8, 8), qxl.SurfaceImage(
                   qxl.ImageDescriptor(0, qxl.SPICE_IMAGE_TYPE_SURFACE, 0, 8, 8), 4)))
    d.pump(until=MsgDisplay.DRAW_COPY)
    assert (d.surfaces[0].pixels32()[:8, :8] == 0x5A5A5A).all()
    h.qxl.push(surface_cmd(h.qxl.token(), 4, create=False)[0])
    assert d.pump(until=MsgDisplay.SURFACE_DESTROY) == 4
    s.close()

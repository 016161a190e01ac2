"""QXL: the release ring (batching, flushes, OOM, a full ring), the
asynchronous ports and their IO_CMD completion, monitors configs in both
directions and the client state in the ROM."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from devices.qxl import QXLMode
from devices.qxl import layout as L
from spice import qxl as Q
from tests.qxl_harness import BAR2_BASE, QXLMachine, put_drawable, record


def fill(m: QXLMachine) -> int:
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID})
    return put_drawable(m, Q.QXL_DRAW_FILL, u)


def draw_n(m: QXLMachine, n: int, release: bool = True) -> list[int]:
    """Push and pull ``n`` fills; returns their guest addresses (= release ids)."""
    addrs = []
    for _ in range(n):
        addrs.append(fill(m))
        m.push("cmd_ring", addrs[-1], Q.QXL_CMD_DRAW, notify=False)
        if len(addrs) % 32 == 0:
            assert len(m.pull(release)) == 32
    m.pull(release)
    return addrs


# -- release ring ---------------------------------------------------------------------

def test_releases_are_batched_by_32():
    m = QXLMachine()
    m.native()
    m.ack()
    ids = draw_n(m, 31)
    assert m.pop_release() == [] and m.int_pending == 0
    ids += draw_n(m, 1)
    # one list, in release order; the first push hits notify_on_prod = 1
    assert m.pop_release() == ids
    assert m.int_pending == Q.QXL_INTERRUPT_DISPLAY and m.irq.level
    assert m.pop_release() == []


def test_flush_release_pushes_a_partial_list():
    m = QXLMachine()
    m.native()
    ids = draw_n(m, 5)
    m.out(Q.QXL_IO_FLUSH_RELEASE)
    assert m.pop_release() == ids
    m.out(Q.QXL_IO_FLUSH_RELEASE)  # nothing collected: an empty list is pushed
    assert m.pop_release() == []
    ids = draw_n(m, 3)
    assert m.dev.flush_resources() == 3
    assert m.pop_release() == ids
    assert m.dev.flush_resources() == 0


def test_notify_oom_collects_everything_before_pushing():
    m = QXLMachine()
    m.native()
    held = [m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW, notify=False) for _ in range(20)]
    assert len(held) == 20
    cmds = m.pull(release=False) + m.pull(release=False)
    for _ in range(20):
        m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW, notify=False)
    cmds += m.pull(release=False)
    assert len(cmds) == 40

    def oom() -> None:  # the server frees what it holds, then flushes
        for cmd in cmds:
            m.dev.release_resource(cmd.release)
        assert m.pop_release() == []  # nothing pushed while OOM runs, not even at 32
        m.dev.flush_resources()

    m.worker.oom = oom
    m.out(Q.QXL_IO_NOTIFY_OOM)
    assert len(m.pop_release()) == 40


def test_full_release_ring_keeps_chaining():
    m = QXLMachine()
    m.native()
    lists = []
    for _ in range(7):  # eight slots, one always holds the list being built
        lists.append(draw_n(m, 2))
        m.out(Q.QXL_IO_FLUSH_RELEASE)
    num, prod, _, cons, _ = m.ring_counters("release_ring")
    assert (prod - cons) == 7
    more = draw_n(m, 40)  # over a batch, but no room: keeps growing
    m.out(Q.QXL_IO_FLUSH_RELEASE)  # no room either (QEMU prints a warning)
    assert m.ring_counters("release_ring")[1] == prod
    for expected in lists:
        assert m.pop_release() == expected
    m.out(Q.QXL_IO_FLUSH_RELEASE)
    assert m.pop_release() == more
    assert not m.dev.guest_bug


def test_release_of_nothing_and_after_reset():
    m = QXLMachine()
    m.native()
    m.dev.release_resource(None)  # CVE-2019-12155: no release info
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    (cmd,) = m.pull(release=False)
    m.out(Q.QXL_IO_RESET)
    m.native()
    m.dev.release_resource(cmd.release)  # from before the reset: dropped
    m.out(Q.QXL_IO_FLUSH_RELEASE)
    assert m.pop_release() == [] and not m.dev.guest_bug


def test_garbage_release_ring_counters_are_a_guest_bug():
    m = QXLMachine()
    m.native()
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    (cmd,) = m.pull(release=False)
    # num_items 64 with prod 10: the index falls outside the 8 real slots
    m.write(m.ram_header + L.OFF["release_ring"], np.array([64, 10], "<u4").tobytes())
    m.dev.release_resource(cmd.release)
    assert m.dev.guest_bug


# -- asynchronous ports ---------------------------------------------------------------

ASYNC_CASES = [
    (Q.QXL_IO_UPDATE_AREA_ASYNC, 0, "update_area_async"),
    (Q.QXL_IO_DESTROY_SURFACE_ASYNC, 3, "destroy_surface_async"),
    (Q.QXL_IO_FLUSH_SURFACES_ASYNC, 0, "flush_surfaces_async"),
    (Q.QXL_IO_DESTROY_PRIMARY_ASYNC, 0, "destroy_primary_surface_async"),
    (Q.QXL_IO_DESTROY_ALL_SURFACES_ASYNC, 0, "destroy_surfaces_async"),
]


@pytest.mark.parametrize("port,val,call", ASYNC_CASES)
def test_async_port_completes_with_io_cmd(port, val, call):
    m = QXLMachine(auto_complete=False)
    m.native()
    m.ack()
    m.ram_set("update_area", (0, 0, 10, 10))
    m.out(port, val)
    assert call in m.worker.names() and m.int_pending == 0
    m.out(port, val)  # a second one before the first completed
    assert m.dev.guest_bug
    m.worker.complete_all()
    assert m.int_pending & Q.QXL_INTERRUPT_IO_CMD and m.irq.level


def test_one_async_at_a_time_then_the_next():
    m = QXLMachine(auto_complete=False)
    m.native()
    m.out(Q.QXL_IO_FLUSH_SURFACES_ASYNC)
    m.worker.complete_all()
    m.ack()
    m.out(Q.QXL_IO_FLUSH_SURFACES_ASYNC)
    m.worker.complete_all()
    assert not m.dev.guest_bug and m.int_pending == Q.QXL_INTERRUPT_IO_CMD


def test_create_primary_async_and_memslot_add_async():
    m = QXLMachine(auto_complete=False)
    m.set_mask(0x3F)
    m.add_memslot(1, port=Q.QXL_IO_MEMSLOT_ADD_ASYNC)
    assert m.int_pending == Q.QXL_INTERRUPT_IO_CMD  # the slot lives in the device
    m.ack()
    m.create_primary(1024, 768, port=Q.QXL_IO_CREATE_PRIMARY_ASYNC)
    assert m.dev.mode == QXLMode.NATIVE and m.int_pending == 0
    assert m.worker.names()[-1] == "create_primary_surface_async"
    assert m.worker.primary.width == 1024
    m.worker.complete_all()
    assert m.int_pending == Q.QXL_INTERRUPT_IO_CMD


def test_rejected_async_still_completes():
    m = QXLMachine(auto_complete=False)
    m.native()
    m.out(Q.QXL_IO_DESTROY_PRIMARY)
    m.ack()
    m.worker.calls.clear()
    m.out(Q.QXL_IO_DESTROY_PRIMARY_ASYNC)  # nothing to destroy
    assert m.worker.calls == [] and m.int_pending == Q.QXL_INTERRUPT_IO_CMD
    m.ack()
    m.ram_set("update_area", (5, 0, 5, 9))  # empty area: tolerated, cancelled
    m.out(Q.QXL_IO_UPDATE_AREA_ASYNC)
    assert not m.dev.guest_bug
    assert m.int_pending == Q.QXL_INTERRUPT_IO_CMD | Q.QXL_INTERRUPT_ERROR
    m.ack()
    m.out(Q.QXL_IO_FLUSH_SURFACES_ASYNC)  # nothing outstanding after a cancel
    assert not m.dev.guest_bug


def test_async_ports_in_vga_mode_only_complete():
    m = QXLMachine()
    m.set_mask(0x3F)
    for port in (Q.QXL_IO_UPDATE_AREA_ASYNC, Q.QXL_IO_FLUSH_SURFACES_ASYNC,
                 Q.QXL_IO_MONITORS_CONFIG_ASYNC):
        m.ack()
        m.worker.calls.clear()
        m.out(port)
        assert m.int_pending == Q.QXL_INTERRUPT_IO_CMD and m.worker.calls == []
    m.ack()
    m.out(Q.QXL_IO_UPDATE_AREA)  # synchronous: just ignored
    assert m.int_pending == 0 and not m.dev.guest_bug


def test_without_a_server_async_ports_complete_at_once():
    m = QXLMachine(attach=False)
    m.native()
    m.ack()
    m.out(Q.QXL_IO_FLUSH_SURFACES_ASYNC)
    assert m.int_pending == Q.QXL_INTERRUPT_IO_CMD


def test_reset_forgets_the_outstanding_async():
    m = QXLMachine(auto_complete=False)
    m.native()
    m.out(Q.QXL_IO_FLUSH_SURFACES_ASYNC)
    m.out(Q.QXL_IO_RESET)
    m.native()
    m.ack()
    m.worker.complete_all()  # the old cookie: no IO_CMD for the new driver
    assert m.int_pending == 0
    m.out(Q.QXL_IO_FLUSH_SURFACES_ASYNC)
    assert not m.dev.guest_bug


# -- monitors config --------------------------------------------------------------------

def monitors(m: QXLMachine, heads: list[tuple], max_allowed: int, count: int | None = None
             ) -> int:
    body = np.array([h for h in heads], dtype=L.HEAD).tobytes() if heads else b""
    return m.put(L.MONITORS_CONFIG_HEAD, {"count": len(heads) if count is None else count,
                                          "max_allowed": max_allowed}, body)


def test_guest_monitors_config():
    m = QXLMachine(max_outputs=4)
    m.native()
    m.ack()
    heads = [(0, 0, 1024, 768, 0, 0, 0), (1, 0, 800, 600, 1024, 0, 0)]
    m.ram_set("monitors_config", m.phys(monitors(m, heads, 4)))
    m.out(Q.QXL_IO_MONITORS_CONFIG_ASYNC)
    name, (config, _) = m.worker.calls[-1]
    assert name == "monitors_config_async"
    assert config == Q.MonitorsConfig(4, [Q.Head(*h) for h in heads])
    assert m.int_pending == Q.QXL_INTERRUPT_IO_CMD


def test_guest_monitors_config_is_clamped_to_the_device():
    m = QXLMachine()  # max_outputs 0: spice-server allows one head
    m.native()
    heads = [(i, 0, 640, 480, 640 * i, 0, 0) for i in range(3)]
    m.ram_set("monitors_config", m.phys(monitors(m, heads, 8)))
    m.out(Q.QXL_IO_MONITORS_CONFIG_ASYNC)
    config = m.worker.calls[-1][1][0]
    assert config.max_allowed == 1 and config.heads == [Q.Head(*heads[0])]


@pytest.mark.parametrize("count,max_allowed", [(0, 4), (3, 2)])
def test_ignored_monitors_configs(count, max_allowed):
    m = QXLMachine(max_outputs=4)
    m.native()
    m.ack()
    heads = [(i, 0, 10, 10, 0, 0, 0) for i in range(count)]
    m.ram_set("monitors_config", m.phys(monitors(m, heads, max_allowed)))
    m.worker.calls.clear()
    m.out(Q.QXL_IO_MONITORS_CONFIG_ASYNC)
    assert m.worker.calls == [] and not m.dev.guest_bug
    assert m.int_pending == Q.QXL_INTERRUPT_IO_CMD


def test_monitors_config_reaching_past_the_slot():
    m = QXLMachine(max_outputs=16)
    m.native()
    # count says 16 heads, but the structure sits at the very end of the slot
    end = m.dev.ram_size
    m.add_memslot(2, 0xE0000000 + end - 4096, 0xE0000000 + end)
    m.ram_set("monitors_config", (2 << 56) | (4096 - 4 - 28 * 2))
    m.write(0xE0000000 + end - 4 - 28 * 2, np.array([16, 16], "<u2").tobytes())
    m.out(Q.QXL_IO_MONITORS_CONFIG_ASYNC)
    assert m.dev.guest_bug and m.int_pending & Q.QXL_INTERRUPT_IO_CMD


def test_client_monitors_config_goes_to_the_rom():
    m = QXLMachine(max_outputs=2)
    m.native()
    m.ack()
    cfg = Q.ClientMonitorsConfig(0, [Q.ClientMonitor(1280, 1024, 32, 0, 0),
                                     Q.ClientMonitor(800, 600, 32, 1280, 100),
                                     Q.ClientMonitor(640, 480, 32, 0, 1024)])
    assert m.dev.client_monitors_config(None) is True
    assert m.dev.client_monitors_config(cfg) is True
    assert m.int_pending == Q.QXL_INTERRUPT_CLIENT_MONITORS_CONFIG
    block = m.read(BAR2_BASE + 132, L.CLIENT_MONITORS_CONFIG.itemsize)
    cmc = np.frombuffer(block, L.CLIENT_MONITORS_CONFIG)[0]
    assert int(cmc["count"]) == 2  # capped to max_outputs
    assert [tuple(int(v) for v in h) for h in cmc["heads"][:2]] == [
        (0, 0, 1024, 1280), (100, 1280, 700, 2080)]
    crc = int(m.rom_get("client_monitors_config_crc"))
    assert crc == zlib.crc32(block, 0xFFFFFFFF) ^ 0xFFFFFFFF
    m.ack()
    assert m.dev.client_monitors_config(cfg) is True  # unchanged: no interrupt
    assert m.int_pending == 0


@pytest.mark.parametrize("mask,revision", [(0, 5), (0xFFFFFFFF, 5), (0x1F, 5), (0x3F, 3)])
def test_client_monitors_config_refused(mask, revision):
    m = QXLMachine(revision=revision)
    m.set_mask(mask)
    cfg = Q.ClientMonitorsConfig(0, [Q.ClientMonitor(1, 1, 32, 0, 0)])
    assert m.dev.client_monitors_config(cfg) is False
    assert int(m.rom_get("client_monitors_config")["count"]) == 0


def test_client_capabilities_in_the_rom():
    m = QXLMachine()
    m.set_mask(Q.QXL_INTERRUPT_CLIENT)
    m.dev.set_client_capabilities(True, bytes([0x05, 0x80]) + bytes(70))
    assert int(m.rom_get("client_present")) == 1
    caps = m.rom_get("client_capabilities")
    assert caps[0] == 0x05 and caps[1] == 0x80 and len(caps) == 58
    assert m.irq.level and m.int_pending == Q.QXL_INTERRUPT_CLIENT


def test_init_info_and_compression_level():
    m = QXLMachine(ram_size_mb=64, vgamem_mb=16, surfaces=512, max_outputs=3)
    info = m.dev.get_init_info()
    assert (info.num_surfaces, info.ram_size, info.max_monitors) == (512, 12286 * 4096, 3)
    m.dev.set_compression_level(1)
    assert int(m.rom_get("compression_level")) == 1

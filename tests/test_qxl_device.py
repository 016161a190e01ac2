"""QXL device: PCI identity, BARs, ROM and RAM contents, memory slots,
interrupts and the synchronous ports, driven as a guest would (config
cycles, guest-physical memory, byte port writes)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from devices.qxl import QXLMode, parse_device_options
from devices.qxl import layout as L
from spice import qxl as Q
from tests.qxl_harness import (
    BAR0_BASE,
    BAR1_BASE,
    BAR2_BASE,
    BAR3_BASE,
    QXLMachine,
    drawable_bytes,
    put_drawable,
    record,
)

MiB = 1 << 20


def fill(m: QXLMachine, color: int = 0xFF0000, **head: object) -> int:
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": color,
                        "rop_descriptor": Q.SPICE_ROPD_OP_PUT})
    return put_drawable(m, Q.QXL_DRAW_FILL, u, **head)


# -- identity and BARs --------------------------------------------------------

def test_pci_identity_of_qxl_vga():
    m = QXLMachine()
    assert m.config_read(0x00, 2) == 0x1B36
    assert m.config_read(0x02, 2) == 0x0100
    assert m.config_read(0x08, 1) == 5
    assert m.config_read(0x08, 4) >> 8 == 0x030000
    assert m.config_read(0x2C, 2) == 0x1AF4
    assert m.config_read(0x2E, 2) == 0x1100
    assert m.config_read(0x3D, 1) == 1  # INTA


def test_revision_4_and_secondary_device():
    m = QXLMachine(revision=4, vga=False)
    assert m.config_read(0x08, 1) == 4
    assert m.config_read(0x08, 4) >> 8 == 0x038000
    assert m.dev.mode == QXLMode.UNDEFINED
    assert m.ioports.find(0x3D4) is None and m.ioports.find(0x1CE) is None
    with pytest.raises(ValueError, match="revision"):
        QXLMachine(revision=6)


def bar_size(m: QXLMachine, index: int) -> int:
    reg = 0x10 + 4 * index
    old = m.config_read(reg, 4)
    m.config_write(reg, 4, 0xFFFFFFFF)
    probe = m.config_read(reg, 4)
    m.config_write(reg, 4, old)
    mask = 0xFFFFFFFC if probe & 1 else 0xFFFFFFF0
    return (~(probe & mask) & 0xFFFFFFFF) + 1


def test_bar_sizes_follow_qemu_defaults_and_options():
    m = QXLMachine(ram_size_mb=64, vram_size_mb=64, vgamem_mb=16)
    assert [bar_size(m, i) for i in range(4)] == [64 * MiB, 64 * MiB, 8192, 32]
    assert m.config_read(0x20, 4) == 0  # no 64-bit VRAM BAR unless asked for
    m = QXLMachine(ram_size_mb=8, vgamem_mb=16, vram_size_mb=3)
    # BAR0 holds at least two framebuffers; sizes round up to powers of two
    assert bar_size(m, 0) == 32 * MiB and bar_size(m, 1) == 4 * MiB
    m = QXLMachine(vgamem_mb=2)  # clamped to 8
    assert int(m.rom_get("surface0_area_size")) == 8 * MiB
    m = QXLMachine(vram_size_mb=1, vram64_size_mb=16)
    assert m.config_read(0x20, 4) & 0x7 == 0x4  # 64-bit memory BAR
    assert m.config_read(0x20, 4) & 0x8  # prefetchable
    assert bar_size(m, 4) == 16 * MiB
    assert [bar_size(m, i) for i in range(1, 4)] == [1 * MiB, 8192, 32]


def test_revisions_size_the_io_bar():
    assert bar_size(QXLMachine(revision=1), 3) == 8
    assert bar_size(QXLMachine(revision=2), 3) == 16
    assert bar_size(QXLMachine(revision=3), 3) == 32


def test_bars_are_guest_memory():
    m = QXLMachine()
    assert m.read(BAR2_BASE, 4) == b"QXRO"
    assert m.read(m.ram_header, 4) == b"QXRA"
    m.write(BAR1_BASE + 100, b"vram")
    m.write(BAR0_BASE + 8, b"ram!")
    # moving a BAR keeps its contents
    m.config_write(0x14, 4, 0xC0000000)
    assert m.read(0xC0000000 + 100, 4) == b"vram"
    assert m.read(BAR0_BASE + 8, 4) == b"ram!"


def test_parse_device_options():
    assert parse_device_options("qxl-vga") == ("qxl-vga", {"vga": True})
    kind, kw = parse_device_options("qxl,ram_size_mb=32, vram_size_mb=0x10,revision=4")
    assert kind == "qxl" and kw == {"vga": False, "ram_size_mb": 32, "vram_size_mb": 16,
                                    "revision": 4}
    for bad, msg in (("cirrus", "unknown display"), ("qxl-vga,foo=1", "no option"),
                     ("qxl-vga,ram_size_mb", "no value"), ("qxl-vga,vgamem_mb=x", "integer"),
                     ("qxl-vga,revision=7", "not supported"),
                     ("qxl-vga,surfaces=1,surfaces=2", "twice")):
        with pytest.raises(ValueError, match=msg):
            parse_device_options(bad)


# -- ROM and RAM --------------------------------------------------------------

def test_rom_contents():
    m = QXLMachine(ram_size_mb=64, vgamem_mb=16, guestdebug=3)
    g = m.rom_get
    assert int(g("magic")) == Q.QXL_ROM_MAGIC and int(g("id")) == 0
    assert int(g("log_level")) == 3
    assert int(g("modes_offset")) == 1160
    assert int(g("surface0_area_size")) == 16 * MiB == int(g("pages_offset"))
    assert int(g("draw_area_offset")) == 0
    assert int(g("ram_header_offset")) == 64 * MiB - 8192
    assert int(g("num_pages")) == (64 * MiB - 8192 - 16 * MiB) // 4096 == 12286
    assert int(g("n_surfaces")) == 1024
    assert (int(g("slots_start")), int(g("slots_end"))) == (1, 7)
    assert (int(g("slot_gen_bits")), int(g("slot_id_bits")), int(g("slot_generation"))) \
        == (8, 8, 0)
    assert int(g("client_present")) == 0 and int(g("client_monitors_config_crc")) == 0


@pytest.mark.parametrize("vgamem_mb,count", [(8, 106), (16, 128), (32, 138)])
def test_mode_list(vgamem_mb, count):
    m = QXLMachine(vgamem_mb=vgamem_mb, ram_size_mb=2 * vgamem_mb)
    n = int(np.frombuffer(m.read(BAR2_BASE + 1160, 4), "<u4")[0])
    modes = np.frombuffer(m.read(BAR2_BASE + 1164, 32 * n), L.MODE)
    assert n == count
    assert tuple(int(v) for v in modes[0]) == (0, 640, 480, 16, 1280, 187, 140, 0)
    assert tuple(int(v) for v in modes[3]) == (3, 640, 480, 32, 2560, 187, 140, 1)
    assert (modes["y_res"].astype(int) * modes["stride"] <= vgamem_mb * MiB).all()
    assert list(modes["id"]) == sorted(modes["id"])  # ids index the unfiltered table


def test_ram_header_after_reset():
    m = QXLMachine()
    assert int(m.ram_get("magic")) == Q.QXL_RAM_MAGIC
    assert m.int_pending == 0 and int(m.ram_get("int_mask")) == 0
    assert m.ring_counters("cmd_ring") == (32, 0, 1, 0, 0)
    assert m.ring_counters("cursor_ring") == (32, 0, 1, 0, 0)
    assert m.ring_counters("release_ring") == (8, 0, 1, 0, 0)
    assert m.pop_release() == []


# -- interrupts ------------------------------------------------------------------

def test_interrupt_line_follows_pending_and_mask():
    m = QXLMachine()
    m.native()
    m.dev.set_client_capabilities(True, b"\x01")
    assert m.int_pending & Q.QXL_INTERRUPT_CLIENT
    assert m.irq.level  # CLIENT is unmasked by native()
    m.ack()
    assert not m.irq.level and m.int_pending == 0
    m.set_mask(0)
    m.dev.set_client_capabilities(False, b"")
    assert m.int_pending == Q.QXL_INTERRUPT_CLIENT and not m.irq.level
    m.set_mask(Q.QXL_INTERRUPT_CLIENT)  # UPDATE_IRQ re-evaluates
    assert m.irq.level
    m.ram_set("int_pending", 0)  # cleared but not yet told
    assert m.irq.level
    m.out(Q.QXL_IO_UPDATE_IRQ)
    assert not m.irq.level


def test_pending_event_is_not_resignalled():
    m = QXLMachine()
    m.native()
    m.dev.set_client_capabilities(True, b"")
    rises = m.irq.rises
    m.dev.set_client_capabilities(True, b"")
    assert m.irq.rises == rises and m.irq.level


def test_pci_intx_disable_masks_the_line():
    m = QXLMachine()
    m.native()
    m.config_write(0x04, 2, 0x0407)
    m.dev.set_client_capabilities(True, b"")
    assert m.int_pending and not m.irq.level
    assert m.config_read(0x06, 2) & 0x08  # status still shows the interrupt
    m.config_write(0x04, 2, 0x0007)
    assert m.irq.level


def test_display_and_cursor_interrupts_on_consumer_notify():
    m = QXLMachine()
    m.native()
    m.ack()
    # a driver waiting for room arms notify_on_cons = cons + 1
    base = m.ram_header + L.OFF["cmd_ring"]
    m.write(base + 16, np.uint32(1).tobytes())
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    assert m.int_pending == 0
    assert len(m.pull()) == 1
    assert m.int_pending == Q.QXL_INTERRUPT_DISPLAY and m.irq.level
    m.ack()
    cmd = m.put(L.CURSOR_CMD, {"type": Q.QXL_CURSOR_HIDE})
    m.write(m.ram_header + L.OFF["cursor_ring"] + 16, np.uint32(1).tobytes())
    m.push("cursor_ring", cmd, Q.QXL_CMD_CURSOR)
    assert len(m.pull_cursor()) == 1
    assert m.int_pending == Q.QXL_INTERRUPT_CURSOR


# -- rings --------------------------------------------------------------------

def test_doorbell_protocol():
    m = QXLMachine()
    m.native()
    # the worker asks to be told: notify_on_prod = prod + 1
    assert m.dev.req_cmd_notification() is True
    assert m.ring_counters("cmd_ring")[2] == 1
    wakeups = m.worker.wakeups
    assert m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW) is True
    assert m.worker.wakeups == wakeups + 1  # NOTIFY_CMD
    assert m.dev.req_cmd_notification() is False  # commands are waiting
    # the next push does not ring: the worker has not asked again
    assert m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW) is False
    assert len(m.pull()) == 2
    assert m.ring_counters("cmd_ring")[3] == 2  # cons moved


def test_ring_is_circular():
    m = QXLMachine()
    m.native()
    for _ in range(3):
        for _ in range(32):
            m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW, notify=False)
        assert len(m.pull()) == 32
        m.free_all()  # reuse the memory: everything was released
        m.out(Q.QXL_IO_FLUSH_RELEASE)
        while m.pop_release():
            pass
    assert m.ring_counters("cmd_ring")[1] == 96 and not m.dev.guest_bug


def test_nothing_is_consumed_in_vga_mode():
    m = QXLMachine()
    m.add_memslot(1)
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    cmd = m.put(L.CURSOR_CMD, {"type": Q.QXL_CURSOR_HIDE})
    m.push("cursor_ring", cmd, Q.QXL_CMD_CURSOR)
    assert m.dev.mode == QXLMode.VGA
    assert all(c.group_id == L.MEMSLOT_GROUP_HOST for c in m.pull())
    assert m.pull_cursor() == []
    assert m.ring_counters("cmd_ring")[3] == 0 and m.ring_counters("cursor_ring")[3] == 0
    m.create_primary()
    assert len(m.pull()) == 1 and len(m.pull_cursor()) == 1


def test_undefined_mode_consumes_rings():
    m = QXLMachine(vga=False)
    m.add_memslot(1)
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    assert m.dev.mode == QXLMode.UNDEFINED and len(m.pull()) == 1


# -- memory slots -------------------------------------------------------------

def test_memslot_in_vram_bar():
    m = QXLMachine()
    m.native()
    m.add_memslot(2, BAR1_BASE, BAR1_BASE + m.dev.vram32_size)
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 7})
    m.write(BAR1_BASE + 0x100, drawable_bytes({"type": Q.QXL_DRAW_FILL,
                                               "bbox": (0, 0, 4, 4)}, u))
    m.push("cmd_ring", (2 << 56) | 0x100, Q.QXL_CMD_DRAW, raw_phys=True)
    (cmd,) = m.pull()
    assert cmd.payload.u.brush.color == 7 and not m.dev.guest_bug


@pytest.mark.parametrize("slot,start,end,why", [
    (8, BAR0_BASE, BAR0_BASE + 4096, "out of range"),
    (1, BAR0_BASE + 8192, BAR0_BASE, "start > end"),
    (1, 0x100000, 0x200000, "outside every BAR"),
    (1, BAR0_BASE, BAR0_BASE + 17 * MiB, "past the BAR end"),
    (1, BAR2_BASE, BAR2_BASE + 4096, "the ROM BAR"),
])
def test_memslot_add_rejections(slot, start, end, why):
    m = QXLMachine()
    m.set_mask(Q.QXL_INTERRUPT_ERROR)
    m.add_memslot(slot, start, end)
    assert m.dev.guest_bug, why
    assert m.int_pending & Q.QXL_INTERRUPT_ERROR and m.irq.level


def test_memslot_add_twice_and_delete():
    m = QXLMachine()
    m.add_memslot(1)
    assert not m.dev.guest_bug
    m.out(Q.QXL_IO_MEMSLOT_DEL, 1)
    m.add_memslot(1)  # free again
    assert not m.dev.guest_bug
    m.add_memslot(1)
    assert m.dev.guest_bug
    m.out(Q.QXL_IO_RESET)
    m.out(Q.QXL_IO_MEMSLOT_DEL, 9)
    assert m.dev.guest_bug


def test_pointer_into_deleted_slot_is_a_guest_bug():
    m = QXLMachine()
    m.native()
    m.out(Q.QXL_IO_MEMSLOT_DEL, 1)
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    assert m.pull() == [] and m.dev.guest_bug


def test_slot_offsets_are_relative_to_the_slot_start():
    m = QXLMachine()
    m.native()
    start = BAR0_BASE + m.dev.surface0_area_size
    m.add_memslot(3, start, m.ram_header)
    addr = fill(m, color=0x123456)
    m.push("cmd_ring", (3 << 56) | (addr - start), Q.QXL_CMD_DRAW, raw_phys=True)
    (cmd,) = m.pull()
    assert cmd.payload.u.brush.color == 0x123456


# -- ports --------------------------------------------------------------------

def test_port_reads_and_wide_writes():
    m = QXLMachine()
    assert all(m.inb(p) == 0xFF for p in range(32))
    assert m.ioports.read(BAR3_BASE, 2) == 0xFFFF
    m.set_mask(0x3F)
    m.out(Q.QXL_IO_RESET, size=2)  # not a byte access: ignored
    assert int(m.ram_get("int_mask")) == 0x3F
    m.out(Q.QXL_IO_RESET)
    assert int(m.ram_get("int_mask")) == 0


def test_notify_ports_wake_the_worker():
    m = QXLMachine()
    m.native()
    before = m.worker.wakeups
    m.out(Q.QXL_IO_NOTIFY_CMD)
    m.out(Q.QXL_IO_NOTIFY_CURSOR)
    assert m.worker.wakeups == before + 2


def test_update_area():
    m = QXLMachine()
    m.native()
    m.ram_set("update_area", (1, 2, 30, 40))
    m.ram_set("update_surface", 0)
    m.out(Q.QXL_IO_UPDATE_AREA)
    assert m.worker.calls[-1] == ("update_area", (0, Q.Rect(1, 2, 30, 40), False))
    assert not m.dev.guest_bug


@pytest.mark.parametrize("area,surface,bug", [
    ((10, 0, 5, 10), 0, True),  # inverted
    ((-1, 0, 5, 10), 0, True),  # negative
    ((0, 0, 10, 10), 1024, True),  # no such surface
    ((4, 0, 4, 10), 0, False),  # empty: ERROR raised, but old drivers do this
])
def test_update_area_rejections(area, surface, bug):
    m = QXLMachine()
    m.native()
    m.ack()
    m.ram_set("update_area", area)
    m.ram_set("update_surface", surface)
    m.out(Q.QXL_IO_UPDATE_AREA)
    assert m.dev.guest_bug == bug
    assert m.int_pending & Q.QXL_INTERRUPT_ERROR
    assert "update_area" not in m.worker.names()[-1:]


def test_log_port(caplog):
    m = QXLMachine(guestdebug=1)
    m.ram_set("log_buf", np.frombuffer(b"hello from the driver\n".ljust(4096, b"\0"), np.uint8))
    with caplog.at_level(logging.INFO, logger="devices.qxl.guest"):
        m.out(Q.QXL_IO_LOG)
    assert "hello from the driver" in caplog.text
    m.ram_set("log_buf", np.full(4096, ord("x"), np.uint8))  # no NUL at all
    with caplog.at_level(logging.INFO, logger="devices.qxl.guest"):
        m.out(Q.QXL_IO_LOG)
    assert "x" * 4096 in caplog.text and not m.dev.guest_bug


def test_notify_oom_only_with_an_empty_release_ring():
    m = QXLMachine()
    m.native()
    m.out(Q.QXL_IO_NOTIFY_OOM)
    assert m.worker.names()[-1] == "oom"
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    m.pull()
    m.out(Q.QXL_IO_FLUSH_RELEASE)
    m.worker.calls.clear()
    m.out(Q.QXL_IO_NOTIFY_OOM)
    assert "oom" not in m.worker.names()


def test_unknown_and_unimplemented_ports_are_guest_bugs():
    for port in (Q.QXL_IO_DETACH_PRIMARY, Q.QXL_IO_ATTACH_PRIMARY, 25, 31):
        m = QXLMachine()
        m.native()
        m.out(port)
        assert m.dev.guest_bug, port
    m = QXLMachine()
    for port in (25, 31, Q.QXL_IO_DETACH_PRIMARY):
        m.out(port)  # VGA mode: ignored
    assert not m.dev.guest_bug


def test_revision_3_lacks_monitors_config_port():
    m = QXLMachine(revision=3)
    m.out(Q.QXL_IO_MONITORS_CONFIG_ASYNC)
    assert m.dev.guest_bug
    m = QXLMachine(revision=3)
    m.dev.set_client_capabilities(True, b"\xff")
    assert m.int_pending == 0 and int(m.rom_get("client_present")) == 0


def test_guest_bug_state_ignores_all_ports_but_reset():
    m = QXLMachine()
    m.native()
    m.out(Q.QXL_IO_DETACH_PRIMARY)
    assert m.dev.guest_bug
    m.worker.calls.clear()
    m.ram_set("update_area", (0, 0, 10, 10))
    for port in (Q.QXL_IO_NOTIFY_CMD, Q.QXL_IO_UPDATE_AREA, Q.QXL_IO_DESTROY_PRIMARY,
                 Q.QXL_IO_FLUSH_SURFACES_ASYNC, Q.QXL_IO_SET_MODE):
        m.out(port)
    assert m.worker.calls == [] and m.dev.mode == QXLMode.NATIVE
    m.out(Q.QXL_IO_RESET)
    assert not m.dev.guest_bug and m.dev.mode == QXLMode.VGA


def test_create_primary_leaves_vga_mode():
    m = QXLMachine()
    m.refresh()  # the host primary of VGA mode
    assert m.worker.primary is not None and m.worker.primary.width == 720
    m.native(800, 600)
    assert m.dev.mode == QXLMode.NATIVE
    p = m.worker.primary
    assert (p.width, p.height, p.stride, p.format, p.mouse_mode) == (800, 600, -3200, 32, 1)
    assert p.data.size == 600 * 3200
    p.data[:4] = 1
    assert m.read(BAR0_BASE, 4) == b"\x01" * 4  # the primary is guest memory
    assert m.worker.names()[-3:] == ["destroy_primary_surface", "reset_cursor",
                                     "create_primary_surface"]


@pytest.mark.parametrize("width,height,stride,value", [
    (4096, 4096, -16384, 0),  # larger than the 8 MiB framebuffer
    (640, 480, -2558, 0),  # stride not a multiple of 4
    (640, 480, -2560, 1),  # argument must be 0
    (640, 480, -(1 << 31), 0),
    (640, 480, -1200, 0),  # stride shorter than a row
])
def test_create_primary_rejections(width, height, stride, value):
    m = QXLMachine()
    m.set_mask(0x3F)
    m.add_memslot(1)
    m.create_primary(width, height, stride, value=value)
    assert m.dev.guest_bug and m.int_pending & Q.QXL_INTERRUPT_ERROR


def test_create_primary_twice_is_a_guest_bug_but_proceeds():
    m = QXLMachine()
    m.native()
    m.create_primary(320, 200)
    assert m.dev.guest_bug and m.worker.primary.width == 320


def test_destroy_primary_and_surfaces():
    m = QXLMachine()
    m.native()
    m.out(Q.QXL_IO_DESTROY_PRIMARY)
    assert m.dev.mode == QXLMode.UNDEFINED
    assert m.worker.names()[-2:] == ["destroy_primary_surface", "reset_cursor"]
    m.worker.calls.clear()
    m.out(Q.QXL_IO_DESTROY_PRIMARY)  # nothing left: ignored
    assert m.worker.calls == [] and not m.dev.guest_bug
    m.out(Q.QXL_IO_DESTROY_SURFACE_WAIT, 5)
    assert m.worker.calls[-1] == ("destroy_surface_wait", (5,))
    m.out(Q.QXL_IO_DESTROY_ALL_SURFACES)
    assert m.worker.names()[-1] == "destroy_surfaces"
    m.out(Q.QXL_IO_DESTROY_PRIMARY, 3)
    assert m.dev.guest_bug


def test_destroy_surface_id_range():
    m = QXLMachine(surfaces=16)
    m.native()
    m.out(Q.QXL_IO_DESTROY_SURFACE_WAIT, 16)
    assert m.dev.guest_bug


def test_set_mode_compat_path():
    m = QXLMachine()
    m.set_mask(0x3F)
    m.out(Q.QXL_IO_SET_MODE, 6)  # 800x480x16 orientation 1
    assert m.dev.mode == QXLMode.COMPAT
    p = m.worker.primary
    assert (p.width, p.height, p.stride, p.format) == (800, 480, -3200, 32)
    assert int(m.rom_get("mode")) == 6
    # slot 0 covers BAR0 with guest-physical offsets; the commands are compat
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 0x7C00})
    addr = put_drawable(m, Q.QXL_DRAW_FILL, u, compat=True)
    m.push("cmd_ring", addr, Q.QXL_CMD_DRAW, raw_phys=True)
    (cmd,) = m.pull()
    assert cmd.flags == Q.QXL_COMMAND_FLAG_COMPAT | Q.QXL_COMMAND_FLAG_COMPAT_16BPP
    assert cmd.payload.u.brush.color == 0xFF0000  # x1r5g5b5 red widened
    m.out(Q.QXL_IO_SET_MODE, 128)
    assert m.dev.guest_bug


def test_reset_returns_everything_to_power_on():
    m = QXLMachine()
    m.native()
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    m.pull()
    m.dev.set_client_capabilities(True, b"\x07")
    m.out(Q.QXL_IO_DETACH_PRIMARY)
    assert m.dev.guest_bug and m.irq.level
    m.out(Q.QXL_IO_RESET)
    assert not m.dev.guest_bug and not m.irq.level
    assert m.dev.mode == QXLMode.VGA
    assert m.int_pending == 0 and int(m.ram_get("int_mask")) == 0
    assert m.ring_counters("cmd_ring") == (32, 0, 1, 0, 0)
    assert m.ring_counters("release_ring") == (8, 0, 1, 0, 0)
    assert int(m.rom_get("client_present")) == 1  # QEMU keeps it in the shadow ROM
    for name in ("reset_cursor", "reset_image_cache", "destroy_surfaces", "reset_memslots"):
        assert name in m.worker.names()
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    m.create_primary()
    assert m.pull() == [] and m.dev.guest_bug  # slot 1 is gone
    # machine reset (the bus) clears the PCI header as well
    m.bus.reset()
    assert not m.dev.guest_bug and m.config_read(0x10, 4) == 0

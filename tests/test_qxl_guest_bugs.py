"""One test per class of historic QXL/SPICE guest-input bug (the CVEs in the
reference notes): each malformed input is refused as a guest bug -- ERROR
raised, the display ring no longer consumed -- while the machine and the
other devices keep working, and QXL_IO_RESET brings the device back."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from devices.qxl import layout as L
from devices.vdiport import VDIPortDevice
from spice import qxl as Q
from tests.qxl_harness import BAR0_BASE, QXLMachine, put_bitmap_image, put_drawable, record

VDI_IO = 0xC200
VDI_RAM = 0xF1000000


@pytest.fixture
def m() -> QXLMachine:
    """A QXL device with a VDIPort beside it on the same bus."""
    machine = QXLMachine()
    vdi = VDIPortDevice(machine.clock)
    devfn = machine.bus.plug(vdi)
    machine.config_write(0x10, 4, VDI_IO, devfn=devfn)
    machine.config_write(0x14, 4, VDI_RAM, devfn=devfn)
    machine.config_write(0x04, 2, 3, devfn=devfn)
    machine.vdi = vdi  # type: ignore[attr-defined]
    machine.native()
    machine.ack()
    return machine


def fill(m: QXLMachine, **head: object) -> int:
    u = record(L.FILL, {"brush.type": Q.SPICE_BRUSH_TYPE_SOLID, "brush.color": 0xFF})
    return put_drawable(m, Q.QXL_DRAW_FILL, u, **head)


def copy_of(m: QXLMachine, image_addr: int, area: tuple = (0, 0, 1, 1)) -> int:
    u = record(L.COPY, {"src_bitmap": m.phys(image_addr), "src_area": area,
                        "rop_descriptor": Q.SPICE_ROPD_OP_PUT})
    return put_drawable(m, Q.QXL_DRAW_COPY, u)


def refused(m: QXLMachine, addr_or_phys: int, ctype: int = Q.QXL_CMD_DRAW,
            raw: bool = False, ring: str = "cmd_ring") -> None:
    m.push(ring, addr_or_phys, ctype, raw_phys=raw)
    pulled = m.pull() if ring == "cmd_ring" else m.pull_cursor()
    assert pulled == []
    assert_guest_bug_then_recovery(m)


def assert_guest_bug_then_recovery(m: QXLMachine) -> None:
    dev = m.dev
    assert dev.guest_bug
    assert m.int_pending & Q.QXL_INTERRUPT_ERROR and m.irq.level
    # the display ring is left alone; ports other than RESET are ignored
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    assert m.pull() == []
    wakeups = m.worker.wakeups
    m.out(Q.QXL_IO_NOTIFY_CMD)
    assert m.worker.wakeups == wakeups
    # the rest of the machine is unaffected: the agent port next door works
    vdi: VDIPortDevice = m.vdi  # type: ignore[attr-defined]
    assert m.ioports.read(VDI_IO, 4) >= 1  # connect
    assert vdi.write(b"still here") == 10
    assert m.read(VDI_RAM + 16 + 20 + 32 * 512 + 20 + 8, 10) == b"still here"
    m.ioports.write(VDI_IO, 4, 0)
    # and a reset brings the QXL device back
    m.out(Q.QXL_IO_RESET)
    assert not dev.guest_bug and not m.irq.level
    m.free_all()
    m.native()
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    (cmd,) = m.pull()
    assert cmd.payload.u.brush.color == 0xFF and not dev.guest_bug


# -- CVE-2010-0428/0429/0431: guest pointers followed without validation -------------

@pytest.mark.parametrize("phys", [
    0,  # slot 0 is not active for a native driver
    (5 << 56) | 0x1000,  # inactive slot
    (1 << 56) | (16 << 20),  # past the end of slot 1
    (1 << 56) | ((1 << 48) - 8),  # offset near the top of the 48 bits
])
def test_unvalidated_command_pointer(m, phys):
    refused(m, phys, raw=True)


def test_pointer_inside_a_command_into_nowhere(m):
    u = record(L.COPY, {"src_bitmap": (6 << 56) | 64, "src_area": (0, 0, 1, 1)})
    refused(m, put_drawable(m, Q.QXL_DRAW_COPY, u))


# -- CVE-2014-3615: a mode larger than the VGA memory ---------------------------------

def test_primary_larger_than_vga_memory(m):
    m.out(Q.QXL_IO_RESET)
    m.set_mask(0x3F)
    m.add_memslot(1)
    m.create_primary(8192, 4320, -8192 * 4)
    assert_guest_bug_then_recovery(m)


def test_vbe_mode_larger_than_vga_memory_is_clamped(m):
    m.out(Q.QXL_IO_RESET)
    for index, value in ((1, 8192), (2, 8192), (3, 32), (4, 0x41)):
        m.ioports.write(0x1CE, 2, index)
        m.ioports.write(0x1CF, 2, value)
    m.ioports.write(0x1CE, 2, 2)
    yres = m.ioports.read(0x1CF, 2)
    assert yres * 8192 * 4 <= m.dev.vgamem_size
    m.refresh()
    p = m.worker.primary
    assert (p.width, p.height) == (8192, yres)


# -- CVE-2015-3247: monitors config count changed while it is read --------------------

def test_monitors_config_count_is_read_once(m):
    m.out(Q.QXL_IO_RESET)
    m.native()
    dev = m.dev
    dev.max_outputs = 64
    # the config sits at the end of a 4 KiB slot: one head fits, 64 do not
    end = BAR0_BASE + dev.ram_size - 8192
    m.add_memslot(4, end - 4096, end)
    cfg_addr = end - 4 - 28
    m.write(cfg_addr, np.array([1, 64], "<u2").tobytes() + bytes(28))
    m.ram_set("monitors_config", (4 << 56) | (4096 - 4 - 28))
    stop = threading.Event()

    def flip() -> None:  # a second vCPU rewriting count as fast as it can
        while not stop.is_set():
            for count in (64, 1):
                m.write(cfg_addr, np.array([count], "<u2").tobytes())

    racer = threading.Thread(target=flip)
    racer.start()
    try:
        outcomes = set()
        for _ in range(300):
            m.out(Q.QXL_IO_MONITORS_CONFIG_ASYNC)
            if dev.guest_bug:
                outcomes.add("bug")
                m.out(Q.QXL_IO_RESET)
                m.native()
                m.add_memslot(4, end - 4096, end)
                m.ram_set("monitors_config", (4 << 56) | (4096 - 4 - 28))
            else:
                name, args = m.worker.calls[-1]
                if name == "monitors_config_async":
                    assert len(args[0].heads) == 1  # never 64 heads past the slot
                    outcomes.add("one head")
    finally:
        stop.set()
        racer.join()
    assert outcomes <= {"bug", "one head"} and outcomes


def test_parsed_commands_do_not_change_with_guest_memory(m):
    addr = fill(m, bbox=(0, 0, 10, 10))
    m.push("cmd_ring", addr, Q.QXL_CMD_DRAW)
    (cmd,) = m.pull(release=False)
    m.write(addr, bytes(L.DRAWABLE_SIZE))  # the guest scribbles afterwards
    assert cmd.payload.bbox == Q.Rect(0, 0, 10, 10)
    assert cmd.payload.u.brush.color == 0xFF


# -- CVE-2015-5260: invalid surface ids ----------------------------------------------------

@pytest.mark.parametrize("what", ["draw", "dependency", "create", "update", "image"])
def test_invalid_surface_ids(m, what):
    n = m.dev.n_surfaces
    if what == "draw":
        addr, ctype = fill(m, surface_id=n), Q.QXL_CMD_DRAW
    elif what == "dependency":
        addr, ctype = fill(m, surfaces_dest=(0, n + 5, -1)), Q.QXL_CMD_DRAW
    elif what == "create":
        addr = m.put(L.SURFACE_CMD, {"surface_id": 0xFFFFFFFF, "type": 0,
                                     "surface_create": (32, 1, 1, 4, m.phys(BAR0_BASE))})
        ctype = Q.QXL_CMD_SURFACE
    elif what == "update":
        addr, ctype = m.put(L.UPDATE_CMD, {"surface_id": n}), Q.QXL_CMD_UPDATE
    else:
        img = np.zeros(1, L.IMAGE)
        img["descriptor"] = (1, Q.SPICE_IMAGE_TYPE_SURFACE, 0, 1, 1)
        img["surface_id"] = n
        addr, ctype = copy_of(m, m.put_bytes(img.tobytes())), Q.QXL_CMD_DRAW
    refused(m, addr, ctype)


# -- CVE-2015-5261: size arithmetic, chunk lists, double fetches -----------------------------

def test_bitmap_size_overflow(m):
    # 0x10000 rows of 0x10000 bytes: 4 GiB, wraps to 0 in 32-bit arithmetic
    img = put_bitmap_image(m, b"", 0x4000, 0x10000, 0x10000)
    refused(m, copy_of(m, img))


def test_bitmap_width_overflow(m):
    # stride 4 for a 0x40000001-pixel 32-bit row: 32-bit width*4 wraps to 4
    img = put_bitmap_image(m, b"\0" * 4, 0x40000001, 1, 4)
    refused(m, copy_of(m, img))


def test_surface_size_overflow(m):
    addr = m.put(L.SURFACE_CMD, {"surface_id": 1, "type": Q.QXL_SURFACE_CMD_CREATE,
                                 "surface_create": (32, 0x10000, 0x10000, 0x40000,
                                                    m.phys(BAR0_BASE))})
    refused(m, addr, Q.QXL_CMD_SURFACE)


def test_glyph_larger_than_its_string(m):
    head = record(L.RASTER_GLYPH_HEAD, {"width": 0xFFFF, "height": 0xFFFF})
    data = head.tobytes() + b"\xff" * 16
    string = m.put(L.STRING, {"data_size": len(data), "length": 1,
                              "flags": Q.SPICE_STRING_FLAGS_RASTER_A8,
                              "chunk.data_size": len(data)}, data)
    u = record(L.TEXT, {"str": m.phys(string)})
    refused(m, put_drawable(m, Q.QXL_DRAW_TEXT, u))


def test_circular_chunk_list(m):
    a = m.alloc(20 + 16)
    b = m.alloc(20 + 16)
    m.write(a, record(L.DATA_CHUNK, {"data_size": 0, "next_chunk": m.phys(b)}).tobytes())
    m.write(b, record(L.DATA_CHUNK, {"data_size": 0, "next_chunk": m.phys(a)}).tobytes())
    img = np.zeros(1, L.IMAGE)
    img["descriptor"] = (1, Q.SPICE_IMAGE_TYPE_BITMAP, 0, 4, 4)
    img["bitmap"] = (Q.SPICE_BITMAP_FMT_32BIT, 0, 4, 4, 16, 0, m.phys(a))
    refused(m, copy_of(m, m.put_bytes(img.tobytes())))


def test_chunks_holding_more_than_declared(m):
    img = put_bitmap_image(m, b"", 4, 4, 16, chunks=[b"\0" * 64, b"\0" * 64])
    refused(m, copy_of(m, img))


def test_overlapping_chunks_cannot_stand_for_more_memory_than_the_device_has(m):
    # Nine chunk headers 32 bytes apart, each claiming the 4 MiB that follow
    # it: every chunk is inside the slot, yet together they hold 36 MiB
    # from a device with 17 MiB of memory.  Gathering them would let a
    # guest make the host allocate up to 2 GiB per command.
    piece, n = 4 << 20, 9
    base = m.alloc(piece + 32 * n)
    for i in range(n):
        nxt = m.phys(base + 32 * (i + 1)) if i + 1 < n else 0
        m.write(base + 32 * i, record(L.DATA_CHUNK, {"data_size": piece,
                                                      "next_chunk": nxt}).tobytes())
    rows = n * piece // 4096
    img = np.zeros(1, L.IMAGE)
    img["descriptor"] = (1, Q.SPICE_IMAGE_TYPE_BITMAP, 0, 1024, rows)
    img["bitmap"] = (Q.SPICE_BITMAP_FMT_32BIT, 0, 1024, rows, 4096, 0, m.phys(base))
    refused(m, copy_of(m, m.put_bytes(img.tobytes())))


def test_chunk_data_past_the_slot(m):
    last = BAR0_BASE + m.dev.ram_size - 8192 - 24  # a chunk just below the RAM header
    m.write(last, record(L.DATA_CHUNK, {"data_size": 64 * 1024}).tobytes())
    m.add_memslot(2, BAR0_BASE, BAR0_BASE + m.dev.ram_size - 8192)
    img = np.zeros(1, L.IMAGE)
    img["descriptor"] = (1, Q.SPICE_IMAGE_TYPE_BITMAP, 0, 4, 4096)
    img["bitmap"] = (Q.SPICE_BITMAP_FMT_32BIT, 0, 4, 4096, 16, 0,
                     (2 << 56) | (last - BAR0_BASE))
    refused(m, copy_of(m, m.put_bytes(img.tobytes())))


def test_clip_rect_count_and_bytes_disagree(m):
    clip = m.put(L.CLIP_RECTS, {"num_rects": 1000, "chunk.data_size": 16}, bytes(16))
    refused(m, fill(m, clip=(Q.SPICE_CLIP_TYPE_RECTS, m.phys(clip))))


def test_path_segment_overruns(m):
    seg = np.array([1, 1000], "<u4").tobytes() + bytes(8)
    path = m.put(L.PATH, {"data_size": len(seg), "chunk.data_size": len(seg)}, seg)
    u = record(L.STROKE, {"path": m.phys(path), "brush.type": 1})
    refused(m, put_drawable(m, Q.QXL_DRAW_STROKE, u))


# -- CVE-2016-2150: primary surface parameters ------------------------------------------

@pytest.mark.parametrize("mem,fmt", [
    ((1 << 56) | (15 << 20), 32),  # the primary would run past the slot
    (None, 7),  # no such surface format
])
def test_bad_primary_surface_parameters(m, mem, fmt):
    m.out(Q.QXL_IO_RESET)
    m.set_mask(0x3F)
    m.add_memslot(1)
    m.create_primary(1024, 768, mem=mem, fmt=fmt)
    assert_guest_bug_then_recovery(m)


# -- CVE-2019-3813: slot id and generation taken from the guest pointer -----------------

@pytest.mark.parametrize("phys", [(0xFF << 56) | 0x100, (8 << 56), (1 << 56) | (3 << 48)])
def test_slot_id_and_generation_from_the_guest(m, phys):
    refused(m, phys, raw=True)  # spice-server would abort the whole VM here


# -- CVE-2019-12155: a release without release info --------------------------------------

def test_release_without_release_info(m):
    m.dev.release_resource(None)
    m.dev.release_resource(object())  # not a token of this device
    assert not m.dev.guest_bug
    m.push("cmd_ring", fill(m), Q.QXL_CMD_DRAW)
    assert len(m.pull()) == 1


# -- CVE-2021-4206 / CVE-2021-4207: cursor size and double fetch ---------------------------

def cursor_set(m: QXLMachine, w: int, h: int, data: bytes, ctype: int = 0) -> int:
    shape = m.put(L.CURSOR, {"header": (1, ctype, w, h, 0, 0), "data_size": len(data),
                             "chunk.data_size": len(data)}, data)
    return m.put(L.CURSOR_CMD, {"type": Q.QXL_CURSOR_SET, "set_shape": m.phys(shape)})


@pytest.mark.parametrize("w,h,size", [(0xFFFF, 0xFFFF, 64), (513, 1, 513 * 4),
                                      (64, 64, 64 * 64 * 4 - 1)])
def test_cursor_sizes(m, w, h, size):
    refused(m, cursor_set(m, w, h, bytes(size)), Q.QXL_CMD_CURSOR, ring="cursor_ring")


def test_cursor_header_is_read_once(m):
    addr = cursor_set(m, 2, 2, bytes(range(16)))
    m.push("cursor_ring", addr, Q.QXL_CMD_CURSOR)
    (cmd,) = m.pull_cursor(release=False)
    shape_addr = int(np.frombuffer(m.read(addr + 14, 8), "<u8")[0]) - (1 << 56) + BAR0_BASE
    m.write(shape_addr + 10, np.array([0xFFFF, 0xFFFF], "<u2").tobytes())
    s = cmd.payload.shape
    assert (s.width, s.height) == (2, 2) and s.data.tobytes() == bytes(range(16))


# -- CVE-2022-4144: an object straddling the end of the memory --------------------------------

def test_object_straddling_the_end_of_the_slot(m):
    end = BAR0_BASE + m.dev.ram_size
    m.add_memslot(3, end - 4096, end)
    # a drawable whose first 100 bytes are inside the slot
    refused(m, (3 << 56) | (4096 - 100), raw=True)


def test_cursor_command_straddling_the_end(m):
    end = BAR0_BASE + m.dev.ram_size
    m.add_memslot(3, end - 4096, end)
    refused(m, (3 << 56) | (4096 - 20), Q.QXL_CMD_CURSOR, raw=True, ring="cursor_ring")


# -- CVE-2020-14355: guest-supplied QUIC data ----------------------------------------------------

def test_quic_image_declaring_more_than_its_chunks(m):
    img = np.zeros(1, L.IMAGE)
    img["descriptor"] = (1, Q.SPICE_IMAGE_TYPE_QUIC, 0, 8, 8)
    img["quic_data_size"] = 0x7FFFFFFF
    img["quic_chunk"] = (20, 0, 0)
    stream = np.array([0x43495551, 0, 4, 8, 8], "<u4").tobytes()
    raw = img.tobytes()[:L.IMAGE_QUIC_DATA_OFFSET] + stream
    refused(m, copy_of(m, m.put_bytes(raw.ljust(48, b"\0"))))


@pytest.mark.parametrize("ring", ["cmd_ring", "cursor_ring"])
def test_command_ring_with_a_forged_item_count(m, ring):
    # num_items is guest memory: a ring claiming 64 slots with the consumer
    # at 40 would index past the 32 real ones.
    base = m.ram_header + L.OFF[ring]
    m.write(base, np.array([64, 41, 42, 40], "<u4").tobytes())  # num, prod, notify, cons
    pulled = m.pull() if ring == "cmd_ring" else m.pull_cursor()
    assert pulled == []
    assert m.dev.guest_bug and m.int_pending & Q.QXL_INTERRUPT_ERROR

"""The QXL I/O ports (BAR3) with QEMU 7.2's semantics, and the hook on the
legacy VGA ports that drops a revision <= 4 device back to VGA mode.

A port is written with one byte (``outb``); the byte is the argument
(a slot id, a mode number, a surface id or 0).  The order of the checks
is QEMU's:

1. in the guest-bug state everything but RESET is ignored;
2. revision <= 3 knows no port above FLUSH_RELEASE (guest bug);
3. in VGA mode only RESET, SET_MODE, MEMSLOT_ADD(_ASYNC), MEMSLOT_DEL,
   CREATE_PRIMARY(_ASYNC), UPDATE_IRQ and LOG are honoured; the others are
   ignored, and an ignored asynchronous port still gets its IO_CMD;
4. only one asynchronous operation may be outstanding (guest bug);
5. the port's own handler.

Every asynchronous operation ends with QXL_INTERRUPT_IO_CMD, raised when
the worker calls ``async_complete`` -- or at once when the request is
rejected ("cancelled"), as QEMU does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from devices.bus import PortHandler
from devices.qxl.layout import QXLMode
from devices.qxl.memslots import GuestBug
from devices.qxl.rings import CONS, PROD
from spice import qxl as Q

if TYPE_CHECKING:
    from devices.qxl.device import QXLDevice

log = logging.getLogger("devices.qxl")
guest_log = logging.getLogger("devices.qxl.guest")

# Asynchronous ports and the synchronous operation each one performs.
ASYNC_PORTS = {
    Q.QXL_IO_UPDATE_AREA_ASYNC: Q.QXL_IO_UPDATE_AREA,
    Q.QXL_IO_MEMSLOT_ADD_ASYNC: Q.QXL_IO_MEMSLOT_ADD,
    Q.QXL_IO_CREATE_PRIMARY_ASYNC: Q.QXL_IO_CREATE_PRIMARY,
    Q.QXL_IO_DESTROY_PRIMARY_ASYNC: Q.QXL_IO_DESTROY_PRIMARY,
    Q.QXL_IO_DESTROY_SURFACE_ASYNC: Q.QXL_IO_DESTROY_SURFACE_WAIT,
    Q.QXL_IO_DESTROY_ALL_SURFACES_ASYNC: Q.QXL_IO_DESTROY_ALL_SURFACES,
    Q.QXL_IO_FLUSH_SURFACES_ASYNC: Q.QXL_IO_FLUSH_SURFACES_ASYNC,
    Q.QXL_IO_MONITORS_CONFIG_ASYNC: Q.QXL_IO_MONITORS_CONFIG_ASYNC,
}

# Ports honoured while the device is in VGA mode.
VGA_MODE_PORTS = frozenset({
    Q.QXL_IO_RESET, Q.QXL_IO_SET_MODE, Q.QXL_IO_MEMSLOT_ADD, Q.QXL_IO_MEMSLOT_DEL,
    Q.QXL_IO_CREATE_PRIMARY, Q.QXL_IO_UPDATE_IRQ, Q.QXL_IO_LOG,
    Q.QXL_IO_MEMSLOT_ADD_ASYNC, Q.QXL_IO_CREATE_PRIMARY_ASYNC,
})

# Legacy VGA ports whose write, on revision <= 4 outside VGA mode, destroys
# the primary and returns to VGA mode (QEMU's qxl_vga_portio_list).
VGA_MODE_TRIGGER_PORTS = frozenset(
    [0x3B4, 0x3B5, 0x3BA, 0x3D4, 0x3D5, 0x3DA] + list(range(0x3C0, 0x3D0)))

INT32_MIN = -(1 << 31)


class QXLIOBar:
    """BAR3's port handler.  Accesses wider than a byte are invalid for the
    region (QEMU: min = max access size 1): writes are dropped and reads
    return all-ones.  Byte reads return 0xff."""

    def __init__(self, device: QXLDevice) -> None:
        self._device = device

    def io_read(self, offset: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def io_write(self, offset: int, size: int, value: int) -> None:
        if size != 1:
            log.debug("qxl: %d-byte write to port %d ignored", size, offset)
            return
        self._device._port_write(offset, value & 0xFF)


class VGAPortGuard:
    """Wraps the legacy VGA port handler: on revision <= 4 a write to a VGA
    register while not in VGA mode destroys the primary and soft-resets the
    device into VGA mode, before the register is written."""

    def __init__(self, device: QXLDevice) -> None:
        self._device = device

    def wrap(self, inner: PortHandler) -> PortHandler:
        device = self._device

        class Guarded:
            def io_read(self, offset: int, size: int) -> int:
                return inner.io_read(offset, size)

            def io_write(self, offset: int, size: int, value: int) -> None:
                port = 0x3B0 + offset
                if any(p in VGA_MODE_TRIGGER_PORTS for p in range(port, port + size)):
                    device._vga_register_write()
                inner.io_write(offset, size, value)

        return Guarded()


class QXLPortsMixin:
    """Port handling of :class:`devices.qxl.device.QXLDevice`."""

    def _port_table(self: QXLDevice) -> dict[int, Callable[[int, int | None], None]]:
        return {
            Q.QXL_IO_NOTIFY_CMD: self._io_notify,
            Q.QXL_IO_NOTIFY_CURSOR: self._io_notify,
            Q.QXL_IO_UPDATE_AREA: self._io_update_area,
            Q.QXL_IO_UPDATE_IRQ: lambda val, cookie: self._update_irq(),
            Q.QXL_IO_NOTIFY_OOM: self._io_notify_oom,
            Q.QXL_IO_RESET: lambda val, cookie: self._hard_reset(),
            Q.QXL_IO_SET_MODE: lambda val, cookie: self._set_mode(val),
            Q.QXL_IO_LOG: self._io_log,
            Q.QXL_IO_MEMSLOT_ADD: self._io_memslot_add,
            Q.QXL_IO_MEMSLOT_DEL: self._io_memslot_del,
            Q.QXL_IO_CREATE_PRIMARY: self._io_create_primary,
            Q.QXL_IO_DESTROY_PRIMARY: self._io_destroy_primary,
            Q.QXL_IO_DESTROY_SURFACE_WAIT: self._io_destroy_surface,
            Q.QXL_IO_DESTROY_ALL_SURFACES: self._io_destroy_all_surfaces,
            Q.QXL_IO_FLUSH_SURFACES_ASYNC: self._io_flush_surfaces,
            Q.QXL_IO_FLUSH_RELEASE: self._io_flush_release,
            Q.QXL_IO_MONITORS_CONFIG_ASYNC: self._io_monitors_config,
        }

    def _port_write(self: QXLDevice, port: int, val: int) -> None:
        try:
            with self._mode_lock:
                self._dispatch_port(port, val)
        except GuestBug as bug:
            self._guest_bug(str(bug))
        except Exception:
            self._internal_error(f"port {port} write")

    def _dispatch_port(self: QXLDevice, port: int, val: int) -> None:
        if self.guest_bug and port != Q.QXL_IO_RESET:
            return
        if self.revision <= 3 and port > Q.QXL_IO_FLUSH_RELEASE:
            raise GuestBug(f"port {port} does not exist on revision {self.revision}")
        if self.mode == QXLMode.VGA and port not in VGA_MODE_PORTS:
            if Q.QXL_IO_UPDATE_AREA_ASYNC <= port < Q.QXL_IO_RANGE_SIZE:
                self._send_events(Q.QXL_INTERRUPT_IO_CMD)  # be nice to buggy drivers
            return
        base = ASYNC_PORTS.get(port, port)
        cookie = None
        if port in ASYNC_PORTS:
            with self._lock:
                if self.current_async is not None:
                    raise GuestBug(f"async port {port} while port {self.current_async} "
                                   "has not completed")
                self.current_async = port
                cookie = self._next_cookie
                self._next_cookie += 1
                self._cookies[cookie] = port
        handler = self._ports.get(base)
        if handler is None:
            raise GuestBug(f"unexpected I/O port {port}")
        handler(val, cookie)

    def _cancel_async(self: QXLDevice, cookie: int | None) -> None:
        """A rejected asynchronous request still completes, with IO_CMD."""
        if cookie is None:
            return
        with self._lock:
            self._cookies.pop(cookie, None)
            self.current_async = None
        self._send_events(Q.QXL_INTERRUPT_IO_CMD)

    # -- handlers: (argument byte, async cookie or None)
    def _io_notify(self: QXLDevice, val: int, cookie: int | None) -> None:
        self.worker.wakeup()

    def _io_update_area(self: QXLDevice, val: int, cookie: int | None) -> None:
        sid = int(self.ram_field("update_surface"))
        r = self.ram_field("update_area")
        area = Q.Rect(int(r["top"]), int(r["left"]), int(r["bottom"]), int(r["right"]))
        # QEMU lets surface id == n_surfaces through; the server would index
        # past its table, so it is refused here.
        if sid >= self.n_surfaces:
            raise GuestBug(f"UPDATE_AREA: invalid surface id {sid}")
        if (area.left >= area.right or area.top >= area.bottom or area.left < 0
                or area.top < 0):
            self._guest_bug(f"UPDATE_AREA: invalid area {area}")
            if area.left == area.right or area.top == area.bottom:
                with self._lock:  # old drivers send empty areas: keep going
                    self.guest_bug = False
                self._cancel_async(cookie)
            return
        if cookie is None:
            self.worker.update_area(sid, area, False)
        else:
            self.worker.update_area_async(sid, area, False, cookie)

    def _io_notify_oom(self: QXLDevice, val: int, cookie: int | None) -> None:
        if not self.release_ring.is_empty():
            return
        with self._lock:
            self.releases.oom_running = True
        try:
            self.worker.oom()
        finally:
            with self._lock:
                self.releases.oom_running = False

    def _io_log(self: QXLDevice, val: int, cookie: int | None) -> None:
        raw = self.ram_field("log_buf").tobytes()  # not trusted to be NUL-terminated
        text = raw.split(b"\0", 1)[0].decode("latin-1").rstrip("\n")
        level = logging.INFO if self.guestdebug else logging.DEBUG
        guest_log.log(level, "%s guest: %s", self.name, text)

    def _io_memslot_add(self: QXLDevice, val: int, cookie: int | None) -> None:
        if val >= 8:
            raise GuestBug(f"MEMSLOT_ADD: slot id {val} out of range")
        if self.slots.is_active(val):
            raise GuestBug(f"MEMSLOT_ADD: slot {val} is already active")
        slot = self.ram_field("mem_slot")
        self.slots.add(val, int(slot["mem_start"]), int(slot["mem_end"]), 0,
                       self._bar_windows())
        if cookie is not None:
            # the slot lives in the device; there is nothing for the worker to do
            self.async_complete(cookie)

    def _io_memslot_del(self: QXLDevice, val: int, cookie: int | None) -> None:
        if val >= 8:
            raise GuestBug(f"MEMSLOT_DEL: slot id {val} out of range")
        self.slots.delete(val)

    def _io_create_primary(self: QXLDevice, val: int, cookie: int | None) -> None:
        if val != 0:
            self._guest_bug(f"CREATE_PRIMARY: argument {val} != 0")
            self._cancel_async(cookie)
            return
        self._create_guest_primary(self.ram_field("create_surface"), cookie)

    def _io_destroy_primary(self: QXLDevice, val: int, cookie: int | None) -> None:
        if val != 0:
            self._guest_bug(f"DESTROY_PRIMARY: argument {val} != 0")
            self._cancel_async(cookie)
            return
        if not self._destroy_primary(cookie):
            self._cancel_async(cookie)

    def _io_destroy_surface(self: QXLDevice, val: int, cookie: int | None) -> None:
        if val >= self.n_surfaces:
            self._guest_bug(f"DESTROY_SURFACE: surface id {val} >= {self.n_surfaces}")
            self._cancel_async(cookie)
            return
        if cookie is None:
            self.worker.destroy_surface_wait(val)
        else:
            self.worker.destroy_surface_async(val, cookie)

    def _io_destroy_all_surfaces(self: QXLDevice, val: int, cookie: int | None) -> None:
        self.mode = QXLMode.UNDEFINED
        if cookie is None:
            self.worker.destroy_surfaces()
        else:
            self.worker.destroy_surfaces_async(cookie)

    def _io_flush_surfaces(self: QXLDevice, val: int, cookie: int | None) -> None:
        self.worker.flush_surfaces_async(cookie)

    def _io_flush_release(self: QXLDevice, val: int, cookie: int | None) -> None:
        with self._lock:
            if self.releases.ring_full():
                log.warning("%s: FLUSH_RELEASE with a full release ring (prod %d cons %d)",
                            self.name, self.release_ring.get(PROD),
                            self.release_ring.get(CONS))
            notify = self.releases.push(flush=True)
        if notify:
            self._send_events(Q.QXL_INTERRUPT_DISPLAY)

    def _io_monitors_config(self: QXLDevice, val: int, cookie: int | None) -> None:
        phys = int(self.ram_field("monitors_config"))
        self.guest_monitors_config = phys
        try:
            config = self.parser.monitors_config(phys, self.max_monitors)
        except GuestBug as bug:
            self._guest_bug(f"MONITORS_CONFIG_ASYNC: {bug}")
            self._cancel_async(cookie)
            return
        if config is None:
            log.warning("%s: ignoring an empty or malformed monitors config from the "
                        "driver", self.name)
            self._cancel_async(cookie)
            return
        self.worker.monitors_config_async(config, cookie)

    # -- legacy VGA register writes
    def _vga_register_write(self: QXLDevice) -> None:
        if self.mode == QXLMode.VGA or self.revision > 4:
            return
        try:
            with self._mode_lock:
                if self.mode != QXLMode.VGA:
                    self._destroy_primary(None)
                    self._soft_reset()
        except Exception:
            self._internal_error("VGA register write")

"""The QXLInterface the SPICE server's worker pulls from (QEMU's
``interface_*`` callbacks), for :class:`devices.qxl.device.QXLDevice`.

These run on the worker thread.  A command leaves ``get_command`` fully
translated and validated; a malformed one puts the device in its
guest-bug state and ``get_command`` returns None.  In VGA mode the display
commands are the host-generated copies of the legacy framebuffer and the
rings are left alone (nothing is consumed before the driver has a primary).
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

import numpy as np

from devices.qxl import layout as L
from devices.qxl.layout import QXLMode
from devices.qxl.memslots import GuestBug
from devices.qxl.release import GuestRelease, HostRelease, guest_release
from devices.qxl.rings import CONS, Ring
from spice import qxl as Q
from spice.interfaces import QXLDevInitInfo, QXLWorker

if TYPE_CHECKING:
    from devices.qxl.device import QXLDevice

log = logging.getLogger("devices.qxl")

_COMMAND = struct.Struct("<QI")  # QXLCommand: data, type (then padding)
assert _COMMAND.size == L.COMMAND.fields["padding"][1]


class QXLInterfaceMixin:
    """``spice.interfaces.QXLInterface`` for the QXL device."""

    # -- set-up
    def attach_worker(self: QXLDevice, worker: QXLWorker) -> None:
        self._worker = worker
        self._timer.start_ns(self.clock.now_ns())  # VGA refresh (host primary first)

    @property
    def max_monitors(self: QXLDevice) -> int:
        """The head limit spice-server applies to the driver's monitors
        config: QEMU hands it ``max_outputs`` as the display count, and
        spice-server makes that at least 1."""
        return max(1, self.max_outputs)

    def get_init_info(self: QXLDevice) -> QXLDevInitInfo:
        return QXLDevInitInfo(num_surfaces=self.n_surfaces,
                              ram_size=self.num_pages * L.PAGE_SIZE,
                              max_monitors=self.max_monitors)

    def set_compression_level(self: QXLDevice, level: int) -> None:
        """The server's image compression setting, shown to the guest."""
        self._shadow_rom["compression_level"] = level
        self._rom["compression_level"] = level

    # -- commands
    def _pop(self: QXLDevice, ring: Ring,
             display: bool) -> tuple[tuple[int, int], int, int] | None:
        """((data, type) of the next command, reset epoch, command flags)."""
        with self._lock:
            if (display and self.guest_bug) or ring.is_empty():
                return None
            cmd = _COMMAND.unpack_from(self.ram, ring.item_offset(CONS))
            notify = ring.pop()
            epoch, flags = self._epoch, self.cmdflags
        if notify:
            self._send_events(Q.QXL_INTERRUPT_DISPLAY if display else Q.QXL_INTERRUPT_CURSOR)
        return cmd, epoch, flags

    def _fetch(self: QXLDevice, display: bool) -> Q.Command | None:
        ring = self.cmd_ring if display else self.cursor_ring
        epoch = self._epoch
        try:
            popped = self._pop(ring, display)
            if popped is None:
                return None
            (phys, ctype), epoch, flags = popped
            if display and ctype == Q.QXL_CMD_DRAW:  # (display_command's commonest case)
                payload, (array, offset) = self.parser.drawable(phys, flags)
            elif display:
                payload, (array, offset) = self.parser.display_command(ctype, phys, flags)
            else:
                payload, (array, offset) = self.parser.cursor_command(ctype, phys)
        except GuestBug as bug:
            with self._lock:
                stale = epoch != self._epoch  # a reset raced with the parse
            if not stale:
                self._guest_bug(str(bug))
            return None
        # (a plain read: taking the lock for it would not stop a reset that
        # comes just after, which the release's epoch catches in any case)
        if epoch != self._epoch:
            return None
        return Q.Command(ctype, flags, L.MEMSLOT_GROUP_GUEST, payload,
                         guest_release((epoch, array, offset)))

    def get_command(self: QXLDevice) -> Q.Command | None:
        try:
            if self.mode == QXLMode.VGA:
                with self._lock:
                    return self._vga_updates.popleft() if self._vga_updates else None
            if self.cmd_ring.is_empty():
                # without the lock: a push racing with this read is found by
                # the next poll, or by the notification request, which
                # checks again under the lock
                return None
            return self._fetch(display=True)
        except Exception:
            self._internal_error("get_command")
            return None

    def get_cursor_command(self: QXLDevice) -> Q.Command | None:
        try:
            if self.mode == QXLMode.VGA or self.cursor_ring.is_empty():
                return None  # (unlocked, as in get_command)
            return self._fetch(display=False)
        except Exception:
            self._internal_error("get_cursor_command")
            return None

    def req_cmd_notification(self: QXLDevice) -> bool:
        with self._lock:
            if self.mode == QXLMode.VGA:
                return not self._vga_updates
            if self.guest_bug:
                return True  # nothing will be handed out until a reset
            return self.cmd_ring.cons_wait()

    def req_cursor_notification(self: QXLDevice) -> bool:
        with self._lock:
            if self.mode == QXLMode.VGA:
                return True
            return self.cursor_ring.cons_wait()

    # -- releases
    def release_resource(self: QXLDevice, release: object) -> None:
        if release is None or isinstance(release, HostRelease):
            return  # no release info (CVE-2019-12155) / a host-generated command
        if not isinstance(release, GuestRelease):
            log.warning("%s: release_resource with a foreign token %r", self.name, release)
            return
        try:
            with self._lock:
                if release.epoch != self._epoch:
                    return  # the guest memory it pointed at was reset
                notify = self.releases.release(release)
        except GuestBug as bug:
            self._guest_bug(str(bug))
            return
        except Exception:
            self._internal_error("release_resource")
            return
        if notify:
            self._send_events(Q.QXL_INTERRUPT_DISPLAY)

    def flush_resources(self: QXLDevice) -> int:
        try:
            with self._lock:
                count = self.releases.num_free_res
                notify = self.releases.push(flush=True) if count else False
        except GuestBug as bug:
            self._guest_bug(str(bug))
            return 0
        if notify:
            self._send_events(Q.QXL_INTERRUPT_DISPLAY)
        return count

    # -- completions and notifications from the worker
    def notify_update(self: QXLDevice, update_id: int) -> None:
        log.debug("%s: notify_update(%d) (QXL_CMD_UPDATE is deprecated)", self.name,
                  update_id)

    def async_complete(self: QXLDevice, cookie: int) -> None:
        with self._lock:
            port = self._cookies.pop(cookie, None)
            if port is None:
                log.debug("%s: completion of unknown or pre-reset cookie %r", self.name,
                          cookie)
                return
            if self.current_async != port:
                log.warning("%s: completion of port %d while port %s is current", self.name,
                            port, self.current_async)
            self.current_async = None
        self._send_events(Q.QXL_INTERRUPT_IO_CMD)

    def update_area_complete(self: QXLDevice, surface_id: int, dirty: list[Q.Rect]) -> None:
        log.debug("%s: update_area_complete(%d, %d rects)", self.name, surface_id,
                  len(dirty))

    # -- client state written into the ROM (revision >= 4)
    def set_client_capabilities(self: QXLDevice, client_present: bool, caps: bytes) -> None:
        if self.revision < 4:
            return
        block = np.zeros(L.CLIENT_CAPS_SIZE, np.uint8)
        raw = np.frombuffer(bytes(caps)[:L.CLIENT_CAPS_SIZE], np.uint8)
        block[:raw.size] = raw
        for rom in (self._shadow_rom, self._rom):
            rom["client_present"] = int(bool(client_present))
            rom["client_capabilities"] = block
        self._send_events(Q.QXL_INTERRUPT_CLIENT)

    def client_monitors_config(self: QXLDevice,
                               config: Q.ClientMonitorsConfig | None) -> bool:
        if self.revision < 4:
            return False
        mask = int(self._ram_u32[2])
        # Old Windows drivers toggle the mask between 0 and ~0: they do not
        # know this interrupt, so the client's layout goes to the agent.
        if mask in (0, 0xFFFFFFFF) or not mask & Q.QXL_INTERRUPT_CLIENT_MONITORS_CONFIG:
            return False
        if config is None:
            return True
        limit = L.CLIENT_MONITORS_MAX
        if self.max_outputs and self.max_outputs <= limit:
            limit = self.max_outputs
        rects = [((m.y) & 0xFFFFFFFF, (m.x) & 0xFFFFFFFF, (m.y + m.height) & 0xFFFFFFFF,
                  (m.x + m.width) & 0xFFFFFFFF) for m in config.monitors]
        cmc = self._rom["client_monitors_config"][0]
        count = min(len(rects), limit)
        changed = int(cmc["count"]) != count or any(
            tuple(int(v) for v in cmc["heads"][i]) != rects[i] for i in range(count))
        block = np.zeros(1, L.CLIENT_MONITORS_CONFIG)
        block["count"] = count
        for i in range(count):
            block["heads"][0, i] = rects[i]
        self._rom["client_monitors_config"] = block
        self._rom["client_monitors_config_crc"] = L.monitors_config_crc(block.view(np.uint8))
        if changed:
            self._send_events(Q.QXL_INTERRUPT_CLIENT_MONITORS_CONFIG)
        return True

"""The interfaces between the SPICE server library and its host.

This module is the whole contract, in the manner of libspice-server's
``spice.h``: the host (vm/ and devices/) implements the *host-side*
protocols and hands them to :class:`spice.server.SpiceServer`; the server
hands back the *server-side* handles declared at the end.  ``spice/``
imports nothing from ``vm/`` or ``devices/``; ``devices/`` may import this
module.

Host side (implemented by the host, called by the server):

* :class:`CoreInterface` -- the host's main event loop: fd watches and
  timers.  Callbacks run on the main loop thread.
* :class:`QXLInterface` -- implemented by the QXL device.  The server's
  worker thread *pulls* commands from it.
* :class:`KbdInterface`, :class:`MouseInterface`, :class:`TabletInterface`
  -- input sinks (the i8042, a tablet).  Called on the main loop thread.
* :class:`CharDeviceInterface` -- the agent byte stream (VDIPort).

Server side (implemented by the server, called by the host):

* :class:`QXLWorker` -- what the QXL device asks of the display worker
  (the ``spice_qxl_*`` calls of libspice-server).
* :class:`CharDeviceHandle` -- ``wakeup()`` when a char device has data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from spice.qxl import ClientMonitorsConfig, Command, MonitorsConfig, Rect, SurfaceCreate

# --------------------------------------------------------------------------
# CoreInterface


class WatchEvent(IntFlag):
    READ = 1
    WRITE = 2


class ChannelEvent(IntEnum):
    """``channel_event`` kinds (SPICE_CHANNEL_EVENT_*)."""

    CONNECTED = 1
    INITIALIZED = 2
    DISCONNECTED = 3


@dataclass(frozen=True)
class ChannelEventInfo:
    connection_id: int
    channel_type: int
    channel_id: int
    peer: tuple[str, int] | None


class Watch(Protocol):
    """Opaque handle returned by :meth:`CoreInterface.watch_add`."""


class CoreTimer(Protocol):
    """Opaque handle returned by :meth:`CoreInterface.timer_add`."""


class CoreInterface(Protocol):
    """The host's main event loop, as SpiceCoreInterface.

    The server never runs its own accept loop on the main thread: it asks
    the core to watch its listening socket and its main/inputs channel
    sockets.  All callbacks run on the core's thread, one at a time.
    """

    def watch_add(self, fd: int, events: WatchEvent,
                  callback: Callable[[int, WatchEvent], None]) -> Watch:
        """Call ``callback(fd, ready_events)`` whenever ``fd`` is ready for
        any of ``events``."""

    def watch_update_mask(self, watch: Watch, events: WatchEvent) -> None: ...

    def watch_remove(self, watch: Watch) -> None: ...

    def timer_add(self, callback: Callable[[], None]) -> CoreTimer:
        """A stopped one-shot timer."""

    def timer_start(self, timer: CoreTimer, ms: int) -> None:
        """(Re)arm ``timer`` to fire once after ``ms`` milliseconds."""

    def timer_cancel(self, timer: CoreTimer) -> None: ...

    def timer_remove(self, timer: CoreTimer) -> None: ...

    def channel_event(self, event: ChannelEvent, info: ChannelEventInfo) -> None:
        """Informational: a client channel connected, initialized or left."""

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the core thread as soon as possible.  Safe to
        call from any thread (this is how other threads post work to the
        main loop)."""


# --------------------------------------------------------------------------
# QXLInterface (device side of the display)


@dataclass(frozen=True)
class QXLDevInitInfo:
    """Static facts about the device the worker needs (QXLDevInitInfo)."""

    num_surfaces: int
    # The device's page area (QXLRom num_pages x 4 KiB, QEMU's qxl_ram_size):
    # the MAIN_INIT ram_hint clients size their GLZ window from.
    ram_size: int
    max_monitors: int = 64


class QXLInterface(Protocol):
    """Implemented by the QXL device; called on the server's worker thread.

    The device translates and validates every guest pointer before a command
    leaves ``get_command``: what the server receives is host data only
    (numpy views of guest memory for pixel data).  A malformed command is a
    guest bug the device handles; the server never sees it.
    """

    def attach_worker(self, worker: QXLWorker) -> None:
        """Called once when the device is added to the server."""

    def get_init_info(self) -> QXLDevInitInfo: ...

    def get_command(self) -> Command | None:
        """Pop the next display command (draw, update, message, surface) or
        None if the ring is empty or the device is not taking commands."""

    def req_cmd_notification(self) -> bool:
        """Ask to be woken (``QXLWorker.wakeup``) when the guest adds a
        command.  Returns False if commands are already waiting (do not
        sleep), True otherwise."""

    def get_cursor_command(self) -> Command | None: ...

    def req_cursor_notification(self) -> bool: ...

    def release_resource(self, release: object) -> None:
        """The server is done with the command that carried ``release``
        (``Command.release``); the device returns it to the guest."""

    def notify_update(self, update_id: int) -> None: ...

    def flush_resources(self) -> int:
        """Push batched releases to the guest now; returns how many."""

    def async_complete(self, cookie: int) -> None:
        """An asynchronous request started through :class:`QXLWorker`
        finished."""

    def update_area_complete(self, surface_id: int, dirty: list[Rect]) -> None: ...

    def set_client_capabilities(self, client_present: bool, caps: bytes) -> None:
        """A display client connected/disconnected; ``caps`` is its display
        channel capability bitmap (up to 58 bytes)."""

    def client_monitors_config(self, config: ClientMonitorsConfig | None) -> bool:
        """The client asked for this monitor layout.  Return True if the
        device took it (None only asks whether it would)."""

    def set_compression_level(self, level: int) -> None:
        """The server's image compression setting, shown to the guest in the
        ROM (libspice calls it at start and when the setting changes: 1 when
        images go out as QUIC and no video streaming is on, else 0)."""


class QXLWorker(Protocol):
    """Implemented by the server: requests from the QXL device to its worker
    (spice_qxl_* in libspice-server).  Called on the vCPU thread.

    Synchronous calls block the caller until the worker has done the work;
    the device must not hold a lock the worker needs while calling them.
    ``*_async`` calls return at once and end with
    ``QXLInterface.async_complete(cookie)``.
    """

    def wakeup(self) -> None:
        """Commands were added to a ring the worker asked to be told about."""

    def oom(self) -> None:
        """The guest ran out of device memory: free what can be freed."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def update_area(self, surface_id: int, area: Rect, clear_dirty: bool) -> list[Rect]:
        """Render pending drawables of ``area`` into the surface memory;
        returns the dirty rectangles (empty if clear_dirty is False)."""

    def update_area_async(self, surface_id: int, area: Rect, clear_dirty: bool,
                          cookie: int) -> None: ...

    def create_primary_surface(self, create: SurfaceCreate) -> None: ...

    def create_primary_surface_async(self, create: SurfaceCreate, cookie: int) -> None: ...

    def destroy_primary_surface(self) -> None: ...

    def destroy_primary_surface_async(self, cookie: int) -> None: ...

    def destroy_surface_wait(self, surface_id: int) -> None: ...

    def destroy_surface_async(self, surface_id: int, cookie: int) -> None: ...

    def destroy_surfaces(self) -> None:
        """Destroy every surface (DESTROY_ALL_SURFACES)."""

    def destroy_surfaces_async(self, cookie: int) -> None: ...

    def flush_surfaces_async(self, cookie: int) -> None:
        """Render all pending drawables into every surface."""

    def monitors_config_async(self, config: MonitorsConfig, cookie: int) -> None: ...

    def reset_cursor(self) -> None: ...

    def reset_image_cache(self) -> None: ...

    def reset_memslots(self) -> None:
        """The device's memory slots changed wholesale (reset): drop anything
        that still points into guest memory."""


# --------------------------------------------------------------------------
# Input


class KbdInterface(Protocol):
    """A keyboard (the i8042).  Scancodes are PC/AT set 1 bytes."""

    def push_scan_freg(self, byte: int) -> None: ...

    def get_leds(self) -> int:
        """Lock LEDs: bit0 scroll, bit1 num, bit2 caps (SPICE_KEYBOARD_MODIFIER_FLAGS)."""


class MouseInterface(Protocol):
    """A relative mouse (PS/2), used in server mouse mode.
    ``buttons``: bit0 left, bit1 middle, bit2 right (SPICE_MOUSE_BUTTON_MASK)."""

    def motion(self, dx: int, dy: int, dz: int, buttons: int) -> None: ...

    def buttons(self, buttons: int) -> None: ...


class TabletInterface(Protocol):
    """An absolute pointer, used in client mouse mode."""

    def set_logical_size(self, width: int, height: int) -> None: ...

    def position(self, x: int, y: int, buttons: int) -> None: ...

    def wheel(self, motion: int, buttons: int) -> None: ...

    def buttons(self, buttons: int) -> None: ...


# --------------------------------------------------------------------------
# Char devices (the agent stream)


class CharDeviceInterface(Protocol):
    """A byte-stream device (VDIPort carrying the vd_agent protocol).

    Called on the main loop thread.  ``write`` and ``read`` never block:
    ``write`` returns how many bytes the device accepted (0 = full, try again
    after ``CharDeviceHandle.wakeup``), ``read`` returns what is available.
    """

    subtype: str  # "vdagent"

    def attach(self, handle: CharDeviceHandle) -> None:
        """Called once when the device is added to the server."""

    def state(self, connected: bool) -> None:
        """A client-side consumer appeared or went away."""

    def write(self, data: bytes) -> int: ...

    def read(self, max_bytes: int) -> bytes: ...


class CharDeviceHandle(Protocol):
    """Implemented by the server for each char device."""

    def wakeup(self) -> None:
        """The device has data to read or room to write.  Any thread."""

    def port_event(self, opened: bool) -> None:
        """The guest side opened/closed the port (agent appeared/left)."""

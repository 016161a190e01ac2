"""The SPICE server: what the host calls, the listening socket, mouse mode and
the glue between channels (accepting, linking and sessions are in
:mod:`spice.session`).

:class:`SpiceServer` is what a host embeds, the way QEMU embeds
libspice-server.  It never runs a loop of its own on the host's thread: its
listening socket, the link stage and the main and inputs channels run from
watches and timers of the host's :class:`CoreInterface`.  Each QXL device
added gets a red worker thread owning that device's display and cursor
channels.

Typical use::

    server = SpiceServer(core, SpiceOptions.from_qemu_string("port=5900,disable-ticketing=on"))
    worker = server.add_qxl(qxl_device)      # -> QXLWorker for the device
    server.add_kbd(i8042); server.add_mouse(i8042)
    server.start()
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

import numpy as np

from spice.agent import AgentDevice
from spice.channel import ChannelStats
from spice.inputs_channel import InputsState
from spice.interfaces import (
    CharDeviceHandle,
    CharDeviceInterface,
    CoreInterface,
    KbdInterface,
    MouseInterface,
    QXLInterface,
    QXLWorker,
    TabletInterface,
    WatchEvent,
)
from spice.link import LinkHandshake, RsaKeyPool
from spice.main_channel import MainChannelClient, mm_time
from spice.options import SpiceOptions
from spice.protocol import (
    MAX_PASSWORD_LENGTH,
    ChannelType,
    MouseMode,
)
from spice.qxl import ClientMonitorsConfig
from spice.screendump import CursorState
from spice.session import ClientSession, SessionsMixin
from spice.worker import RedQXL, RedWorker

__all__ = ["SpiceServer", "SpiceOptions"]

log = logging.getLogger(__name__)

class _QXLState:
    """What the core thread knows about one device's primary surface."""

    def __init__(self) -> None:
        self.primary_active = False
        self.use_hardware_cursor = False
        self.x_res = 0
        self.y_res = 0


class SpiceServer(SessionsMixin):
    """A SPICE server bound to one host core."""

    def __init__(self, core: CoreInterface, options: SpiceOptions | None = None) -> None:
        self.core = core
        self.options = options or SpiceOptions()
        self.options.validate()
        self.port = self.options.port
        self.workers: list[RedWorker] = []
        self._qxl_states: list[_QXLState] = []
        self.kbd: KbdInterface | None = None
        self.mouse: MouseInterface | None = None
        self.tablet: TabletInterface | None = None
        self.agent: AgentDevice | None = None
        self.channel_stats = ChannelStats()
        self.inputs_state = InputsState(self)
        self.mouse_mode = MouseMode.SERVER
        self.client_mouse_allowed = False
        self.session: ClientSession | None = None
        self._links: list[LinkHandshake] = []
        self._keys = RsaKeyPool()
        self._listener: socket.socket | None = None
        self._listen_watch = None
        self._ticket_expires: float | None = None
        if self.options.ticket_expiry is not None:
            self._ticket_expires = time.monotonic() + self.options.ticket_expiry
        self.counters = {"connections": 0, "links_dropped": 0, "sessions": 0}
        self._closed = False

    # -- host API -----------------------------------------------------------------------

    def start(self, vm_running: bool = True) -> None:
        """Listen on addr:port through the core's watches, and (unless
        ``vm_running`` is False) let the QXL workers pull commands, as
        ``vm_start`` does."""
        if vm_running:
            self.vm_start()
        if self._listener is not None:
            return
        family = socket.AF_INET6 if ":" in self.options.addr else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.options.addr, self.options.port))
        sock.listen(64)
        sock.setblocking(False)
        self._listener = sock
        self.port = sock.getsockname()[1]
        self._listen_watch = self.core.watch_add(sock.fileno(), WatchEvent.READ, self._on_accept)
        if not self.options.disable_ticketing and not self.options.password:
            log.warning("ticketing is on but no password is set: every client will be refused")
        self._keys.refill()
        log.info("SPICE server listening on %s", self.uri())

    def add_qxl(self, qxl_if: QXLInterface) -> QXLWorker:
        """Add a QXL device; returns the QXLWorker it calls (also handed to it
        through ``attach_worker``).  The device's worker thread starts now and
        pulls commands once the device calls ``start()``."""
        worker = RedWorker(self, qxl_if, len(self.workers))
        self.workers.append(worker)
        state = _QXLState()
        self._qxl_states.append(state)
        handle = RedQXL(worker)
        worker.start_thread()
        qxl_if.attach_worker(handle)
        worker.dispatcher.post(worker.h_set_compression_level, self.compression_level())
        self._on_core(lambda: self._announce_channels(worker.index))
        return handle

    def _announce_channels(self, index: int) -> None:
        """A device added while a client is connected: tell it (spice-server's
        registered_new_channel, sent only after the client's first list)."""
        s = self.session
        if s is not None and s.main is not None:
            s.main.push_registered(ChannelType.CURSOR, index)
            s.main.push_registered(ChannelType.DISPLAY, index)

    def vm_start(self) -> None:
        """The guest runs: workers pull commands (spice_server_vm_start)."""
        for w in self.workers:
            w.dispatcher.post(w.h_start)

    def vm_stop(self) -> None:
        """The guest is paused: workers render what is pending and stop
        pulling (spice_server_vm_stop).  Returns when they have."""
        for w in self.workers:
            w.dispatcher.call(w.h_stop)

    def add_kbd(self, kbd: KbdInterface) -> None:
        self.kbd = kbd

    def add_mouse(self, mouse: MouseInterface) -> None:
        self.mouse = mouse

    def add_tablet(self, tablet: TabletInterface) -> None:
        self.tablet = tablet
        self._on_core(self.update_mouse_mode)

    def add_char_device(self, dev: CharDeviceInterface) -> CharDeviceHandle:
        if getattr(dev, "subtype", None) != "vdagent":
            raise ValueError(f"unsupported char device subtype {getattr(dev, 'subtype', None)!r}")
        if self.agent is not None:
            raise ValueError("an agent char device is already attached")
        self.agent = AgentDevice(self, dev)
        dev.attach(self.agent)
        dev.state(True)
        return self.agent

    def kbd_leds(self, leds: int) -> None:
        """The guest changed its lock LEDs (spice_server_kbd_leds).  Any thread."""
        def _apply() -> None:
            self.inputs_state.modifiers = leds
            self.push_keyboard_modifiers(leds)
        self._on_core(_apply)

    def set_ticket(self, password: str | None, lifetime_s: float | None = None) -> None:
        """Set the password (and its lifetime) and turn ticketing on, as
        spice_server_set_ticket does: a client that connected while
        ticketing was off is disconnected; None refuses everyone.  A
        password longer than the protocol's 60 bytes raises ValueError and
        changes nothing.  Never logged."""
        if password is not None and len(password.encode("utf-8")) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"the password must be at most {MAX_PASSWORD_LENGTH} bytes long.")
        was_open = self.options.disable_ticketing
        self.options.password = password
        self.options.disable_ticketing = False
        self._ticket_expires = None if lifetime_s is None else time.monotonic() + lifetime_s
        session = self.session
        if was_open and session is not None:
            self._on_core(lambda: self._end_session(session))

    def set_mouse_mode(self, mode: MouseMode) -> None:
        """Switch mouse mode if allowed (as a client MOUSE_MODE_REQUEST does)."""
        self._on_core(lambda: self.request_mouse_mode(mode))

    def uri(self) -> str:
        host = self.options.addr
        if ":" in host:
            host = f"[{host}]"
        return f"spice://{host}:{self.port}"

    def write_vv_file(self, path: str | os.PathLike) -> str:
        """Write a remote-viewer connection file (mode 0600) and return its path.
        It holds the password; the password itself is never logged."""
        lines = ["[virt-viewer]", "type=spice", f"host={self.options.addr}", f"port={self.port}"]
        if not self.options.disable_ticketing and self.options.password:
            lines.append(f"password={self.options.password}")
        if self.options.name:
            lines.append(f"title={self.options.name}")
        lines.append("delete-this-file=0")
        data = ("\n".join(lines) + "\n").encode("utf-8")
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
        finally:
            os.close(fd)
        return os.fspath(path)

    def stats(self) -> dict[str, int]:
        s = self.channel_stats
        out = dict(self.counters)
        out.update(clients=1 if self.session is not None else 0,
                   pending_links=len(self._links), messages_in=s.messages_in,
                   messages_out=s.messages_out, bytes_in=s.bytes_in, bytes_out=s.bytes_out)
        for w in self.workers:
            try:
                ws = w.dispatcher.call(w.h_stats)
            except (TimeoutError, RuntimeError):
                continue
            for k, v in ws.items():
                out[f"display{w.index}_{k}"] = v
        return out

    # -- the host's local display (see spice.screendump) ---------------------------------

    def _worker(self, qxl_index: int) -> RedWorker:
        if not 0 <= qxl_index < len(self.workers):
            raise ValueError(f"there is no QXL device {qxl_index} (the server has "
                             f"{len(self.workers)})")
        return self.workers[qxl_index]

    def screendump(self, qxl_index: int = 0) -> np.ndarray | None:
        """The primary surface of device ``qxl_index`` as (height, width)
        uint32 0x00RRGGBB, top row first, after rendering every drawable the
        worker holds for it; None without a primary.  Blocks until the
        worker answers; not for the core thread's hot path (see
        :meth:`request_frame`)."""
        w = self._worker(qxl_index)
        return w.dispatcher.call(w.h_screendump)

    def cursor_state(self, qxl_index: int = 0) -> CursorState:
        """The guest cursor of device ``qxl_index`` (shape as ARGB, hot spot,
        position, visibility).  Blocks until the worker answers."""
        w = self._worker(qxl_index)
        return w.dispatcher.call(w.h_cursor_state)

    def request_frame(self, callback: Callable[[np.ndarray | None, CursorState], None],
                      qxl_index: int = 0) -> None:
        """Ask for :meth:`screendump` and :meth:`cursor_state` together
        without waiting: ``callback(pixels, cursor)`` runs later on the core
        thread.  A closed server never calls back."""
        w = self._worker(qxl_index)
        w.dispatcher.post(w.h_frame, callback)

    def close(self) -> None:
        """Stop listening, drop every client and stop the worker threads."""
        if self._closed:
            return
        self._closed = True
        for link in list(self._links):
            link.close()
        if self.session is not None:
            self._end_session(self.session)
        if self._listen_watch is not None:
            self.core.watch_remove(self._listen_watch)
            self._listen_watch = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for w in self.workers:
            w.stop_thread()
        if self.agent is not None:
            self.agent.close()
            try:
                self.agent.dev.state(False)
            except Exception:
                log.exception("agent device state(False) failed")
        self.inputs_state.close()

    # -- threads ---------------------------------------------------------------------------

    def _on_core(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the core thread; an exception is logged, never raised
        into the host's loop."""
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("SPICE server: %s failed", getattr(fn, "__qualname__", fn))
        self.core.call_soon(run)

    # -- mouse mode --------------------------------------------------------------------

    def agent_attached(self) -> bool:
        return self.agent is not None and self.agent.attached

    def agent_mouse_active(self) -> bool:
        return self.options.agent_mouse and self.agent_attached()

    def primary_changed(self, index: int, active: bool, width: int, height: int,
                        hw_cursor: bool) -> None:
        """A worker created or destroyed its primary surface.  Any thread."""
        def _apply() -> None:
            st = self._qxl_states[index]
            st.primary_active = active
            st.use_hardware_cursor = hw_cursor if active else False
            st.x_res, st.y_res = (width, height) if active else (0, 0)
            self.update_mouse_mode()
        self._on_core(_apply)

    def qxl_takes_monitors_config(self) -> bool:
        """Whether every display device takes client monitor layouts
        (spice-server's reds_use_client_monitors_config).  Asked on the core
        thread when a client starts the agent, as spice-server configures its
        write filter then; each worker asks its device, and the core waits
        for the answers because the guest can change its interrupt mask at
        any time, so an answer cached earlier may be stale."""
        if not self.workers:
            return False
        for w in self.workers:
            try:
                if not w.dispatcher.call(w.h_client_monitors_config, None):
                    return False
            except (TimeoutError, RuntimeError):
                return False
        return True

    def client_monitors_config(self, config: ClientMonitorsConfig) -> None:
        for w in self.workers:
            w.dispatcher.post(w.h_client_monitors_config, config)

    def update_mouse_mode(self) -> None:
        """spice-server's reds_update_mouse_mode (core thread)."""
        dispatcher_allows = bool(self._qxl_states) and all(
            st.use_hardware_cursor for st in self._qxl_states if st.primary_active) and any(
            st.primary_active for st in self._qxl_states)
        allowed = False
        if self.agent_mouse_active() or (self.tablet is not None and len(self.workers) == 1):
            allowed = dispatcher_allows
        if allowed and self.tablet is not None and self._qxl_states:
            st = self._qxl_states[0]
            if st.primary_active:
                self.tablet.set_logical_size(st.x_res, st.y_res)
        if allowed == self.client_mouse_allowed:
            return
        self.client_mouse_allowed = allowed
        if self.mouse_mode == MouseMode.CLIENT and not allowed:
            self._set_mouse_mode(MouseMode.SERVER)
            return
        if self.session is not None and self.session.main is not None:
            self.session.main.push_mouse_mode()
            self.session.main.push()

    def request_mouse_mode(self, mode: int) -> None:
        if mode == MouseMode.CLIENT:
            if self.client_mouse_allowed:
                self._set_mouse_mode(MouseMode.CLIENT)
            else:
                log.info("client mouse mode requested but not available")
        elif mode == MouseMode.SERVER:
            self._set_mouse_mode(MouseMode.SERVER)
        else:
            log.info("unsupported mouse mode %d requested", mode)

    def _set_mouse_mode(self, mode: MouseMode) -> None:
        if self.mouse_mode == mode:
            return
        self.mouse_mode = mode
        for w in self.workers:
            w.dispatcher.post(w.h_set_mouse_mode, int(mode))
        if self.session is not None and self.session.main is not None:
            self.session.main.push_mouse_mode()
            self.session.main.push()

    # -- inputs and agent glue --------------------------------------------------------------

    def push_keyboard_modifiers(self, modifiers: int) -> None:
        if self.session is None:
            return
        for cc in self.session.inputs:
            cc.push_modifiers(modifiers)

    def agent_mouse_state(self, x: int, y: int, buttons: int, display_id: int) -> None:
        if self.agent is not None:
            self.agent.send_mouse_state(x, y, buttons, display_id)

    def agent_start(self, mcc: MainChannelClient, tokens: int) -> None:
        if self.agent is not None:
            self.agent.client_start(mcc, tokens)

    def agent_tokens(self, mcc: MainChannelClient, tokens: int) -> None:
        if self.agent is not None:
            self.agent.client_tokens(mcc, tokens)

    def agent_data(self, mcc: MainChannelClient, data: bytes) -> bool:
        if self.agent is None:
            return True
        return self.agent.client_data(mcc, data)

    def compression_level(self) -> int:
        """What the device shows the guest in its ROM (spice-server's
        calc_compression_level): 1 only for QUIC images without streaming."""
        opts = self.options
        if opts.streaming_video != "off" or opts.image_compression != "quic":
            return 0
        return 1

    def qxl_ram_hint(self) -> int:
        return self.workers[0].init_info.ram_size if self.workers else 0

    def push_multi_media_time(self) -> None:
        """Resynchronise the client's multimedia clock (MULTI_MEDIA_TIME), as
        spice-server does when streams or audio start."""
        s = self.session
        if s is not None and s.main is not None:
            s.main.push_multi_media_time(mm_time())
            s.main.push()

"""Who is connected: accepting connections, the rules that admit a linked
channel (ticket, connection id, one link per channel), and the client
session -- spice-server's RedClient -- that groups a client's channels.

:class:`SessionsMixin` is part of :class:`spice.server.SpiceServer`; it runs
on the host's core thread, except :meth:`SessionsMixin._attach_on_worker`,
which runs on a QXL device's worker thread.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from spice.channel import ChannelClient
from spice.image_cache import PixmapCaches
from spice.inputs_channel import InputsChannelClient
from spice.interfaces import ChannelEvent, ChannelEventInfo, WatchEvent
from spice.link import LinkedStream, LinkHandshake, LinkMess, ticket_matches
from spice.main_channel import MainChannelClient
from spice.protocol import (
    ChannelType,
    CommonCap,
    DisplayCap,
    InputsCap,
    LinkErr,
    MainCap,
    caps_to_words,
)

if TYPE_CHECKING:
    from spice.server import SpiceServer
    from spice.worker import RedWorker

log = logging.getLogger(__name__)

MAX_PENDING_LINKS = 64  # connections in the link stage at once; the oldest goes first
ACCEPTS_PER_EVENT = 16

_COMMON_CAPS = caps_to_words([CommonCap.PROTOCOL_AUTH_SELECTION, CommonCap.AUTH_SPICE,
                              CommonCap.MINI_HEADER])
_CHANNEL_CAPS = {
    ChannelType.MAIN: caps_to_words([MainCap.SEMI_SEAMLESS_MIGRATE, MainCap.NAME_AND_UUID,
                                     MainCap.AGENT_CONNECTED_TOKENS, MainCap.SEAMLESS_MIGRATE]),
    ChannelType.DISPLAY: caps_to_words([DisplayCap.MONITORS_CONFIG, DisplayCap.PREF_COMPRESSION,
                                        DisplayCap.PREF_VIDEO_CODEC_TYPE,
                                        DisplayCap.STREAM_REPORT]),
    ChannelType.INPUTS: caps_to_words([InputsCap.KEY_SCANCODE]),
    ChannelType.CURSOR: [],
}


class ClientSession:
    """One connected client (spice-server's RedClient): its main channel and
    everything linked with its connection id."""

    def __init__(self, server: SpiceServer, connection_id: int) -> None:
        self.server = server
        self.connection_id = connection_id
        self.main: MainChannelClient | None = None
        self.inputs: list[InputsChannelClient] = []
        self.pixmap_caches = PixmapCaches()
        self.closed = False

    def main_disconnected(self, mcc: MainChannelClient) -> None:
        self.server._end_session(self)

    def channel_disconnected(self, cc: InputsChannelClient) -> None:
        if cc in self.inputs:
            self.inputs.remove(cc)
        self.server._emit(ChannelEvent.DISCONNECTED, cc)


class SessionsMixin:
    """Accepting, linking and session bookkeeping of :class:`SpiceServer`."""

    def _on_accept(self: SpiceServer, fd: int, events: WatchEvent) -> None:
        for _ in range(ACCEPTS_PER_EVENT):
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            self.counters["connections"] += 1
            if len(self._links) >= MAX_PENDING_LINKS:
                # A flood of half-open links: drop the oldest.  A real client
                # finishes its link in milliseconds, an idle one does not.
                self.counters["links_dropped"] += 1
                self._links[0].close()
            try:
                link = LinkHandshake(self.core, sock, peer[:2], self._keys, self._channel_caps,
                                     self._check_ticket, self._admit, self._attach,
                                     self._link_closed)
            except Exception:
                log.exception("could not start a link")
                sock.close()
                continue
            self._links.append(link)

    def _link_closed(self: SpiceServer, link: LinkHandshake) -> None:
        if link in self._links:
            self._links.remove(link)

    def _channel_caps(self: SpiceServer, ctype: int,
                      cid: int) -> tuple[list[int], list[int]] | None:
        if not self._has_channel(ctype, cid):
            return None
        return _COMMON_CAPS, _CHANNEL_CAPS[ctype]

    def _has_channel(self: SpiceServer, ctype: int, cid: int) -> bool:
        if ctype in (ChannelType.MAIN, ChannelType.INPUTS):
            return cid == 0
        if ctype in (ChannelType.DISPLAY, ChannelType.CURSOR):
            return 0 <= cid < len(self.workers)
        return False

    def channel_list(self: SpiceServer) -> list[tuple[int, int]]:
        """CHANNELS_LIST in spice-server's order: channels are registered
        inputs first, then cursor and display per device, and listed newest
        first.  The main channel is not listed."""
        registered = [(ChannelType.INPUTS, 0)]
        for w in self.workers:
            registered += [(ChannelType.CURSOR, w.index), (ChannelType.DISPLAY, w.index)]
        return registered[::-1]

    def _check_ticket(self: SpiceServer, password: bytes) -> bool:
        if self.options.disable_ticketing:
            return True
        if self._ticket_expires is not None and time.monotonic() > self._ticket_expires:
            log.info("link refused: the ticket has expired")
            return False
        return ticket_matches(self.options.password, password)

    def _admit(self: SpiceServer, mess: LinkMess) -> LinkErr:
        if mess.channel_type == ChannelType.MAIN:
            return LinkErr.OK
        s = self.session
        if s is None or s.closed or s.connection_id != mess.connection_id or s.main is None:
            return LinkErr.BAD_CONNECTION_ID
        if not self._has_channel(mess.channel_type, mess.channel_id):
            return LinkErr.CHANNEL_NOT_AVAILABLE
        return LinkErr.OK

    def _attach(self: SpiceServer, linked: LinkedStream) -> None:
        ctype = linked.channel_type
        if ctype == ChannelType.MAIN:
            self._new_session(linked)
            return
        s = self.session
        if s is None:
            linked.sock.close()
            return
        if ctype == ChannelType.INPUTS:
            if s.inputs:
                self._refuse_duplicate(linked)
                return
            cc = InputsChannelClient(s, linked, self.channel_stats)
            s.inputs.append(cc)
            if s.main is not None:
                # as spice-server tells every client without TLS
                s.main.push_notify("keyboard channel is insecure")
                s.main.push()
            self._emit(ChannelEvent.INITIALIZED, cc)
        else:
            # display/cursor sockets belong to the device's worker thread from here
            worker = self.workers[linked.channel_id]
            low_bw = s.main is not None and s.main.is_low_bandwidth()
            worker.dispatcher.post(self._attach_on_worker, worker, linked, s, low_bw)

    def _attach_on_worker(self: SpiceServer, worker: RedWorker, linked: LinkedStream,
                          s: ClientSession, low_bw: bool) -> None:
        """Runs on the device's worker thread, which owns its channel clients
        (so a client leaving and one arriving are seen in order)."""
        ctype = linked.channel_type
        if any(cc.channel_type == ctype and cc.connected
               for cc in worker.sessions.get(s.connection_id, ())):
            self._refuse_duplicate(linked)
            return
        worker.h_attach(linked, s, low_bw)
        info = ChannelEventInfo(s.connection_id, ctype, linked.channel_id, linked.peer)
        self._on_core(lambda: self.core.channel_event(ChannelEvent.INITIALIZED, info))

    @staticmethod
    def _refuse_duplicate(linked: LinkedStream) -> None:
        """A client may link each channel once (spice-server's
        RedClient::add_channel): the link succeeded, the extra connection is
        closed."""
        log.warning("client %#x linked channel %d:%d twice; closing the second connection",
                    linked.connection_id, linked.channel_type, linked.channel_id)
        linked.sock.close()

    def _new_session(self: SpiceServer, linked: LinkedStream) -> None:
        if self.session is not None:
            # one client at a time, as spice-server without multi-client support
            log.info("a new client replaces the connected one")
            self._end_session(self.session)
        conn_id = linked.connection_id
        if conn_id == 0:
            conn_id = int.from_bytes(os.urandom(4), "little") or 1
            linked.mess.connection_id = conn_id
        s = ClientSession(self, conn_id)
        self.session = s
        self.counters["sessions"] += 1
        mcc = MainChannelClient(s, linked, self.channel_stats)
        s.main = mcc
        if self.agent is not None:
            self.agent.client_connected(mcc)
        mcc.push_init()
        if linked.peer is not None:
            mcc.start_net_test()
        mcc.push()
        self._emit(ChannelEvent.INITIALIZED, mcc)

    def _end_session(self: SpiceServer, s: ClientSession) -> None:
        if s.closed:
            return
        s.closed = True
        if self.session is s:
            self.session = None
        if s.main is not None:
            if self.agent is not None:
                self.agent.client_disconnected(s.main)
            s.main.say_goodbye()
            self._emit(ChannelEvent.DISCONNECTED, s.main)
        for cc in list(s.inputs):
            cc.say_goodbye()
        for w in self.workers:
            w.dispatcher.post(w.h_detach_session, s.connection_id)

    def worker_client_gone(self: SpiceServer, index: int, ctype: int, connection_id: int) -> None:
        """Called on a worker thread when one of its channel clients left."""
        info = ChannelEventInfo(connection_id, ctype, index, None)
        self._on_core(lambda: self.core.channel_event(ChannelEvent.DISCONNECTED, info))

    def _emit(self: SpiceServer, event: ChannelEvent, cc: ChannelClient) -> None:
        try:
            self.core.channel_event(event, ChannelEventInfo(cc.connection_id, cc.channel_type,
                                                            cc.channel_id, cc.peer))
        except Exception:
            log.exception("channel_event failed")

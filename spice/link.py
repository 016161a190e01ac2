"""The SPICE link stage: from an accepted TCP connection to a linked channel.

Sequence (spice-server's reds.cpp, protocol 2.2):

1. client -> SpiceLinkHeader ("REDQ", major 2, minor 2, size) and
   SpiceLinkMess (connection id, channel type/id, capability words);
2. server -> SpiceLinkHeader + SpiceLinkReply carrying a freshly generated
   RSA-1024 public key (DER SubjectPublicKeyInfo) and the server's caps;
3. client -> auth mechanism (u32, only when both sides have
   PROTOCOL_AUTH_SELECTION): 1 = SPICE ticket; SASL is not offered;
4. client -> 128-byte ticket, RSA-OAEP(SHA-1) encrypted;
5. server -> link result (u32 SpiceLinkErr).

:class:`LinkHandshake` runs these steps on the core thread from the
socket's watch callback, never blocking.  Anything malformed gets the
matching link error and the connection is closed; nothing else is touched.
"""

from __future__ import annotations

import hmac
import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from spice.interfaces import CoreInterface, WatchEvent
from spice.protocol import (
    ENCRYPTED_TICKET_SIZE,
    LINK_HEADER_SIZE,
    LINK_MAX_CAPS,
    LINK_MAX_SIZE,
    LINK_MESS_SIZE,
    LINK_REPLY_SIZE,
    SPICE_MAGIC,
    SPICE_VERSION_MAJOR,
    SPICE_VERSION_MINOR,
    TICKET_KEY_BITS,
    TICKET_PUBKEY_BYTES,
    CommonCap,
    LinkErr,
    has_cap,
)

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sIII")
_MESS = struct.Struct("<IBBIII")
_REPLY_TAIL = struct.Struct("<III")
_U32 = struct.Struct("<I")

AUTH_MECHANISM_SPICE = CommonCap.AUTH_SPICE
AUTH_MECHANISM_SASL = CommonCap.AUTH_SASL
LINK_TIMEOUT_MS = 10_000  # a half-finished link is dropped after this


class RsaKeyPool:
    """Fresh RSA-1024 key pairs, one per link as spice-server does.

    Generating a key costs a few to tens of milliseconds, so a background
    thread keeps ``spare`` keys ready and the link stage only pops one.
    """

    def __init__(self, spare: int = 2) -> None:
        self._spare = spare
        self._ready: deque[rsa.RSAPrivateKey] = deque()
        self._lock = threading.Lock()
        self._filling = False

    @staticmethod
    def generate() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=TICKET_KEY_BITS)

    def take(self) -> rsa.RSAPrivateKey:
        with self._lock:
            key = self._ready.popleft() if self._ready else None
        self.refill()
        return key if key is not None else self.generate()

    def refill(self) -> None:
        with self._lock:
            if self._filling or len(self._ready) >= self._spare:
                return
            self._filling = True
        threading.Thread(target=self._fill, name="spice-rsa", daemon=True).start()

    def _fill(self) -> None:
        try:
            while True:
                with self._lock:
                    if len(self._ready) >= self._spare:
                        return
                key = self.generate()
                with self._lock:
                    self._ready.append(key)
        finally:
            with self._lock:
                self._filling = False


_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()),
                     algorithm=hashes.SHA1(), label=None)


@dataclass
class LinkMess:
    connection_id: int
    channel_type: int
    channel_id: int
    common_caps: tuple[int, ...]
    channel_caps: tuple[int, ...]


@dataclass
class LinkedStream:
    """A connection that passed the link stage."""

    sock: socket.socket
    peer: tuple[str, int] | None
    mess: LinkMess
    mini_header: bool
    pending: bytes  # bytes the client sent after the ticket
    unsent: bytes = b""  # link-stage bytes the socket has not taken yet

    @property
    def connection_id(self) -> int:
        return self.mess.connection_id

    @property
    def channel_type(self) -> int:
        return self.mess.channel_type

    @property
    def channel_id(self) -> int:
        return self.mess.channel_id


class LinkRefused(Exception):
    def __init__(self, err: LinkErr, reason: str, *, reply: bool = True,
                 full_reply: bool = True) -> None:
        super().__init__(reason)
        self.err = err
        self.reply = reply
        self.full_reply = full_reply


def parse_link_header(data: bytes) -> int:
    """Returns the size of the SpiceLinkMess that follows, or raises."""
    magic, major, _minor, size = _HEADER.unpack_from(data, 0)
    if magic != SPICE_MAGIC:
        raise LinkRefused(LinkErr.INVALID_MAGIC, "bad magic")
    if major != SPICE_VERSION_MAJOR:
        # spice-server stays silent to a major version of 0
        raise LinkRefused(LinkErr.VERSION_MISMATCH, f"protocol major {major}",
                          reply=major > 0)
    if size < LINK_MESS_SIZE or size > LINK_MAX_SIZE:
        raise LinkRefused(LinkErr.INVALID_DATA, f"link message size {size}")
    return size


def parse_link_mess(data: bytes) -> LinkMess:
    conn_id, ctype, cid, n_common, n_chan, caps_offset = _MESS.unpack_from(data, 0)
    if n_common > LINK_MAX_CAPS or n_chan > LINK_MAX_CAPS:
        raise LinkRefused(LinkErr.INVALID_DATA, "too many capabilities")
    n = n_common + n_chan
    if n and (caps_offset < LINK_MESS_SIZE or caps_offset + 4 * n > len(data)):
        raise LinkRefused(LinkErr.INVALID_DATA, "capabilities out of range")
    words = struct.unpack_from(f"<{n}I", data, caps_offset) if n else ()
    return LinkMess(conn_id, ctype, cid, tuple(words[:n_common]), tuple(words[n_common:]))


def link_reply(err: LinkErr, pub_key: bytes = b"", common_caps: list[int] | tuple = (),
               channel_caps: list[int] | tuple = ()) -> bytes:
    """SpiceLinkHeader + SpiceLinkReply (+ capability words)."""
    caps = list(common_caps) + list(channel_caps)
    size = LINK_REPLY_SIZE + 4 * len(caps)
    key = pub_key.ljust(TICKET_PUBKEY_BYTES, b"\0")[:TICKET_PUBKEY_BYTES]
    out = bytearray(_HEADER.pack(SPICE_MAGIC, SPICE_VERSION_MAJOR, SPICE_VERSION_MINOR, size))
    out += _U32.pack(err) + key
    out += _REPLY_TAIL.pack(len(common_caps), len(channel_caps), LINK_REPLY_SIZE)
    for w in caps:
        out += _U32.pack(w)
    return bytes(out)


class LinkHandshake:
    """Drives one connection through the link stage.

    ``channel_caps(type, id)`` returns the server's (common, channel)
    capability words for an existing channel, or None.  ``check_ticket``
    gets the decrypted password.  Once the ticket is accepted ``admit``
    decides the link result (OK, BAD_CONNECTION_ID, CHANNEL_NOT_AVAILABLE);
    after OK is queued, ``attach`` receives the :class:`LinkedStream` and
    the socket belongs to it from then on.
    """

    def __init__(self, core: CoreInterface, sock: socket.socket,
                 peer: tuple[str, int] | None, keys: RsaKeyPool,
                 channel_caps: Callable[[int, int], tuple[list[int], list[int]] | None],
                 check_ticket: Callable[[bytes], bool],
                 admit: Callable[[LinkMess], LinkErr],
                 attach: Callable[[LinkedStream], None],
                 on_closed: Callable[[LinkHandshake], None]) -> None:
        self.core = core
        self.sock = sock
        self.peer = peer
        self._keys = keys
        self._channel_caps = channel_caps
        self._check_ticket = check_ticket
        self._admit = admit
        self._attach = attach
        self._on_closed = on_closed
        self._buf = bytearray()
        self._out = bytearray()
        self._want = 4
        self._step = self._got_magic
        self._mess: LinkMess | None = None
        self._magic = b""
        self._key: rsa.RSAPrivateKey | None = None
        self._closed = False
        self.started = time.monotonic()
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._watch = core.watch_add(sock.fileno(), WatchEvent.READ, self._on_event)
        self._timer = core.timer_add(self._on_timeout)
        core.timer_start(self._timer, LINK_TIMEOUT_MS)

    # -- plumbing -------------------------------------------------------------------

    def _on_event(self, fd: int, events: WatchEvent) -> None:
        try:
            if events & WatchEvent.WRITE:
                self._flush()
            if events & WatchEvent.READ and not self._closed:
                self._read()
        except LinkRefused as exc:
            self._refuse(exc)
        except OSError as exc:
            log.debug("link from %s: %s", self.peer, exc)
            self.close()
        except Exception:
            log.exception("link from %s: unexpected error", self.peer)
            self.close()

    def _on_timeout(self) -> None:
        if not self._closed:
            log.info("link from %s timed out", self.peer)
            self.close()

    def _read(self) -> None:
        while not self._closed and self._step is not None:
            need = self._want - len(self._buf)
            if need > 0:
                try:
                    chunk = self.sock.recv(need)
                except (BlockingIOError, InterruptedError):
                    return
                if not chunk:
                    self.close()
                    return
                self._buf += chunk
                if len(self._buf) < self._want:
                    continue
            data = bytes(self._buf[:self._want])
            del self._buf[:self._want]
            step = self._step
            self._step = None
            step(data)

    def _send(self, data: bytes) -> None:
        self._out += data
        self._flush()

    def _flush(self) -> None:
        while self._out:
            try:
                n = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                break
            del self._out[:n]
        if not self._closed:
            mask = WatchEvent.READ | (WatchEvent.WRITE if self._out else 0)
            self.core.watch_update_mask(self._watch, mask)

    def _refuse(self, exc: LinkRefused) -> None:
        log.info("link from %s refused: %s (%s)", self.peer, exc.err.name, exc)
        if exc.reply:
            try:
                if exc.full_reply:
                    self.sock.send(link_reply(exc.err))
                else:
                    self.sock.send(_U32.pack(exc.err))
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.core.timer_cancel(self._timer)
        self.core.timer_remove(self._timer)
        self.core.watch_remove(self._watch)
        try:
            self.sock.close()
        except OSError:
            pass
        self._on_closed(self)

    def _detach(self) -> None:
        """The socket now belongs to a channel: stop watching, keep it open."""
        self._closed = True
        self.core.timer_cancel(self._timer)
        self.core.timer_remove(self._timer)
        self.core.watch_remove(self._watch)
        self._on_closed(self)

    # -- steps ------------------------------------------------------------------------

    def _got_magic(self, data: bytes) -> None:
        # Checked on its own, as spice-server does, so a non-SPICE peer gets
        # INVALID_MAGIC without having to send a whole header first.
        if data != SPICE_MAGIC:
            raise LinkRefused(LinkErr.INVALID_MAGIC, "bad magic")
        self._magic = data
        self._want = LINK_HEADER_SIZE - 4
        self._step = self._got_header

    def _got_header(self, data: bytes) -> None:
        self._want = parse_link_header(self._magic + data)
        self._step = self._got_mess

    def _got_mess(self, data: bytes) -> None:
        mess = parse_link_mess(data)
        self._mess = mess
        caps = self._channel_caps(mess.channel_type, mess.channel_id)
        if caps is None:
            raise LinkRefused(LinkErr.CHANNEL_NOT_AVAILABLE,
                              f"no channel {mess.channel_type}:{mess.channel_id}")
        common, chan = caps
        self._key = self._keys.take()
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._send(link_reply(LinkErr.OK, der, common, chan))
        if has_cap(mess.common_caps, CommonCap.PROTOCOL_AUTH_SELECTION):
            self._want = 4
            self._step = self._got_auth_mechanism
        else:
            self._want = ENCRYPTED_TICKET_SIZE
            self._step = self._got_ticket

    def _got_auth_mechanism(self, data: bytes) -> None:
        (mechanism,) = _U32.unpack(data)
        if mechanism != AUTH_MECHANISM_SPICE:
            # SASL is not offered in our caps; a client asking for it anyway
            # gets the same answer spice-server gives without SASL support.
            raise LinkRefused(LinkErr.INVALID_DATA, f"auth mechanism {mechanism} not supported")
        self._want = ENCRYPTED_TICKET_SIZE
        self._step = self._got_ticket

    def _got_ticket(self, data: bytes) -> None:
        assert self._key is not None and self._mess is not None
        try:
            password = self._key.decrypt(data, _OAEP)
        except ValueError:
            raise LinkRefused(LinkErr.PERMISSION_DENIED, "ticket does not decrypt",
                              full_reply=False) from None
        self._key = None
        # spice-html5 appends a NUL; the C server compares up to the first one
        password = password.split(b"\0", 1)[0]
        if not self._check_ticket(password):
            raise LinkRefused(LinkErr.PERMISSION_DENIED, "wrong or expired ticket",
                              full_reply=False)
        mess = self._mess
        result = self._admit(mess)
        if result != LinkErr.OK:
            raise LinkRefused(result, "refused by the server", full_reply=False)
        self._send(_U32.pack(LinkErr.OK))
        mini = has_cap(mess.common_caps, CommonCap.MINI_HEADER)
        linked = LinkedStream(self.sock, self.peer, mess, mini, bytes(self._buf),
                              bytes(self._out))
        self._buf.clear()
        self._out.clear()
        self._detach()
        self._attach(linked)


def ticket_matches(expected: str | None, given: bytes) -> bool:
    """Constant-time comparison of a decrypted ticket with the password."""
    if not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given)

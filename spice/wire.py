"""Marshalling and demarshalling helpers for SPICE messages.

Every SPICE message body is little-endian and packed.  Pointers inside a
message (``Image *src_bitmap``, ``Palette *palette`` ...) are u32 offsets
from the start of the message body, 0 meaning NULL; the data they point to
is laid out after the fixed part, in the order the pointers were created
(spice-common's marshaller does the same).

:class:`Writer` builds one body as a list of buffers so large pixel data
(numpy views of guest memory) is sent without copying.  :class:`Reader`
reads a received body with a bounds check on every access: running past the
end raises :class:`ProtocolError`, which closes that connection.
"""

from __future__ import annotations

import struct

import numpy as np

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I16 = struct.Struct("<h")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_MINI_HEADER = struct.Struct("<HI")
_FULL_HEADER = struct.Struct("<QHII")

Buffer = bytes | bytearray | memoryview


class ProtocolError(Exception):
    """The peer sent something that does not follow the protocol."""


def as_buffer(data: Buffer | np.ndarray) -> memoryview:
    """A flat byte view of ``data`` (no copy for contiguous numpy arrays)."""
    if isinstance(data, np.ndarray):
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        return memoryview(data).cast("B")
    mv = memoryview(data)
    return mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")


class Reader:
    """Bounds-checked little-endian reads from one message body."""

    __slots__ = ("data", "pos")

    def __init__(self, data: Buffer, pos: int = 0) -> None:
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.pos = pos

    def _take(self, st: struct.Struct) -> int:
        pos = self.pos
        if pos < 0 or pos + st.size > len(self.data):
            raise ProtocolError("message truncated")
        self.pos = pos + st.size
        return st.unpack_from(self.data, pos)[0]

    def u8(self) -> int:
        return self._take(_U8)

    def u16(self) -> int:
        return self._take(_U16)

    def u32(self) -> int:
        return self._take(_U32)

    def u64(self) -> int:
        return self._take(_U64)

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError("message truncated")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = bytes(self.data[self.pos:])
        self.pos = len(self.data)
        return out

    def at(self, offset: int) -> Reader:
        """A reader positioned at a pointer ``offset`` in the same body."""
        if offset <= 0 or offset > len(self.data):
            raise ProtocolError("pointer out of range")
        return Reader(self.data, offset)


class Block:
    """One contiguous region of a message body: the fixed part, or the data
    behind one pointer."""

    __slots__ = ("writer", "parts", "cur", "size")

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.parts: list[Buffer] = []
        self.cur = bytearray()
        self.size = 0

    def _field(self, st: struct.Struct, value: int) -> Block:
        self.cur += st.pack(value)
        self.size += st.size
        return self

    def u8(self, v: int) -> Block:
        return self._field(_U8, v & 0xFF)

    def u16(self, v: int) -> Block:
        return self._field(_U16, v & 0xFFFF)

    def u32(self, v: int) -> Block:
        return self._field(_U32, v & 0xFFFFFFFF)

    def u64(self, v: int) -> Block:
        return self._field(_U64, v & 0xFFFFFFFFFFFFFFFF)

    def i16(self, v: int) -> Block:
        return self._field(_I16, v)

    def i32(self, v: int) -> Block:
        return self._field(_I32, v)

    def fmt(self, st: struct.Struct, *values: int) -> Block:
        self.cur += st.pack(*values)
        self.size += st.size
        return self

    def raw(self, data: Buffer | np.ndarray) -> Block:
        """Append bytes; large buffers are referenced, not copied."""
        mv = as_buffer(data)
        n = len(mv)
        if n == 0:
            return self
        if n <= 256:
            self.cur += mv
        else:
            if self.cur:
                self.parts.append(self.cur)
                self.cur = bytearray()
            self.parts.append(mv)
        self.size += n
        return self

    def ptr(self) -> Block:
        """Reserve a pointer field here; returns the block it points to.  A
        pointer whose block stays empty is sent as NULL."""
        # The field lives in the current bytearray; that object stays the
        # same when it is later moved into ``parts``, so it can be patched.
        holder = self.cur
        field_off = len(holder)
        holder += b"\0\0\0\0"
        self.size += 4
        target = Block(self.writer)
        self.writer._pointers.append((holder, field_off, target))
        self.writer._blocks.append(target)
        return target

    def _finish(self) -> list[Buffer]:
        if self.cur:
            self.parts.append(self.cur)
            self.cur = bytearray()
        return self.parts


class Writer:
    """Builds one message body.  ``root`` is the fixed part; ``ptr()`` on any
    block appends a new block after everything created so far."""

    def __init__(self) -> None:
        self._blocks: list[Block] = []
        self._pointers: list[tuple[bytearray, int, Block]] = []
        self.root = Block(self)
        self._blocks.append(self.root)

    def finish(self) -> tuple[list[Buffer], int]:
        """Resolve pointers; returns the body's buffers and total size."""
        offsets: dict[int, int] = {}
        total = 0
        out: list[Buffer] = []
        for block in self._blocks:
            offsets[id(block)] = total
            total += block.size
            out.extend(block._finish())
        for holder, off, target in self._pointers:
            if target.size:
                _U32.pack_into(holder, off, offsets[id(target)])
        return out, total


def mini_header(msg_type: int, size: int) -> bytes:
    return _MINI_HEADER.pack(msg_type, size)


def full_header(serial: int, msg_type: int, size: int, sub_list: int = 0) -> bytes:
    return _FULL_HEADER.pack(serial, msg_type, size, sub_list)


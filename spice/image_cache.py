"""Server-side mirrors of client caches.

The server decides what the client keeps: an image is sent with CACHE_ME
only after the server added it here, a later use of the same id is sent as
FROM_CACHE, and an id evicted here is sent to the client in INVAL_LIST (or
INVAL_PALETTE / CURSOR_INVAL_ONE) before the message that caused the
eviction.  Sizes follow spice-server: the pixmap cache counts pixels and its
size comes from the client's DISPLAY_INIT; the palette cache holds 128
palettes and the cursor cache 256 cursors.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_CACHE_CLIENTS = 4  # display channels that may share one pixmap cache
PALETTE_CACHE_SIZE = 128
CURSOR_CACHE_SIZE = 256


class LruCache:
    """Ids with a size, least recently used evicted first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.available = capacity
        self._items: OrderedDict[int, int] = OrderedDict()

    def __contains__(self, key: int) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def find(self, key: int) -> bool:
        if key in self._items:
            self._items.move_to_end(key)
            return True
        return False

    def add(self, key: int, size: int = 1) -> tuple[bool, list[int]]:
        """Insert ``key``; returns (added, evicted keys)."""
        evicted: list[int] = []
        if size > self.capacity:
            return False, evicted
        self.available -= size
        while self.available < 0:
            old, old_size = self._items.popitem(last=False)
            self.available += old_size
            evicted.append(old)
        self._items[key] = size
        return True, evicted

    def reset(self, capacity: int | None = None) -> None:
        if capacity is not None:
            self.capacity = capacity
        self._items.clear()
        self.available = self.capacity


@dataclass
class _Pixmap:
    size: int
    lossy: bool
    sync: list[int] = field(default_factory=lambda: [0] * MAX_CACHE_CLIENTS)


class PixmapCache:
    """The client's image cache, shared by every display channel of one client
    that announced the same cache id.  Display channels live on different
    worker threads, hence the lock.  ``sync`` remembers, per channel, the
    serial of the last message that used the cache, so an eviction by one
    channel can make the client wait for the others (WAIT_FOR_CHANNELS)."""

    def __init__(self, cache_id: int, size: int) -> None:
        self.cache_id = cache_id
        self.size = max(0, size)
        self.available = self.size
        self.lock = threading.Lock()
        self._items: OrderedDict[int, _Pixmap] = OrderedDict()
        self.sync = [0] * MAX_CACHE_CLIENTS

    def hit(self, client: int, image_id: int, serial: int) -> tuple[bool, bool]:
        """(hit, lossy).  Call with the lock held."""
        item = self._items.get(image_id)
        if item is None:
            return False, False
        self._items.move_to_end(image_id)
        item.sync[client] = serial
        self.sync[client] = serial
        return True, item.lossy

    def set_lossy(self, image_id: int, lossy: bool) -> None:
        item = self._items.get(image_id)
        if item is not None:
            item.lossy = lossy

    def add(self, client: int, image_id: int, size: int, lossy: bool,
            serial: int) -> tuple[bool, list[tuple[int, list[int]]]]:
        """Add an image of ``size`` pixels.  Returns (added, evicted) where each
        evicted entry is (id, per-channel sync serials).  Call with the lock
        held."""
        evicted: list[tuple[int, list[int]]] = []
        if size <= 0 or size > self.size:
            return False, evicted
        self.available -= size
        while self.available < 0:
            old_id, old = next(iter(self._items.items()))
            if old.sync[client] == serial:
                # used by the very message being built: cannot go
                self.available += size
                return False, evicted
            del self._items[old_id]
            self.available += old.size
            self.sync[client] = serial
            evicted.append((old_id, list(old.sync)))
        item = _Pixmap(size, lossy)
        item.sync[client] = serial
        self.sync[client] = serial
        self._items[image_id] = item
        return True, evicted

    def __contains__(self, image_id: int) -> bool:
        return image_id in self._items

    def __len__(self) -> int:
        return len(self._items)


class PixmapCaches:
    """The pixmap caches of one client session, by cache id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caches: dict[int, PixmapCache] = {}

    def get(self, cache_id: int, size: int) -> PixmapCache:
        with self._lock:
            cache = self._caches.get(cache_id)
            if cache is None:
                cache = PixmapCache(cache_id, size)
                self._caches[cache_id] = cache
            return cache

"""The one bounded cache the package uses (result layouts, per-sender
fields, per-uid verifiers)."""
from __future__ import annotations

from typing import Dict, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Dict[K, V]):
    """A dict that holds at most ``maxsize`` entries. Once full it stores no
    new key (:meth:`put` returns False; the caller computes that value anew
    each time), so a flood of new keys cannot evict the entries already in
    use, and lookups cost a plain dict lookup."""

    __slots__ = ("maxsize",)

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def put(self, key: K, value: V) -> bool:
        """Store ``value`` unless the cache is full (an existing key is replaced)."""
        if key in self or len(self) < self.maxsize:
            self[key] = value
            return True
        return False

"""The process-wide memos: one bounded, thread-safe cache and one content digest for array keys.

Several results are expensive and repeat within a batch: the loaded models, the UV layout raster of
a texture size, the render raster of the mean face (every face of a ``--alpha 1`` batch has the same
geometry), the ``vt``/``f`` text of an OBJ, CenterFace's per-size OpenCV nets, the capped mouth
topology, the drawn features. Each keeps its recent results in a :class:`BoundedCache`; array
arguments enter the key through :func:`content_digest`, a hash of their full content, so a different
mesh can never reuse another's result.

The eviction policy is cachetools' ``LRUCache`` (a maintained, dependency-free implementation); this
module adds the lock and the build-outside-the-lock rule that every user here needs (`faceanon run`
writes and renders on a background thread while the main thread fits the next image).
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Callable, Generic, Hashable, Iterator, TypeVar

import numpy as np
from cachetools import LRUCache

__all__ = ["BoundedCache", "content_digest"]

V = TypeVar("V")


def content_digest(*arrays: "np.ndarray | None") -> str:
    """A 128-bit BLAKE2b hex digest of the arrays' dtype, shape and every byte (``None`` allowed).

    Equal digests mean equal arrays (up to a 2^-64 collision chance); about 1 ms per MB.
    """
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"|none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"|{a.dtype.str}{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8) if a.size else b"")
    return h.hexdigest()


class BoundedCache(Generic[V]):
    """A thread-safe least-recently-used cache of at most ``maxsize`` values (``None``: unbounded).

    :meth:`get_or_build` runs ``build`` OUTSIDE the lock (loading a model or rasterizing can take a
    while and must not block the other thread's hits); when two threads build the same key at once,
    the first value stored wins and both get it.
    """

    def __init__(self, maxsize: int | None) -> None:
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"maxsize must be >= 1 or None, got {maxsize}")
        self._data: LRUCache = LRUCache(math.inf if maxsize is None else int(maxsize))
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        with self._lock:
            try:
                return self._data[key]
            except KeyError:
                pass
        value = build()
        with self._lock:
            return self._data.setdefault(key, value)

    def items(self) -> list[tuple[Hashable, V]]:
        """A snapshot of the (key, value) pairs."""
        with self._lock:
            return list(self._data.items())

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __iter__(self) -> Iterator[Hashable]:
        return iter([k for k, _ in self.items()])

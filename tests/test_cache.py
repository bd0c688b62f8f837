"""faceanon.cache: the bounded LRU every in-process memo uses, and the content digest of its keys."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from faceanon.cache import BoundedCache, content_digest


def test_digest_sees_content_dtype_and_shape():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert content_digest(a) == content_digest(a.copy()) == content_digest(np.asfortranarray(a))
    b = a.copy()
    b[2, 3] += 1e-3  # the last byte region: a strided sample of the bytes would miss a change here
    assert content_digest(b) != content_digest(a)
    assert content_digest(a) != content_digest(a.astype(np.float64))
    assert content_digest(a) != content_digest(a.reshape(4, 3))
    assert content_digest(a, None) != content_digest(a) != content_digest(None, a)
    assert content_digest(np.zeros((0, 3))) != content_digest(np.zeros((3, 0)))


def test_least_recently_used_is_evicted():
    c: BoundedCache[int] = BoundedCache(2)
    built = []

    def get(k):
        return c.get_or_build(k, lambda: built.append(k) or k * 10)

    assert [get(1), get(2), get(1), get(3)] == [10, 20, 10, 30]  # 1 was used after 2: 2 goes
    assert sorted(c) == [1, 3] and len(c) == 2
    get(1)
    get(2)
    assert built == [1, 2, 3, 2]
    c.clear()
    assert len(c) == 0 and list(c) == []


def test_unbounded_and_invalid_sizes():
    c = BoundedCache(None)
    for k in range(100):
        c.get_or_build(k, lambda k=k: k)
    assert len(c) == 100 and dict(c.items())[42] == 42
    with pytest.raises(ValueError):
        BoundedCache(0)


def test_build_runs_outside_the_lock_and_the_first_value_wins():
    """A slow build must not block hits of other keys; two racing builds of one key share a value."""
    c: BoundedCache[object] = BoundedCache(4)
    c.get_or_build("hit", lambda: "cached")
    started, release = threading.Event(), threading.Event()
    results = []

    def slow():
        started.set()
        assert release.wait(10)
        return object()

    t1 = threading.Thread(target=lambda: results.append(c.get_or_build("slow", slow)))
    t1.start()
    assert started.wait(10)
    assert c.get_or_build("hit", lambda: "rebuilt") == "cached"  # not blocked by the running build
    t2 = threading.Thread(target=lambda: results.append(c.get_or_build("slow", lambda: object())))
    t2.start()
    t2.join(10)
    release.set()
    t1.join(10)
    assert len(results) == 2 and results[0] is results[1]

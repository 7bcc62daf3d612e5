"""The view cache is bounded in bytes and entries, whatever the keys (issue 9)."""

from __future__ import annotations

from projections.cache import ENTRY_OVERHEAD, ViewCache

TOKEN = (1,)


def test_the_cache_never_holds_more_than_its_byte_bound() -> None:
    cache = ViewCache(max_bytes=10_000, max_entries=1_000)
    for n in range(500):
        cache.put(f"projects:q={n}", TOKEN, b"x" * 300)
        assert cache.bytes <= 10_000
    assert 0 < len(cache) < 500
    assert cache.get("projects:q=499") == (TOKEN, b"x" * 300)  # the newest stay
    assert cache.get("projects:q=0") is None  # the oldest went first


def test_the_byte_count_is_exact_after_replacing_and_evicting() -> None:
    cache = ViewCache(max_bytes=100_000, max_entries=3)
    for key, body in (("a", b"1" * 10), ("b", None), ("a", b"2" * 50), ("c", b""), ("d", b"4")):
        cache.put(key, TOKEN, body)
    assert len(cache) == 3 and cache.get("b") is None
    assert cache.bytes == sum(ENTRY_OVERHEAD + 1 + n for n in (50, 0, 1))


def test_a_body_larger_than_the_whole_cache_is_not_kept() -> None:
    cache = ViewCache(max_bytes=1_000)
    cache.put("small", TOKEN, b"s")
    cache.put("huge", TOKEN, b"h" * 5_000)
    assert cache.get("huge") is None and cache.get("small") is not None
    assert cache.bytes == ENTRY_OVERHEAD + len("small") + 1

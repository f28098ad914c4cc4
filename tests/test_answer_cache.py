"""The answer cache: keyed by the snapshot id, bounded in bytes, never keeping failures or big answers."""

from __future__ import annotations

import pytest

from server.store.cache import AnswerCache, answer_key


def key(etag: str = "s1", query: str = "ASK {}") -> tuple:
    return answer_key(etag, query, "json", 10, None, None, None)


def test_an_answer_is_given_again_for_the_same_snapshot_only():
    cache, calls = AnswerCache(1000), []
    compute = lambda: calls.append(1) or b"yes"  # noqa: E731
    assert cache.answer(key(), compute) == b"yes"
    assert cache.answer(key(), compute) == b"yes"
    assert len(calls) == 1
    assert cache.answer(key(etag="s2"), compute) == b"yes"  # a new snapshot: computed again
    assert len(calls) == 2


def test_the_budget_bounds_the_bytes_kept_and_drops_the_least_recently_used():
    cache = AnswerCache(max_bytes=10, max_entry=10)
    for n in range(5):
        cache.answer(key(query=str(n)), lambda: b"abcd")
    assert cache.size <= 10 and len(cache.answers) == 2
    assert set(cache.answers) == {key(query="3"), key(query="4")}
    cache.answer(key(query="big"), lambda: b"x" * 11)
    assert key(query="big") not in cache.answers


def test_failures_are_not_kept():
    cache = AnswerCache(1000)

    def fail() -> bytes:
        raise RuntimeError("engine down")

    with pytest.raises(RuntimeError):
        cache.answer(key(), fail)
    assert cache.answer(key(), lambda: b"ok") == b"ok"


def test_a_budget_of_zero_keeps_nothing():
    cache = AnswerCache(0)
    cache.answer(key(), lambda: b"")
    assert not cache.answers


def test_datasets_that_differ_are_different_keys():
    assert answer_key("s", "q", "json", 1, None, None, None) != answer_key("s", "q", "json", 1, [], None, None)
    assert answer_key("s", "q", "json", 1, ["g"], None, None) != answer_key("s", "q", "csv", 1, ["g"], None, None)

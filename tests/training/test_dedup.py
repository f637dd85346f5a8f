import numpy as np
import pyarrow as pa
import pytest

from training import dedup
from training.dedup import first_occurrences, hash_strings


def _reference(values: list) -> np.ndarray:
    seen, keep = set(), []
    for v in values:
        keep.append(v is None or v not in seen)
        if v is not None:
            seen.add(v)
    return np.array(keep)


def _ids(seed: int, n: int = 5000) -> list:
    rng = np.random.default_rng(seed)
    pool = [f"e{i}" for i in range(2000)] + ["", "e0\x00", "a-much-longer-event-id-" * 3, "é✓"]
    values = [pool[i] for i in rng.integers(0, len(pool), n)]
    for i in rng.choice(n, 50, replace=False):
        values[i] = None
    return values


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string()])
def test_first_occurrences_matches_a_set_scan(typ):
    values = _ids(0)
    np.testing.assert_array_equal(first_occurrences(pa.array(values, typ)), _reference(values))


def test_first_occurrences_on_a_slice_and_chunks():
    values = _ids(1)
    arr = pa.array(values)
    np.testing.assert_array_equal(first_occurrences(arr.slice(1234, 2000)), _reference(values[1234:3234]))
    chunked = pa.chunked_array([arr.slice(0, 100), arr.slice(100)])
    np.testing.assert_array_equal(first_occurrences(chunked), _reference(values))


def test_first_occurrences_is_exact_even_when_every_hash_collides(monkeypatch):
    monkeypatch.setattr(dedup, "hash_strings", lambda arr: np.zeros(len(arr), np.uint64))
    values = _ids(2)
    np.testing.assert_array_equal(first_occurrences(pa.array(values)), _reference(values))


def test_hash_depends_on_the_value_only():
    arr = pa.array(["x", "abcdefgh", "abcdefghi", "a", "a\x00", "", "abcdefghi"])
    h = hash_strings(arr)
    assert h[2] == h[6] and len(set(h[:6].tolist())) == 6
    np.testing.assert_array_equal(hash_strings(arr.slice(2, 3)), h[2:5])  # offsets don't matter

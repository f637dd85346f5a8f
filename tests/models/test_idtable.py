"""The compact id table answers what the list and dict it replaces answered."""

import random

import pytest

from models.idtable import IdTable


def test_rows_by_id_and_ids_by_row_as_a_list_and_a_dict_would():
    ids = [f"u{n:05d}" for n in range(3000)] + ["ünïcode", "", "a" * 300]
    random.Random(1).shuffle(ids)
    table = IdTable(ids)
    index = {u: i for i, u in enumerate(ids)}
    assert len(table) == len(ids) and list(table) == ids and table == ids
    assert all(table[i] == u for i, u in enumerate(ids)) and table[-1] == ids[-1]
    assert table[10:20] == ids[10:20]
    rows = table.rows
    assert all(rows[u] == i and rows.get(u) == i and u in rows for u, i in index.items())
    assert len(rows) == len(ids) and dict(rows.items()) == index
    for missing in ("nope", "u99999", "u0000", 7, None):
        assert rows.get(missing) is None and missing not in rows and missing not in table
    with pytest.raises(KeyError):
        rows["nope"]
    with pytest.raises(IndexError):
        table[len(ids)]


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate id 'b'"):
        IdTable(["a", "b", "c", "b"])


def test_an_empty_table():
    table = IdTable([])
    assert len(table) == 0 and list(table) == [] and table.rows.get("x") is None

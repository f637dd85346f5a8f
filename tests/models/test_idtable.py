"""The compact id table answers what the list and dict it replaces answered."""

import random

import pytest

from models.idtable import IdTable


@pytest.mark.parametrize("memo", [0, 64])
def test_rows_by_id_and_ids_by_row_as_a_list_and_a_dict_would(memo):
    ids = [f"u{n:05d}" for n in range(3000)] + ["ünïcode", "", "a" * 300]
    random.Random(1).shuffle(ids)
    table = IdTable(ids, memo=memo)
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


def test_the_memo_answers_as_the_table_does_and_stays_bounded():
    ids = [f"i{n}" for n in range(5000)]
    table = IdTable(ids, memo=100)
    rng = random.Random(2)
    for _ in range(3):  # asked again: answered from the memo, the same
        for _ in range(2000):
            r = int(len(ids) * rng.random() ** 3)  # a popular head, a long tail
            assert table.rows.get(ids[r]) == r and table.rows[ids[r]] == r and table[r] == ids[r]
            assert table.rows.get(f"forged-{r}") is None
            assert len(table._rows_memo) + len(table._rows_old) <= 100
            assert len(table._ids_memo) + len(table._ids_old) <= 100
    remembered = table._rows_memo | table._rows_old
    assert "forged-1" not in remembered  # unknown ids are not remembered
    assert remembered and all(ids[r] == i for i, r in remembered.items())


def test_an_id_asked_lately_stays_remembered_when_the_memo_turns_over():
    """An entry survives at least half the memo's size of entries (new or asked again) after
    it, however full the memo was: here at most 40, so only ids never asked before are looked
    up in the table (one memo emptied when full lost them all at once)."""
    ids = [f"i{n}" for n in range(1000)]
    table = IdTable(ids, memo=100)
    finds, decodes = [], []
    find, decode = table._find, table._decode
    table._find = lambda item: finds.append(item) or find(item)
    table._decode = lambda row: decodes.append(row) or decode(row)
    for j in range(len(ids)):
        for r in (j, j - 20):  # a new id, then the one first asked 20 new ids ago
            if r >= 0:
                assert table.rows.get(ids[r]) == r and table[r] == ids[r]
    assert len(finds) == len(ids) and len(decodes) == len(ids)

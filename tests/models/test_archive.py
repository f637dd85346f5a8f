"""The event archive: day partitions, exactly-once batches, windows, tombstones, filesystems."""

import subprocess
import sys
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from models import archive
from models.archive import purge_erased
from models.events import Event
from models.tombstones import read_tombstones, write_tombstone

DAY = 86_400_000
T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z


def ev(i: int, ts: int, user: str | None = "u1", session: str = "s1", **extra) -> Event:
    return Event(event_id=f"e{i}", session_id=session, type="view", ts=ts, item_id=f"i{i % 7}",
                 user_id=user, **extra)


def raw_rows(root: Path) -> list[str]:
    """Every event_id in every part file on disk, committed or not, duplicates included."""
    return [e for p in sorted(root.glob("date=*/part-*.parquet"))
            for e in pq.read_table(p, columns=["event_id"])["event_id"].to_pylist()]


def test_a_batch_lands_in_day_partitions_and_reads_back_field_for_field(tmp_path):
    events = [ev(1, T0 + 5, category="shoes", price=9.5, channel="app"), ev(2, T0 + DAY + 1, user=None),
              Event(event_id="e3", session_id="s2", type="search", ts=T0 + 7, query="red")]
    written = archive.write_batch(tmp_path, events, "100-0", "102-0")
    assert sorted(Path(p).parent.name for p in written) == ["date=2026-01-05", "date=2026-01-06"]
    assert all(Path(p).name == "part-100-0_102-0.parquet" for p in written)
    assert archive.committed_position(tmp_path) == "102-0"
    back = archive.to_events(archive.read_window(tmp_path))
    assert back == sorted(events, key=lambda e: e.ts)


def test_window_keeps_only_events_in_range_and_skips_other_days(tmp_path):
    archive.write_batch(tmp_path, [ev(i, T0 + i * DAY) for i in range(5)], "1-0", "5-0")
    table = archive.read_window(tmp_path, T0 + DAY, T0 + 3 * DAY)
    assert table["event_id"].to_pylist() == ["e1", "e2"]
    assert len(archive.list_parts(tmp_path, T0 + DAY, T0 + 3 * DAY)) == 2  # pruned by day
    assert archive.read_window(tmp_path, T0 + 10 * DAY).num_rows == 0


def test_a_committed_batch_written_again_is_a_no_op_and_an_overlap_is_refused(tmp_path):
    archive.write_batch(tmp_path, [ev(1, T0), ev(2, T0)], "1-0", "2-0")
    assert archive.write_batch(tmp_path, [ev(1, T0), ev(2, T0)], "1-0", "2-0") == []
    with pytest.raises(archive.ArchiveError, match="resume after"):
        archive.write_batch(tmp_path, [ev(2, T0), ev(3, T0)], "2-0", "3-0")
    assert raw_rows(tmp_path) == ["e1", "e2"]


def test_a_batch_killed_before_its_commit_leaves_no_copy_after_the_rerun(tmp_path, monkeypatch):
    put = archive.put

    def crash_at_commit(root, path, write):
        if path.endswith(archive.POSITION):
            raise KeyboardInterrupt("killed")
        put(root, path, write)

    monkeypatch.setattr(archive, "put", crash_at_commit)
    with pytest.raises(KeyboardInterrupt):
        archive.write_batch(tmp_path, [ev(1, T0), ev(2, T0 + DAY)], "1-0", "2-0")
    monkeypatch.undo()
    assert raw_rows(tmp_path) == ["e1", "e2"]  # on disk, but not committed:
    assert archive.committed_position(tmp_path) is None and archive.read_window(tmp_path).num_rows == 0
    # The rerun resumes from the committed position; the stream has grown meanwhile, and a
    # smaller batch size puts e2 in a later batch: each event is still on disk once.
    archive.write_batch(tmp_path, [ev(1, T0)], "1-0", "1-0")
    archive.write_batch(tmp_path, [ev(2, T0 + DAY), ev(3, T0 + DAY)], "2-0", "3-0")
    assert sorted(raw_rows(tmp_path)) == ["e1", "e2", "e3"]
    assert archive.read_window(tmp_path)["event_id"].to_pylist() == ["e1", "e2", "e3"]


def test_duplicate_event_ids_are_written_and_read_once(tmp_path):
    archive.write_batch(tmp_path, [ev(1, T0), ev(1, T0), ev(2, T0)], "1-0", "3-0")
    assert raw_rows(tmp_path) == ["e1", "e2"]
    archive.write_batch(tmp_path, [ev(2, T0 + 1)], "4-0", "4-0")  # a stream may hold one twice
    table = archive.read_window(tmp_path)
    assert table["event_id"].to_pylist() == ["e1", "e2"] and table["ts"].to_pylist() == [T0, T0]


def test_tombstones_drop_the_user_and_the_sessions_they_were_seen_in(tmp_path):
    events = [ev(1, T0, user=None, session="before-login"), ev(2, T0 + 1, user="u1", session="before-login"),
              ev(3, T0 + 2, user="u2", session="s2"), ev(4, T0 + 3, user=None, session="anon")]
    archive.write_batch(tmp_path, events, "1-0", "4-0")
    write_tombstone(tmp_path, user_ids=["u1"])
    write_tombstone(tmp_path, session_ids=["anon"])
    assert read_tombstones(tmp_path).user_ids == {"u1"}
    assert archive.read_window(tmp_path)["event_id"].to_pylist() == ["e3"]
    assert archive.read_window(tmp_path, tombstones=False).num_rows == 4
    assert purge_erased(tmp_path) == 3
    assert raw_rows(tmp_path) == ["e3"] and purge_erased(tmp_path) == 0


def test_any_pyarrow_filesystem_holds_an_archive():
    fs = pafs._MockFileSystem()  # in memory, as an object store would be: no rename, no fsync
    archive.write_batch("bucket/events", [ev(1, T0), ev(2, T0 + DAY)], "1-0", "2-0", filesystem=fs)
    write_tombstone("bucket/events", session_ids=["nobody"], filesystem=fs)
    assert archive.committed_position("bucket/events", filesystem=fs) == "2-0"
    table = archive.read_window("bucket/events", filesystem=fs)
    assert table["event_id"].to_pylist() == ["e1", "e2"]
    assert read_tombstones("bucket/events", filesystem=fs).session_ids == {"nobody"}


def test_the_contracts_import_and_tombstones_work_without_pyarrow(tmp_path):
    # The online install has no pyarrow; the server writes tombstones and names the archive.
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from models import archive\n"
        "from models.tombstones import read_tombstones, write_tombstone\n"
        f"write_tombstone({str(tmp_path)!r}, user_ids=['u9'])\n"
        f"assert read_tombstones({str(tmp_path)!r}).erases('u9', None)\n"
        "assert archive.stream_id_key('10-2') > archive.stream_id_key('9-5')\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

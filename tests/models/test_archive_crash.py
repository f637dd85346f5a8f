"""Crash test: an exporter killed with SIGKILL at random points, 20 times, while events flow;
afterwards the archive holds every acknowledged event exactly once, and nothing was trimmed
from the stream before it was archived.

Reusable: `kill_repeatedly` runs any exporter command (the server's against a real Redis too)
and `assert_archived_exactly_once` checks any archive against the events that were appended.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pyarrow.parquet as pq

from models import archive
from models.events import Event

HERE = Path(__file__).resolve().parent
T0 = 1_767_571_200_000
HOUR = 3_600_000


def kill_repeatedly(command: Callable[[], list[str]], *, kills: int, rng: random.Random,
                    flow: Callable[[], None], in_flight: Callable[[], bool],
                    min_s: float = 0.3, max_s: float = 1.2) -> int:
    """Start `command()`, let events `flow()` in while it runs, SIGKILL it at a random moment;
    `kills` times. Returns how many kills landed while a batch was in flight."""
    mid_batch = 0
    for _ in range(kills):
        proc = subprocess.Popen(command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0, min_s))
        flow()
        time.sleep(rng.uniform(min_s, max_s))
        if proc.poll() is not None:
            raise AssertionError(f"the exporter exited by itself: {proc.stderr.read().decode()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        mid_batch += in_flight()
    return mid_batch


def assert_archived_exactly_once(root: Path, event_ids: list[str]) -> None:
    on_disk = [e for p in sorted(root.glob("date=*/part-*.parquet"))
               for e in pq.read_table(p, columns=["event_id"])["event_id"].to_pylist()]
    assert len(on_disk) == len(set(on_disk)), "an event is archived twice"
    assert sorted(on_disk) == sorted(event_ids), "an acknowledged event is missing"
    read = archive.read_window(root)["event_id"].to_pylist()
    assert sorted(read) == sorted(event_ids)


class Stream:
    """The fake stream's file: acknowledged events are appended, each with its stream id."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.path, self.rng, self.ids = path, rng, []
        path.touch()

    def append(self, n: int) -> None:
        lines = []
        for _ in range(n):
            i = len(self.ids)
            ts = T0 + i * HOUR // 40 + self.rng.randrange(-HOUR, HOUR)  # out of order, across days
            event = Event(event_id=f"e{i}", session_id=f"s{i // 9}", type="view", ts=ts, item_id=f"i{i % 97}",
                          user_id=None if i % 3 == 0 else f"u{i % 50}")
            lines.append(msgspec.json.encode({"id": f"{T0 + i}-{i % 2}", "event": event}))
            self.ids.append(event.event_id)
        with self.path.open("ab") as f:  # one write: the reader ignores a half-written last line
            f.write(b"\n".join(lines) + b"\n")


def test_an_exporter_killed_20_times_archives_every_event_exactly_once(tmp_path):
    rng = random.Random(26)
    stream = Stream(tmp_path / "stream.jsonl", rng)
    root = tmp_path / "archive"
    command = [sys.executable, str(HERE / "list_stream_exporter.py"), str(stream.path), str(root)]

    def in_flight() -> bool:  # a batch had written its intent but not committed
        pending, position = root / archive.PENDING, archive.committed_position(root)
        if not pending.exists():
            return False
        last = msgspec.json.decode(pending.read_bytes())["last_id"]
        return position is None or archive.stream_id_key(last) > archive.stream_id_key(position)

    stream.append(500)
    # Each restart with another batch size, so a rerun's range differs from the killed one's.
    mid_batch = kill_repeatedly(lambda: [*command, "--slow-io", "0.02", "--batch", str(rng.randrange(5, 40))],
                                kills=20, rng=rng, flow=lambda: stream.append(rng.randrange(100, 400)),
                                in_flight=in_flight)
    subprocess.run([*command, "--drain"], check=True)
    assert_archived_exactly_once(root, stream.ids)
    trimmed = (stream.path.with_name("stream.jsonl.trimmed")).read_text()
    last = len(stream.ids) - 1
    assert trimmed == archive.committed_position(root) == f"{T0 + last}-{last % 2}"
    assert mid_batch >= 1, "no kill landed inside a batch: the test did not exercise the crash window"

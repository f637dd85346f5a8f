"""An exporter over a fake stream, for the archive's crash test (tests/models/test_archive_crash.py).

The stream is a JSON Lines file of {"id": stream id, "event": {...}} that the test appends to
while this runs; trimming records the trimmed position in a file, and trimmed entries are gone
from the stream from then on, as XTRIM makes them in Redis. The loop is `models.archive.export`,
the one the server's exporter follows: commit a batch, then trim.

    python tests/models/list_stream_exporter.py STREAM ROOT [--batch N] [--slow-io S] [--drain]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models import archive  # noqa: E402
from models.events import Event  # noqa: E402


class Entry(msgspec.Struct):
    id: str
    event: Event


class ListStream:
    """A plain list of (id, Event) read from a file, with a durable trim position."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.trim_file = path.with_name(path.name + ".trimmed")

    def _trimmed(self) -> tuple[int, int]:
        try:
            return archive.stream_id_key(self.trim_file.read_text().strip())
        except FileNotFoundError:
            return (-1, -1)

    def read_after(self, position: str | None, count: int) -> list[tuple[str, Event]]:
        after = max(archive.stream_id_key(position) if position else (-1, -1), self._trimmed())
        lines = self.path.read_bytes().split(b"\n")[:-1]  # the last may be half-written
        out = []
        for line in lines:
            entry = msgspec.json.decode(line, type=Entry)
            if archive.stream_id_key(entry.id) > after:
                out.append((entry.id, entry.event))
                if len(out) == count:
                    break
        return out

    def trim_through(self, position: str) -> None:
        if archive.stream_id_key(position) <= self._trimmed():
            return  # trimmed entries are gone for good (XTRIM can't bring them back)
        tmp = self.trim_file.with_suffix(".tmp")
        tmp.write_text(position)
        os.replace(tmp, self.trim_file)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stream", type=Path)
    ap.add_argument("root", type=Path)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--drain", action="store_true", help="export what is there, then exit")
    ap.add_argument("--slow-io", type=float, default=0.0,
                    help="up to this many seconds of storage latency after each file written "
                         "(an object store's), so that kills land inside batches")
    args = ap.parse_args()
    if args.slow_io:
        put, rng = archive.put, random.Random()

        def slow_put(root, path, write):
            put(root, path, write)
            time.sleep(rng.uniform(0, args.slow_io))

        archive.put = slow_put
    source = ListStream(args.stream)
    while True:  # a continuous exporter, as `--every` runs it, until killed
        archive.export(source, args.root, batch=args.batch)
        if args.drain:
            return
        time.sleep(0.01)


if __name__ == "__main__":
    main()

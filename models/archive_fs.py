"""Where the event archive lives: a local directory or any pyarrow/fsspec filesystem path, and
the one way files are written there (absent or complete, durable once written). Shared by the
archive (models/archive.py) and its tombstones (models/tombstones.py). pyarrow is imported
inside the functions."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs


class ArchiveError(ValueError):
    """A batch that can't be archived as asked (a bad or overlapping range, a bad root)."""


@dataclass
class Root:
    fs: Any  # pyarrow.fs.FileSystem
    path: str  # the root inside fs, without a trailing slash
    local: bool  # rename + fsync available (a POSIX directory)

    def join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])


def open_root(root: str | Path, filesystem: pafs.FileSystem | None = None) -> Root:
    """Local paths by default; URIs through pyarrow's filesystems, else fsspec's."""
    import pyarrow.fs as pafs

    if filesystem is not None:
        return Root(filesystem, str(root).rstrip("/"), isinstance(filesystem, pafs.LocalFileSystem))
    text = str(root)
    if "://" not in text:
        return Root(pafs.LocalFileSystem(), str(Path(text).resolve()), True)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except Exception as pa_exc:  # unknown scheme for this pyarrow build: try fsspec
        try:
            import fsspec
        except ImportError:
            raise ArchiveError(f"{text}: unsupported filesystem ({pa_exc}); install fsspec "
                               "or a pyarrow build with that filesystem") from None
        fs_, path = fsspec.core.url_to_fs(text)
        fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs_))
    return Root(fs, path.rstrip("/"), isinstance(fs, pafs.LocalFileSystem))


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def put(root: Root, path: str, write: Callable[[Any], None]) -> None:
    """Write a file so that it is either absent or complete, and durable once this returns."""
    directory, name = path.rsplit("/", 1)
    root.fs.create_dir(directory, recursive=True)
    if not root.local:  # object stores: the object appears whole when the upload completes
        with root.fs.open_output_stream(path) as out:
            write(out)
        return
    tmp = f"{directory}/.{name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(directory)  # the rename is durable only once the directory entry is


def ls(root: Root, path: str) -> list[str]:
    """Base names in a directory ([] when it doesn't exist)."""
    import pyarrow.fs as pafs

    infos = root.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return [info.base_name for info in infos]


def write_parquet(table: pa.Table, out: Any) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, out, compression="zstd")

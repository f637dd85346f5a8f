"""The model artifact: the contract between the trainer (writes, publishes) and the server (loads).

Layout of one version, `<store>/<version>/`:

    manifest.json        version, created, data fingerprint, the newest event's time trained
                         on (data_until_ms), parameters (incl. event weights), metrics, counts,
                         index description, format version
    items.msgpack        {"ids": [...], "category": [...], "price": [...], "in_stock": [...],
                          "consumable": [...]}  -- one entry per item row, same order as factors
    item_factors.npy     float32 (n_items, k), memory-mapped by the server
    users.msgpack        {"ids": [...]} -- one per row of user_factors
    user_factors.npy     float32 (n_users, k)
    popularity.npy       float32 (n_items,), the popularity score used for fallbacks
    gram.npy             float64 (k, k), YᵀY for the fold-in
    index.faiss          FAISS index over item_factors (inner product) answering item rows:
                         all of them, or (manifest index.head_items) an id-mapped subset
    segments.msgpack     optional: per purchasing customer, purchase statistics (first and last
                         purchase, orders and spend, all time and per window), R/F/M scores,
                         segment and churn probability, with the segment rules and RFM edges
                         used (training/segments.py writes it, models/rfm.py reads a row;
                         files without "format" hold labels only)
    repurchase.npz       optional: per item `cycle_days` (float32, NaN = none) and
                         `cycle_source` (0 none, 1 item, 2 category); per user row a CSR purchase
                         history `user_indptr`, `items`, `last_ms`, `orders` (models/repurchase.py)
    neighbours.indptr.npy, neighbours.indices.npy, neighbours.data.npy
                         optional (format 3): the item-item model's sparse rows, CSR over item
                         rows (int64, int32, float32; memory-mapped), present when the manifest's
                         model.itemitem says so; scored by `models.itemitem.session_scores`

The manifest (format 3) also says which model ranks sessions and how (`model`: family, ALS's and
the item-item model's parameters; `serving`: session_items, the cap on recent items folded in,
and blend, read by `models.ranking.SessionBlend.from_manifest`) and what the model search
tried (`search`). The ALS factors and FAISS index are always there: retrieval, similar items and
known users' trained vectors use them whichever family ranks sessions.

A version is written to a hidden temporary directory beside the others and renamed into
place, checked completely (`load`: the manifest's schema, every array's dtype, shape and
finiteness, the index against the factors, the version named as its directory), then the
`CURRENT` file is replaced atomically (`os.replace`): a reader either sees the previous
complete version or the new complete one, never a half-written directory. The server runs the
same checks before it swaps a version in, and `vitrine models use` before it switches CURRENT.

A published version is never modified in place: its factors are memory-mapped by every server
process, and truncating or rewriting a mapped file makes the next read of it fault (SIGBUS,
the process dies). To fix a version, publish a new one (or `vitrine models use` another).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import orjson

from models.checks import check_arrays, check_manifest, check_neighbours
from models.coded import CodedStrings
from models.idtable import IdTable
from models.itemitem import Neighbours
from models.ranking import SessionBlend, session_items_cap

# Item ids a worker remembers (looked up, and read back, apart): the popular head of the
# catalog, whose lookups are tens per request; ~5 MB each way (models/idtable.py).
ITEM_ID_MEMO = 32_768

# 2: the index may be a norm head (an id-mapped subset of the items, manifest index.head_items),
# which a reader of format 1 would refuse as a size mismatch.
# 3: optional item-item neighbours and the manifest's model/serving/search; a reader of format 2
# would serve the fold-in alone, not the model that was evaluated. Formats 1 and 2 are still read.
FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, 3)
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
REQUIRED_FILES = (
    MANIFEST,
    "items.msgpack",
    "item_factors.npy",
    "users.msgpack",
    "user_factors.npy",
    "popularity.npy",
    "gram.npy",
    "index.faiss",
)
NEIGHBOUR_FILES = ("neighbours.indptr.npy", "neighbours.indices.npy", "neighbours.data.npy")
_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")


class ArtifactError(Exception):
    """A model version is missing, incomplete or corrupt."""


@dataclass
class ItemMeta:
    ids: Sequence[str]  # an IdTable once loaded
    category: Sequence[str | None]  # a list, or CodedStrings once loaded
    price: np.ndarray  # float32, NaN when unknown
    in_stock: np.ndarray  # bool
    consumable: np.ndarray  # bool: re-bought on a cycle, so a past purchase doesn't exclude it


@dataclass
class ModelArtifact:
    """A loaded model version. Arrays are read-only and memory-mapped where large."""

    path: Path
    manifest: dict[str, Any]
    items: ItemMeta
    item_factors: np.ndarray
    user_ids: Sequence[str]  # an IdTable once loaded
    user_factors: np.ndarray
    popularity: np.ndarray
    gram: np.ndarray
    index: Any  # faiss.Index
    segments: dict[str, Any] | None = None
    repurchase: dict[str, np.ndarray] | None = None
    item_index: Mapping[str, int] = field(default_factory=dict)
    user_index: Mapping[str, int] = field(default_factory=dict)
    neighbours: Neighbours | None = None  # the item-item model, when the manifest has one

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def params(self) -> dict[str, Any]:
        return self.manifest["params"]

    @property
    def event_weights(self) -> dict[str, float]:
        return self.manifest["params"]["event_weights"]

    @property
    def session_blend(self) -> SessionBlend:
        """How sessions are ranked (`models.ranking.rank_session`); older formats: fold-in alone."""
        return SessionBlend.from_manifest(self.manifest)

    @property
    def session_items(self) -> int:
        """How many of a shopper's most recent items to fold in (older formats: 50)."""
        return session_items_cap(self.manifest)

    @property
    def item_value_saturation(self) -> float:
        """`models.itemitem.item_values`'s saturation for this model's item-item rows."""
        return float(self.manifest.get("model", {}).get("itemitem", {}).get("saturation", 1.0))


def describe_index(index: dict) -> str:
    """One line for a manifest's index description (the trainer's report, the benchmarks)."""
    if index.get("head_items"):
        return (f"{index['kind']}, the {index['head_items']:,} largest-norm items, "
                f"recall@50 {index['recall_at_50']:.3f}, "
                f"recall@{index.get('head_depth', 100)} {index['recall_at_head_depth']:.3f} vs exact")
    if index.get("nlist"):
        return (f"{index['kind']}, nlist {index['nlist']}, nprobe {index['nprobe']}, "
                f"recall@50 {index['recall_at_50']:.3f} vs exact")
    return f"{index['kind']} (exact)"


def new_version(fingerprint: str, now: float | None = None) -> str:
    """A sortable, unique version name: UTC time plus 8 hex digits of the data fingerprint."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{stamp}-{fingerprint[:8]}"


def write_artifact(
    directory: Path,
    *,
    manifest: dict[str, Any],
    items: ItemMeta,
    item_factors: np.ndarray,
    user_ids: list[str],
    user_factors: np.ndarray,
    popularity: np.ndarray,
    gram: np.ndarray,
    index: Any,
    segments: dict[str, Any] | None = None,
    repurchase: dict[str, np.ndarray] | None = None,
    neighbours: Neighbours | None = None,
) -> None:
    """Write every file of one version into `directory` (which must exist and be empty).
    With `neighbours`, the manifest must describe them under model.itemitem."""
    import faiss  # only writers and loaders need it; keeps `models` importable without

    n_items = len(items.ids)
    if item_factors.shape[0] != n_items or popularity.shape[0] != n_items:
        raise ArtifactError("item_factors, popularity and item ids disagree in length")
    if user_factors.shape[0] != len(user_ids):
        raise ArtifactError("user_factors and user ids disagree in length")
    if (neighbours is not None) != _has_itemitem(manifest):
        raise ArtifactError("neighbours are written exactly when the manifest's model.itemitem "
                            "describes them")
    if neighbours is not None and (problem := check_neighbours(neighbours, n_items)):
        raise ArtifactError(problem)
    manifest = {**manifest, "format_version": FORMAT_VERSION}
    _pack(directory / "items.msgpack", {
        "ids": list(items.ids),
        "category": list(items.category),
        "price": np.asarray(items.price, dtype=np.float32).tolist(),
        "in_stock": np.asarray(items.in_stock, dtype=bool).tolist(),
        "consumable": np.asarray(items.consumable, dtype=bool).tolist(),
    })
    _pack(directory / "users.msgpack", {"ids": list(user_ids)})
    np.save(directory / "item_factors.npy", np.ascontiguousarray(item_factors, dtype=np.float32))
    np.save(directory / "user_factors.npy", np.ascontiguousarray(user_factors, dtype=np.float32))
    np.save(directory / "popularity.npy", np.asarray(popularity, dtype=np.float32))
    np.save(directory / "gram.npy", np.asarray(gram, dtype=np.float64))
    faiss.write_index(index, str(directory / "index.faiss"))
    if segments is not None:
        _pack(directory / "segments.msgpack", segments)
    if repurchase is not None:
        if len(repurchase["cycle_days"]) != n_items or len(repurchase["user_indptr"]) != len(user_ids) + 1:
            raise ArtifactError("repurchase arrays disagree with the item or user ids in length")
        np.savez(directory / "repurchase.npz", **repurchase)
    if neighbours is not None:
        arrays = (neighbours.indptr, neighbours.indices, neighbours.data)
        for name, array, dtype in zip(NEIGHBOUR_FILES, arrays, (np.int64, np.int32, np.float32), strict=True):
            np.save(directory / name, np.ascontiguousarray(array, dtype=dtype))
    # The manifest goes last: its presence marks the other files as complete.
    (directory / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    fsync_dir(directory)


def publish(
    store: Path,
    version: str,
    write: Callable[[Path], None],
    *,
    keep: int = 5,
) -> Path:
    """Write a version with `write(tmpdir)`, rename it into `store/version`, check it as the
    server will (`load`), switch CURRENT. A version that fails the checks is removed again and
    CURRENT left alone (ArtifactError).

    Keeps the newest `keep` versions (never removing the current one). Returns the final path.
    """
    store.mkdir(parents=True, exist_ok=True)
    final = version_path(store, version)
    if final.exists():
        raise ArtifactError(f"version {version} already exists in {store}")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=store))
    try:
        write(tmp)
        _verify_complete(tmp)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        set_current(store, version)
    except ArtifactError:
        shutil.rmtree(final, ignore_errors=True)
        raise
    prune(store, keep=keep)
    return final


def version_path(store: Path, version: str) -> Path:
    """`store/version`, refusing a name that isn't one directory of the store: `..`, a path,
    an absolute path, a hidden (temporary) directory, a symlink leading out of the store."""
    name = Path(version)
    if (not version or version in (".", "..") or version.startswith(".") or name.is_absolute()
            or len(name.parts) != 1 or "\\" in version):
        raise ArtifactError(f"{version!r} is not a version of {store}: give a directory name of the store "
                            "(`vitrine models list`)")
    path = Path(store) / version
    if path.resolve().parent != Path(store).resolve():
        raise ArtifactError(f"{version!r} leads out of the model store {store}")
    return path


def set_current(store: Path, version: str, *, check: bool = True) -> None:
    """Atomically point CURRENT at `version` (write a temp file, fsync, os.replace), after
    checking it as the server will before serving it (`check`: `load`). Raises ArtifactError."""
    path = version_path(store, version)
    if not (path / MANIFEST).is_file():
        raise ArtifactError(f"cannot point CURRENT at {version}: no such complete version")
    if check:
        load(path)
    fd, tmp = tempfile.mkstemp(prefix=".CURRENT-", dir=store)
    with os.fdopen(fd, "w") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, store / CURRENT)
    fsync_dir(store)


def use_version(store: Path, version: str) -> None:
    """Point CURRENT at `version` after loading it completely (`vitrine models use`, the admin
    API): a version that can't be served is refused and CURRENT stays. Raises ArtifactError."""
    load(store / version)
    set_current(store, version)


def current_version(store: Path) -> str | None:
    try:
        return (store / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def list_versions(store: Path) -> list[dict[str, Any]]:
    """Complete versions, newest first, each with its manifest and whether it is CURRENT."""
    if not store.is_dir():
        return []
    current = current_version(store)
    out = []
    for path in sorted(store.iterdir(), reverse=True):
        if not (path.is_dir() and _VERSION_RE.match(path.name)):
            continue
        try:
            manifest = orjson.loads((path / MANIFEST).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        out.append({"version": path.name, "current": path.name == current, "manifest": manifest})
    return out


def prune(store: Path, *, keep: int) -> list[str]:
    """Delete all but the newest `keep` complete versions; the current one always stays."""
    current = current_version(store)
    versions = [v["version"] for v in list_versions(store)]
    removed = []
    for name in versions[max(keep, 1):]:
        if name != current:
            shutil.rmtree(store / name, ignore_errors=True)
            removed.append(name)
    return removed


def load(path: Path, *, mmap: bool = True) -> ModelArtifact:
    """Load one version directory. Raises ArtifactError if anything is missing or corrupt."""
    import faiss

    try:
        _verify_complete(path)
        manifest = orjson.loads((path / MANIFEST).read_bytes())
        if not isinstance(manifest, dict):
            raise ArtifactError(f"{path}: manifest.json is not a JSON object")
        if manifest.get("format_version") not in READABLE_FORMATS:
            raise ArtifactError(
                f"{path}: format_version {manifest.get('format_version')!r}, "
                f"this build reads {', '.join(map(str, READABLE_FORMATS))}"
            )
        if problem := check_manifest(manifest, path.name):
            raise ArtifactError(f"{path}: {problem}")
        mode = "r" if mmap else None
        raw_items = _unpack(path / "items.msgpack")
        items = ItemMeta(
            ids=IdTable(raw_items.pop("ids"), memo=ITEM_ID_MEMO),  # ValueError: duplicate ids
            category=CodedStrings.of(raw_items.pop("category")),  # the strings freed here
            price=np.asarray(raw_items["price"], dtype=np.float32),
            in_stock=np.asarray(raw_items["in_stock"], dtype=bool),
            consumable=np.asarray(raw_items["consumable"], dtype=bool),
        )
        user_ids = IdTable(_unpack(path / "users.msgpack")["ids"])  # ValueError: duplicate ids
        item_factors = np.load(path / "item_factors.npy", mmap_mode=mode)
        user_factors = np.load(path / "user_factors.npy", mmap_mode=mode)
        popularity = np.load(path / "popularity.npy")
        gram = np.load(path / "gram.npy")
        index = faiss.read_index(str(path / "index.faiss"))
        has_segments = (path / "segments.msgpack").exists()
        segments = _columns(_unpack(path / "segments.msgpack")) if has_segments else None
        repurchase = None
        if (path / "repurchase.npz").exists():
            with np.load(path / "repurchase.npz") as npz:
                repurchase = {name: npz[name] for name in npz.files}
        neighbours = None
        if _has_itemitem(manifest):
            missing = [name for name in NEIGHBOUR_FILES if not (path / name).is_file()]
            if missing:
                raise ArtifactError(f"{path}: the manifest names an item-item model, "
                                    f"missing {', '.join(missing)}")
            neighbours = Neighbours(*(np.load(path / name, mmap_mode=mode) for name in NEIGHBOUR_FILES))
    except ArtifactError:
        raise
    except Exception as exc:  # corrupt files surface as many exception types; name the version
        raise ArtifactError(f"{path}: cannot load model: {exc}") from exc
    art = ModelArtifact(
        path=path,
        manifest=manifest,
        items=items,
        item_factors=item_factors,
        user_ids=user_ids,
        user_factors=user_factors,
        popularity=popularity,
        gram=gram,
        index=index,
        segments=segments,
        repurchase=repurchase,
        item_index=items.ids.rows,
        user_index=user_ids.rows,
        neighbours=neighbours,
    )
    if problem := check_arrays(art):
        raise ArtifactError(f"{path}: {problem}")
    return art


def load_current(store: Path, *, mmap: bool = True) -> ModelArtifact:
    version = current_version(store)
    if version is None:
        raise ArtifactError(f"no published model in {store} (run `vitrine train` first)")
    return load(version_path(store, version), mmap=mmap)


_NOT_COLUMNS = frozenset({"users", "windows_days", "rules", "rfm_edges", "format", "as_of_ms"})


def _columns(segments: dict[str, Any]) -> dict[str, Any]:
    """The segments file's per-customer columns as numpy arrays, its segment names coded
    (models/coded.py) and its customer ids an IdTable: as msgpack lists they were ~2.3M Python
    objects, 74 MB in every worker at 160k customers. Readers index a row (`column[row]`) or
    take the whole column, as before."""
    n = len(segments.get("users") or ())
    out = dict(segments)
    if isinstance(segments.get("users"), list):
        out["users"] = IdTable(segments["users"])  # its `rows` maps a customer to their row
    for key, value in segments.items():
        if key in _NOT_COLUMNS or not isinstance(value, list) or len(value) != n:
            continue
        if key == "segment":
            out[key] = CodedStrings.of(value)
            continue
        column = np.asarray(value, dtype=np.float64) if key == "churn_probability" else np.asarray(value)
        if column.ndim == 1 and column.dtype.kind in "iuf":
            out[key] = column
    return out


def _has_itemitem(manifest: dict[str, Any]) -> bool:
    return bool(manifest.get("model", {}).get("itemitem"))


def _verify_complete(path: Path) -> None:
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ArtifactError(f"{path}: incomplete model version, missing {', '.join(missing)}")


def _pack(path: Path, obj: Any) -> None:
    path.write_bytes(msgpack.packb(obj, use_bin_type=True, default=_plain))


def _plain(obj: Any) -> Any:
    """A loaded artifact's columns (numpy arrays, coded strings, id tables) written back as lists."""
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, (CodedStrings, IdTable)):
        return list(obj)
    raise TypeError(f"cannot write {type(obj).__name__} into an artifact")


def _unpack(path: Path) -> Any:
    return msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

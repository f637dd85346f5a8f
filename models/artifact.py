"""The model artifact: the contract between the trainer (writes, publishes) and the server (loads).

Layout of one version, `<store>/<version>/`:

    manifest.json        version, created, data fingerprint, parameters (incl. event weights),
                         metrics, counts, index description, format version
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

A version is written to a hidden temporary directory beside the others and renamed into
place, then the `CURRENT` file is replaced atomically (`os.replace`): a reader either sees the
previous complete version or the new complete one, never a half-written directory.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import orjson

# 2: the index may be a norm head (an id-mapped subset of the items, manifest index.head_items),
# which a reader of format 1 would refuse as a size mismatch. Format 1 is still read.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
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
_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")


class ArtifactError(Exception):
    """A model version is missing, incomplete or corrupt."""


@dataclass
class ItemMeta:
    ids: list[str]
    category: list[str | None]
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
    user_ids: list[str]
    user_factors: np.ndarray
    popularity: np.ndarray
    gram: np.ndarray
    index: Any  # faiss.Index
    segments: dict[str, Any] | None = None
    repurchase: dict[str, np.ndarray] | None = None
    item_index: dict[str, int] = field(default_factory=dict)
    user_index: dict[str, int] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def params(self) -> dict[str, Any]:
        return self.manifest["params"]

    @property
    def event_weights(self) -> dict[str, float]:
        return self.manifest["params"]["event_weights"]


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
) -> None:
    """Write every file of one version into `directory` (which must exist and be empty)."""
    import faiss  # only writers and loaders need it; keeps `models` importable without

    n_items = len(items.ids)
    if item_factors.shape[0] != n_items or popularity.shape[0] != n_items:
        raise ArtifactError("item_factors, popularity and item ids disagree in length")
    if user_factors.shape[0] != len(user_ids):
        raise ArtifactError("user_factors and user ids disagree in length")
    manifest = {**manifest, "format_version": FORMAT_VERSION}
    _pack(directory / "items.msgpack", {
        "ids": items.ids,
        "category": items.category,
        "price": np.asarray(items.price, dtype=np.float32).tolist(),
        "in_stock": np.asarray(items.in_stock, dtype=bool).tolist(),
        "consumable": np.asarray(items.consumable, dtype=bool).tolist(),
    })
    _pack(directory / "users.msgpack", {"ids": user_ids})
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
    """Write a version with `write(tmpdir)`, rename it into `store/version`, switch CURRENT.

    Keeps the newest `keep` versions (never removing the current one). Returns the final path.
    """
    store.mkdir(parents=True, exist_ok=True)
    final = store / version
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
    set_current(store, version)
    prune(store, keep=keep)
    return final


def set_current(store: Path, version: str) -> None:
    """Atomically point CURRENT at `version` (write a temp file, fsync, os.replace)."""
    if not (store / version / MANIFEST).is_file():
        raise ArtifactError(f"cannot point CURRENT at {version}: no such complete version")
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
        if manifest.get("format_version") not in READABLE_FORMATS:
            raise ArtifactError(
                f"{path}: format_version {manifest.get('format_version')!r}, "
                f"this build reads {', '.join(map(str, READABLE_FORMATS))}"
            )
        mode = "r" if mmap else None
        raw_items = _unpack(path / "items.msgpack")
        items = ItemMeta(
            ids=raw_items["ids"],
            category=raw_items["category"],
            price=np.asarray(raw_items["price"], dtype=np.float32),
            in_stock=np.asarray(raw_items["in_stock"], dtype=bool),
            consumable=np.asarray(raw_items["consumable"], dtype=bool),
        )
        user_ids = _unpack(path / "users.msgpack")["ids"]
        item_factors = np.load(path / "item_factors.npy", mmap_mode=mode)
        user_factors = np.load(path / "user_factors.npy", mmap_mode=mode)
        popularity = np.load(path / "popularity.npy")
        gram = np.load(path / "gram.npy")
        index = faiss.read_index(str(path / "index.faiss"))
        segments = _unpack(path / "segments.msgpack") if (path / "segments.msgpack").exists() else None
        repurchase = None
        if (path / "repurchase.npz").exists():
            with np.load(path / "repurchase.npz") as npz:
                repurchase = {name: npz[name] for name in npz.files}
    except ArtifactError:
        raise
    except Exception as exc:  # corrupt files surface as many exception types; name the version
        raise ArtifactError(f"{path}: cannot load model: {exc}") from exc
    n_items = len(items.ids)
    indexed = manifest.get("index", {}).get("head_items") or n_items
    if item_factors.shape[0] != n_items or index.ntotal != indexed or popularity.shape[0] != n_items:
        raise ArtifactError(f"{path}: item counts disagree between files")
    if user_factors.shape[0] != len(user_ids) or gram.shape != (item_factors.shape[1],) * 2:
        raise ArtifactError(f"{path}: user factors or Gram matrix have the wrong shape")
    if repurchase is not None and (repurchase["cycle_days"].shape != (n_items,)
                                   or repurchase["user_indptr"].shape != (len(user_ids) + 1,)):
        raise ArtifactError(f"{path}: repurchase arrays disagree with the item or user ids")
    return ModelArtifact(
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
        item_index={item: i for i, item in enumerate(items.ids)},
        user_index={user: i for i, user in enumerate(user_ids)},
    )


def load_current(store: Path, *, mmap: bool = True) -> ModelArtifact:
    version = current_version(store)
    if version is None:
        raise ArtifactError(f"no published model in {store} (run `vitrine train` first)")
    return load(store / version, mmap=mmap)


def _verify_complete(path: Path) -> None:
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ArtifactError(f"{path}: incomplete model version, missing {', '.join(missing)}")


def _pack(path: Path, obj: Any) -> None:
    path.write_bytes(msgpack.packb(obj, use_bin_type=True))


def _unpack(path: Path) -> Any:
    return msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

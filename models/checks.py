"""Every check a model version passes before it is served: the manifest's schema, each array's
dtype, shape and values, the index against the factors. `artifact.load` runs them, so the
trainer's publish, `vitrine models use` and the server's hot swap refuse the same versions.

Each check returns what is wrong, in a sentence naming the file, or None.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

ModelArtifact = Any  # models.artifact.ModelArtifact (which imports this module)

_CHUNK_ROWS = 1 << 16  # finite checks in slices: no full-size temporary for a 1M-item model
_SAMPLE = 64  # index rows compared with the factors


class _Params(msgspec.Struct, frozen=True):
    """The parameters a reader of the artifact relies on (the trainer records many more)."""
    event_weights: dict[str, Annotated[float, msgspec.Meta(ge=0)]]
    regularization: Annotated[float, msgspec.Meta(ge=0)]
    alpha: Annotated[float, msgspec.Meta(ge=0)]


class _Index(msgspec.Struct, frozen=True):
    kind: str = "flat_ip"
    nprobe: Annotated[int, msgspec.Meta(ge=1)] | None = None
    head_items: Annotated[int, msgspec.Meta(ge=1)] | None = None


class _Manifest(msgspec.Struct, frozen=True):
    """What `manifest.json` must hold; unknown fields are allowed (metrics, timings, source...)."""
    version: str
    created: str
    format_version: int
    params: _Params
    counts: dict[str, Any]
    index: _Index = _Index()
    metrics: dict[str, Any] = {}


def check_manifest(manifest: dict, directory: str) -> str | None:
    try:
        m = msgspec.convert(manifest, _Manifest)
    except msgspec.ValidationError as exc:
        return f"manifest.json: {exc}"
    if m.version != directory:
        # CURRENT names a directory: a version served under two names would be reloaded forever
        # and reported under a name that isn't the one operators switch to.
        return (f"manifest.json says version {m.version!r} but its directory is {directory!r}: a version "
                "is published under its own name")
    return None


def check_arrays(art: ModelArtifact) -> str | None:
    n_items, n_users = len(art.items.ids), len(art.user_ids)
    y = art.item_factors
    if y.ndim != 2 or y.dtype != np.float32 or y.shape[0] != n_items or y.shape[1] < 1:
        return (f"item_factors.npy: expected float32 ({n_items:,} items, factors), got "
                f"{y.dtype} {y.shape}: item counts disagree between files")
    k = y.shape[1]
    expected = {"user_factors.npy": (art.user_factors, np.float32, "float32", (n_users, k)),
                "popularity.npy": (art.popularity, np.floating, "float", (n_items,)),
                "gram.npy": (art.gram, np.floating, "float", (k, k))}
    for name, (a, dtype, dtype_name, shape) in expected.items():
        if not np.issubdtype(a.dtype, dtype) or a.shape != shape:
            return f"{name}: expected {dtype_name} {shape}, got {a.dtype} {a.shape}"
    meta = art.items
    if not all(len(x) == n_items for x in (meta.category, meta.price, meta.in_stock, meta.consumable)):
        return "items.msgpack: its columns disagree in length"
    if len(art.item_index) != n_items or len(art.user_index) != n_users:
        return "items.msgpack or users.msgpack: duplicate ids"
    for name, a in (("item_factors.npy", y), ("user_factors.npy", art.user_factors),
                    ("popularity.npy", art.popularity), ("gram.npy", art.gram)):
        if not _finite(a):
            return f"{name}: NaN or infinite values (a diverged fit?)"
    if art.repurchase is not None and (art.repurchase["cycle_days"].shape != (n_items,)
                                       or art.repurchase["user_indptr"].shape != (n_users + 1,)):
        return "repurchase.npz: arrays disagree with the item or user ids"
    if art.neighbours is not None and (problem := check_neighbours(art.neighbours, n_items)):
        return problem
    return _check_index(art, k)


def check_neighbours(neighbours: Any, n_items: int) -> str | None:
    """CSR arrays that index only item rows, with finite weights: a bad file must not crash
    (or poison) a request later. `neighbours`: models.itemitem.Neighbours."""
    indptr, indices, data = neighbours.indptr, neighbours.indices, neighbours.data
    if (indptr.shape != (n_items + 1,) or indptr[0] != 0 or indptr[-1] != indices.size
            or data.shape != indices.shape or np.any(np.diff(indptr) < 0)):
        return f"neighbours.*.npy: the item-item rows do not match the {n_items:,} items"
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= n_items):
        return "neighbours.indices.npy: names items outside the model"
    if not _finite(data):
        return "neighbours.data.npy: NaN or infinite weights"
    return None


def _finite(a: np.ndarray) -> bool:
    return all(np.isfinite(a[i:i + _CHUNK_ROWS]).all() for i in range(0, max(len(a), 1), _CHUNK_ROWS))


def _check_index(art: ModelArtifact, k: int) -> str | None:
    """The index answers item rows of these factors: its dimension and size, its ids, and (for
    an exact index) its vectors, sampled, equal to the factors' rows."""
    import faiss

    index, n_items = art.index, len(art.items.ids)
    indexed = art.manifest.get("index", {}).get("head_items") or n_items
    if index.d != k or index.ntotal != indexed:
        return (f"index.faiss: {index.ntotal:,} vectors of dimension {index.d} for {indexed:,} of "
                f"{n_items:,} items of dimension {k}: item counts disagree between files")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        return "index.faiss: not an inner-product index"
    ids = None
    inner = index
    if isinstance(index, faiss.IndexIDMap):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        inner = faiss.downcast_index(index.index)
        if ids.size and (ids.min() < 0 or ids.max() >= n_items or np.unique(ids).size != ids.size):
            return "index.faiss: its ids are not distinct item rows"
    if isinstance(inner, faiss.IndexFlat) and inner.ntotal:
        vectors = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * k).reshape(inner.ntotal, k)
        rows = np.linspace(0, inner.ntotal - 1, min(_SAMPLE, inner.ntotal)).astype(np.int64)
        items = ids[rows] if ids is not None else rows
        if not _finite(vectors) or not np.allclose(vectors[rows], art.item_factors[items], atol=1e-5):
            return "index.faiss: its vectors are not the item factors (built from another model?)"
    elif index.ntotal:  # an IVF: its lists are approximations; search a sample of items instead
        rows = np.linspace(0, n_items - 1, min(8, n_items)).astype(np.int64)
        _, found = index.search(np.ascontiguousarray(art.item_factors[rows]), 1)
        if (found >= n_items).any() or (found < -1).any():
            return "index.faiss: answers rows that are not items"
    return None

"""The model the server serves: a loaded artifact plus the lookups the hot path needs, and the
watcher that swaps in a newly published version without a restart.

A request takes a reference to one `ServingModel` at its start and uses only that, so a swap
never changes the model under an in-flight request; the old one is freed when the last such
request finishes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from models import artifact
from models.foldin import FoldIn

log = logging.getLogger("vitrine.model")
# Memory for the per-category factor copies, per worker and model (100k items in 64 categories
# take 26 MB); categories that don't fit are gathered per request as before.
CATEGORY_BLOCKS_MAX_BYTES = 64 << 20


@dataclass
class ServingModel:
    art: artifact.ModelArtifact
    item_category: np.ndarray  # int32 category code per item, -1 when unknown
    categories: list[str]
    category_code: dict[str, int]
    available: np.ndarray  # bool: in stock
    consumable: np.ndarray  # bool
    popular: np.ndarray  # item indices, most popular first
    popular_in: dict[int, np.ndarray]  # category code -> item indices, most popular first
    user_norm_mean: float
    weights: dict[str, float]
    # Plain ndarray views of the memory-mapped factors: indexing an np.memmap builds memmap
    # objects (~1 µs each), and the hot path indexes them several times per request.
    item_factors: np.ndarray
    user_factors: np.ndarray
    foldin: FoldIn
    # All False between uses. The blend marks excluded items in it and clears them again
    # within one synchronous call, so requests on the event loop never see each other's marks.
    scratch: np.ndarray
    # An exact-scan index (flat, or a norm head) as plain arrays: the vectors transposed
    # (k, n) and the item row of each column. None for an IVF index.
    scan_vectors: np.ndarray | None = None
    scan_items: np.ndarray | None = None
    index_size: int = 0  # items the index answers: art.index.ntotal, read once (a SWIG call)
    # Per category, a contiguous transposed copy of its items' factors, made on first use: a
    # category page would otherwise gather the same thousands of rows (~1 MB) on every request.
    category_blocks: dict[int, np.ndarray] = field(default_factory=dict)
    category_block_bytes: int = 0
    # Answers that depend on the model alone (similar items), keyed by their inputs.
    memo: dict = field(default_factory=dict)
    # Live sessions' folded-in vectors, reused for the placements of one page view (blend).
    session_memo: dict = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return self.art.version

    def category_scores(self, code: int, pool: np.ndarray, vec: np.ndarray) -> np.ndarray:
        """Inner products of `vec` with the items of category `code` (`pool`, in that order)."""
        block = self.category_blocks.get(code)
        if block is None:
            block = np.ascontiguousarray(self.item_factors[pool].T)
            if self.category_block_bytes + block.nbytes <= CATEGORY_BLOCKS_MAX_BYTES:
                self.category_blocks[code] = block
                self.category_block_bytes += block.nbytes
        return vec @ block

    def search(self, vec: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, item indices) of the index's top `n` for one float32 query vector, best
        first; an IVF pads a short answer with -1.

        An exact scan is one BLAS matrix-vector product and a partial sort: for one query
        that is 2-4× faster than faiss's flat search, which scores item by item into a heap.
        An IVF is searched through the C++ call directly: faiss's Python wrapper re-checks
        and re-allocates per call (~12 µs, on every recommendation)."""
        if self.scan_vectors is not None:
            scores = vec @ self.scan_vectors
            if n < scores.size:  # ndarray methods: numpy's function wrappers cost ~1 µs a call
                top = scores.argpartition(scores.size - n)[scores.size - n:]
                top = top[(-scores[top]).argsort(kind="stable")]
            else:
                top = (-scores).argsort(kind="stable")
            return scores[top], self.scan_items[top]
        scores = np.empty(n, dtype=np.float32)
        items = np.empty(n, dtype=np.int64)
        query = np.ascontiguousarray(vec, dtype=np.float32)
        self.art.index.search_c(1, faiss.swig_ptr(query), n, faiss.swig_ptr(scores), faiss.swig_ptr(items))
        return scores, items

    @classmethod
    def from_artifact(cls, art: artifact.ModelArtifact) -> ServingModel:
        categories = sorted({c for c in art.items.category if c is not None})
        code = {c: i for i, c in enumerate(categories)}
        item_category = np.array([code.get(c, -1) if c is not None else -1 for c in art.items.category],
                                 dtype=np.int32)
        popular = np.argsort(-art.popularity, kind="stable").astype(np.int64)
        cat_of_popular = item_category[popular]
        popular_in = {c: popular[cat_of_popular == c] for c in range(len(categories))}
        index_info = art.manifest.get("index", {})
        if index_info.get("nprobe"):
            faiss.extract_index_ivf(art.index).nprobe = int(index_info["nprobe"])
        norms = np.linalg.norm(art.user_factors[: 10_000], axis=1) if art.user_factors.shape[0] else [1.0]
        scan_vectors, scan_items = _scan_arrays(art.index)
        return cls(
            art=art, item_category=item_category, categories=categories, category_code=code,
            available=art.items.in_stock, consumable=art.items.consumable, popular=popular,
            popular_in=popular_in, user_norm_mean=float(np.mean(norms)) or 1.0,
            weights=dict(art.event_weights), item_factors=np.asarray(art.item_factors),
            user_factors=np.asarray(art.user_factors),
            foldin=FoldIn(np.asarray(art.item_factors), art.gram,
                          regularization=art.params["regularization"], alpha=art.params["alpha"]),
            scratch=np.zeros(len(art.items.ids), dtype=bool),
            scan_vectors=scan_vectors, scan_items=scan_items, index_size=int(art.index.ntotal))


def _scan_arrays(index: faiss.Index) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(vectors (k, n), item rows (n,)) of a flat inner-product index, optionally id-mapped;
    (None, None) for any other kind."""
    ids = None
    if isinstance(index, faiss.IndexIDMap):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        index = faiss.downcast_index(index.index)
    if not isinstance(index, faiss.IndexFlat) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        return None, None
    vectors = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
    if ids is None:
        ids = np.arange(index.ntotal, dtype=np.int64)
    return np.ascontiguousarray(vectors.T), ids


class ModelHolder:
    """Holds the current ServingModel; `watch()` polls the store's CURRENT pointer."""

    def __init__(self, store: Path):
        self.store = Path(store)
        self.model: ServingModel | None = None
        self.last_error: str | None = None
        self.reloads = 0

    def load_current(self) -> ServingModel | None:
        """Load the version CURRENT names if it isn't the one served. Keeps serving the old
        model (and records the error) if the new one is missing or corrupt."""
        version = artifact.current_version(self.store)
        if version is None:
            self.last_error = f"no published model in {self.store}"
            return self.model
        if self.model is not None and self.model.version == version:
            return self.model
        try:
            model = ServingModel.from_artifact(artifact.load(self.store / version))
        except artifact.ArtifactError as exc:
            self.last_error = str(exc)
            log.error("model reload failed, still serving %s: %s",
                      self.model.version if self.model else "nothing", exc)
            return self.model
        self.model, self.last_error = model, None
        self.reloads += 1
        log.info("serving model %s", version)
        return model

    async def reload(self) -> ServingModel | None:
        # Loading maps files and builds lookups: off the event loop.
        before = self.model
        model = await asyncio.to_thread(self.load_current)
        if model is not before:
            # The model's lookups are hundreds of thousands of long-lived objects (id strings in
            # dicts and lists) that every full collection would traverse again: a pause of
            # tens of ms in the middle of requests. Frozen, the collector skips them; they are
            # still freed by reference counting when the next swap drops the last reference.
            gc.collect()
            gc.freeze()
        return model

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                if artifact.current_version(self.store) != (self.model.version if self.model else None):
                    await self.reload()
            except Exception:  # a flaky volume must not stop the watcher for good: log, retry
                log.exception("checking %s for a new model failed; will retry", self.store)

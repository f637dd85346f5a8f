"""The model the server serves: a loaded artifact and the arrays the hot path derives from it,
built once per version and never changed afterwards (memos and scratch space live in
`caches.py`, with their own invalidation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import faiss
import numpy as np

from models import artifact
from models.coded import CodedStrings
from models.foldin import FoldIn
from models.itemitem import Neighbours
from models.ranking import SessionBlend


@dataclass(frozen=True, eq=False)
class ServingModel:
    art: artifact.ModelArtifact
    item_category: np.ndarray  # int32 category code per item, -1 when unknown
    categories: list[str]
    category_code: dict[str, int]
    available: np.ndarray  # bool: in stock
    consumable: np.ndarray  # bool
    popular: np.ndarray  # item indices, most popular first
    popular_in: dict[int, np.ndarray]  # category code -> item indices, most popular first
    weights: dict[str, float]
    # Plain ndarray views of the memory-mapped factors: indexing an np.memmap builds memmap
    # objects (~1 µs each), and the hot path indexes them several times per request.
    item_factors: np.ndarray
    user_factors: np.ndarray
    item_norms: np.ndarray  # float32 per item: filtered retrieval scans the largest first
    foldin: FoldIn
    # An exact-scan index (flat, or a norm head) as plain arrays: the vectors transposed
    # (k, n) and the item row of each column. None for an IVF index.
    scan_vectors: np.ndarray | None = None
    scan_items: np.ndarray | None = None
    index_size: int = 0  # items the index answers: art.index.ntotal, read once (a SWIG call)
    # How the trainer ranks sessions (models/ranking.py, the manifest's `serving`): the fold-in
    # blended with the item-item neighbours and a popularity prior, over the most recent
    # `session_items` events. `blended` is False for the fold-in alone (older formats, `--search
    # off`): the ladder then ranks the index's candidates as they come.
    blend: SessionBlend = field(default_factory=SessionBlend)
    neighbours: Neighbours | None = None
    saturation: float = 1.0  # models.itemitem.item_values of the neighbours' input
    session_items: int = 50
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return self.art.version

    @property
    def n_items(self) -> int:
        return len(self.art.items.ids)

    @property
    def blended(self) -> bool:
        b = self.blend
        return self.neighbours is not None or b.prior_c > 0 or b.popularity_exponent != 0

    @property
    def similar_blend(self) -> SessionBlend:
        """The blend for "similar to these items": the same models, no popularity prior (a
        product page shows what goes with the product, not the store's best sellers)."""
        b = self.blend
        return SessionBlend(foldin_weight=b.foldin_weight if self.neighbours is not None else 1.0,
                            popularity_exponent=b.popularity_exponent)

    def is_known_item(self, item_id: str) -> bool:
        return item_id in self.art.item_index

    def is_known_category(self, category: str) -> bool:
        return category in self.category_code

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
        coded = art.items.category
        if not isinstance(coded, CodedStrings):  # an artifact built in memory, not loaded
            coded = CodedStrings.of(coded)
        categories, item_category = list(coded.names), coded.codes
        code = {c: i for i, c in enumerate(categories)}
        popular = np.argsort(-art.popularity, kind="stable").astype(np.int64)
        cat_of_popular = item_category[popular]
        popular_in = {c: popular[cat_of_popular == c] for c in range(len(categories))}
        index_info = art.manifest.get("index", {})
        if index_info.get("nprobe"):
            faiss.extract_index_ivf(art.index).nprobe = int(index_info["nprobe"])
        scan_vectors, scan_items = _scan_arrays(art.index)
        return cls(
            art=art, item_category=item_category, categories=categories, category_code=code,
            available=art.items.in_stock, consumable=art.items.consumable, popular=popular,
            popular_in=popular_in, weights=dict(art.event_weights),
            item_factors=np.asarray(art.item_factors), user_factors=np.asarray(art.user_factors),
            item_norms=_norms(np.asarray(art.item_factors)),
            foldin=FoldIn(np.asarray(art.item_factors), art.gram,
                          regularization=art.params["regularization"], alpha=art.params["alpha"]),
            scan_vectors=scan_vectors, scan_items=scan_items, index_size=int(art.index.ntotal),
            blend=art.session_blend, neighbours=_plain(art.neighbours), saturation=art.item_value_saturation,
            session_items=art.session_items)


def _plain(neighbours: Neighbours | None) -> Neighbours | None:
    """Plain ndarray views of memory-mapped neighbour rows (see item_factors above)."""
    if neighbours is None:
        return None
    return Neighbours(*(np.asarray(a) for a in (neighbours.indptr, neighbours.indices, neighbours.data)))


def _norms(factors: np.ndarray) -> np.ndarray:
    out = np.empty(factors.shape[0], np.float32)
    for start in range(0, factors.shape[0], 65_536):  # bounded scratch on a 1M-item model
        block = factors[start:start + 65_536]
        out[start:start + block.shape[0]] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


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

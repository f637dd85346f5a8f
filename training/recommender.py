"""The trainer's model: ALS factors, optionally EASE's sparse neighbours, and the session blend.

`ModelSpec` says what to fit (the model search's answer, or the configured defaults);
`SessionModel` holds a fitted one and ranks sessions exactly as the server will: the fold-in
(`models.foldin`), the item-item sum (`models.itemitem`) and the blend with the popularity prior
(`models.ranking.rank_session`) are the shared functions, only the candidate search differs
(FAISS's exact batched search here, the served index there; exact for catalogs ≤ 50k items).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import faiss
import numpy as np
import scipy.sparse as sp

from models.foldin import FoldIn, gram_matrix
from models.itemitem import Neighbours, session_items, session_scores
from models.ranking import SessionBlend, rank_session
from training.config import TrainConfig
from training.ease import fit_ease
from training.popularity import item_popularity

Fit = Callable[[sp.csr_matrix, TrainConfig], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ModelSpec:
    factors: int
    regularization: float
    alpha: float
    iterations: int
    ease_lambda: float | None = None  # EASE's λ; None: no item-item model
    neighbours: int = 200
    saturation: float = 1.0  # models.itemitem.item_values: the smallest positive event weight
    blend: SessionBlend = field(default_factory=SessionBlend)

    @classmethod
    def from_config(cls, config: TrainConfig) -> ModelSpec:
        """The configured ALS alone, served by the fold-in alone (the search's `off`)."""
        return cls(factors=config.factors, regularization=config.regularization, alpha=config.alpha,
                   iterations=config.iterations, neighbours=config.itemitem_neighbours,
                   saturation=saturation_of(config.event_weights))

    @property
    def family(self) -> str:
        """What ranks sessions: "als", "ease" or "als+ease" (a blend)."""
        if self.ease_lambda is None or self.blend.foldin_weight >= 1:
            return "als"
        return "ease" if self.blend.foldin_weight <= 0 else "als+ease"

    def als_config(self, config: TrainConfig) -> TrainConfig:
        return replace(config, factors=self.factors, regularization=self.regularization,
                       alpha=self.alpha, iterations=self.iterations)

    def describe(self) -> dict:
        """The manifest's `model`: the family and each part's parameters."""
        out: dict = {"family": self.family,
                     "als": {"factors": self.factors, "regularization": self.regularization,
                             "alpha": self.alpha, "iterations": self.iterations}}
        if self.ease_lambda is not None and self.blend.foldin_weight < 1:
            out["itemitem"] = {"kind": "ease", "lambda": self.ease_lambda, "neighbours": self.neighbours,
                               "saturation": self.saturation}
        return out


def saturation_of(event_weights: dict[str, float]) -> float:
    """The smallest positive event weight: an undecayed event of any kind then has value 1."""
    positive = [w for w in event_weights.values() if w > 0]
    return min(positive) if positive else 1.0


@dataclass
class SessionModel:
    item_factors: np.ndarray
    gram: np.ndarray
    foldin: FoldIn
    popularity: np.ndarray  # float32 per item: distinct users with a positive
    blend: SessionBlend
    neighbours: Neighbours | None = None
    saturation: float = 1.0
    popular: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.popular = np.argsort(-self.popularity, kind="stable").astype(np.int64)

    def with_blend(self, blend: SessionBlend) -> SessionModel:
        return replace(self, blend=blend)

    def prepare(self, items: list[np.ndarray], weights: list[np.ndarray], exclude: list[np.ndarray],
                top: int) -> Prepared:
        """The parts of ranking these sessions that no blend changes: the fold-ins, their exact
        ALS candidates, the item-item sums."""
        depth = min(self.item_factors.shape[0], top + max((len(e) for e in exclude), default=0))
        queries = np.stack([self.foldin(i, w) for i, w in zip(items, weights, strict=True)])
        _, found = faiss.knn(queries, self.item_factors, depth, metric=faiss.METRIC_INNER_PRODUCT)
        sessions = [session_items(i, w, self.saturation) for i, w in zip(items, weights, strict=True)]
        itemitem = [session_scores(self.neighbours, *s) if self.neighbours else None for s in sessions]
        return Prepared(queries, found, [s[0].size for s in sessions], itemitem, exclude, top, depth)

    def rank(self, items: list[np.ndarray], weights: list[np.ndarray], exclude: list[np.ndarray],
             top: int) -> np.ndarray:
        """The best `top` items per session (rows padded with -1), without its `exclude` items."""
        return self.rank_prepared(self.prepare(items, weights, exclude, top))

    def rank_prepared(self, prepared: Prepared, blend: SessionBlend | None = None) -> np.ndarray:
        """`rank` from prepared sessions, with this model's blend or another one."""
        blend = blend or self.blend
        out = np.full((prepared.found.shape[0], prepared.top), -1, dtype=np.int64)
        for row, query in enumerate(prepared.queries):
            ranked, _ = rank_session(
                blend, prepared.n_items[row], popularity=self.popularity, popular=self.popular,
                depth=prepared.depth, foldin_candidates=prepared.found[row],
                foldin_scores=lambda rows, q=query: self.item_factors[rows] @ q,
                itemitem=prepared.itemitem[row])
            ranked = ranked[~np.isin(ranked, prepared.exclude[row])][:prepared.top]
            out[row, :ranked.size] = ranked
        return out


@dataclass
class Prepared:
    queries: np.ndarray  # folded-in vectors, one per session
    found: np.ndarray  # their exact top `depth` items by inner product
    n_items: list[int]  # distinct items per session
    itemitem: list[tuple[np.ndarray, np.ndarray] | None]
    exclude: list[np.ndarray]
    top: int
    depth: int


def fit_session_model(train: sp.csr_matrix, config: TrainConfig, spec: ModelSpec, fit: Fit | None,
                      factors: tuple | None = None) -> tuple[SessionModel, np.ndarray | None]:
    """Fit `spec` on `train` (or take already fitted ALS `factors`); returns the model and the
    training users' ALS factors."""
    user_factors, item_factors = factors or fit(train, spec.als_config(config))
    gram = gram_matrix(item_factors)
    neighbours = None
    if spec.ease_lambda is not None and spec.blend.foldin_weight < 1:
        neighbours = fit_ease(train, lam=spec.ease_lambda, neighbours=spec.neighbours,
                              saturation=spec.saturation)
    model = SessionModel(
        item_factors=item_factors, gram=gram,
        foldin=FoldIn(item_factors, gram, regularization=spec.regularization, alpha=spec.alpha),
        popularity=item_popularity(train), blend=spec.blend, neighbours=neighbours,
        saturation=spec.saturation)
    return model, user_factors


def session_model_of(art) -> SessionModel:
    """A published model (models.artifact.ModelArtifact) as the server ranks sessions with it:
    its fold-in parameters, blend, neighbours and popularity, from the manifest."""
    params = art.params
    factors = np.asarray(art.item_factors)
    return SessionModel(
        item_factors=factors, gram=np.asarray(art.gram),
        foldin=FoldIn(factors, art.gram, regularization=params["regularization"], alpha=params["alpha"]),
        popularity=np.asarray(art.popularity, dtype=np.float32), blend=art.session_blend,
        neighbours=art.neighbours, saturation=art.item_value_saturation)

"""The model search's validation folds and its session stages: the blend of the fold-in with
the item-item model, the popularity prior, and how many recent items are worth folding in.

Each stage ranks a fold's validation sessions with the stage winners' models; the parts of a
ranking no blend changes (fold-ins, candidates, item-item sums) are computed once per fold and
reused for every blend tried (`SessionModel.prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from models.ranking import SessionBlend
from training.evaluate import TOP, popularity_metrics, ranking_metrics, score_cases
from training.recommender import SessionModel
from training.sessions import Cases

PRIOR_LENGTHS = (1, 2, 3, 5)
SESSION_CAPS = (10, 20, 50, 100, 200)
CAP_TOLERANCE = 0.002  # a longer session must gain more than this objective to be worth its cost


def objective(metrics: dict[str, float]) -> float:
    """What the search maximises: the mean of Recall@20 and NDCG@100."""
    return 0.5 * (metrics["recall@20"] + metrics["ndcg@100"])


@dataclass
class Fold:
    train: sp.csr_matrix
    cases: Cases
    models: dict = field(default_factory=dict)  # the stage winners' fitted SessionModels


def validation_score(folds: list[Fold], key: str) -> float:
    """Mean objective over the folds of each fold's model `key` on its validation users."""
    return float(np.mean([objective(score_cases(f.models[key], f.cases)) for f in folds]))


def _final_model(fold: Fold) -> SessionModel:
    return fold.models["ease_best"] if "ease_best" in fold.models else fold.models["als_best"]


def _blend_scores(folds: list[Fold], blends: list[SessionBlend], view=None) -> list[list[dict]]:
    """Metrics of each blend (outer list) on each fold (inner list), the sessions prepared once
    per fold: only the blend changes between them. `view` narrows the sessions (e.g. first n)."""
    out: list[list[dict]] = [[] for _ in blends]
    for fold in folds:
        model = _final_model(fold)
        cases = view(fold.cases) if view else fold.cases
        prepared = model.prepare(cases.items, cases.weights, cases.items, TOP)
        for i, blend in enumerate(blends):
            top = model.rank_prepared(prepared, blend)
            out[i].append(ranking_metrics(top, cases.targets, model.item_factors.shape[0]))
    return out


def _mean(metrics: list[dict], key: str | None = None) -> float:
    return float(np.mean([objective(m) if key is None else m[key] for m in metrics]))


def search_blend(folds: list[Fold], betas: tuple[float, ...],
                 exponents: tuple[float, ...]) -> tuple[SessionBlend, float, list[dict]]:
    """β (the fold-in's share) × γ (the popularity debias) on the stage winners, chosen by the
    grid-smoothed score: each point's mean with its grid neighbours. On ml-latest-small the
    validation's noise (±0.005 over ~350 users) exceeds the differences across the plateau, and
    a lone peak at its edge (β 0.75, γ 0.2) measured 0.01 worse on other held-out users than the
    plateau's middle (β 0.25-0.5, γ 0.1-0.2)."""
    grid = [[SessionBlend(foldin_weight=float(b), popularity_exponent=float(g)) for g in exponents]
            for b in betas]
    flat = [blend for row in grid for blend in row]
    raw = np.array([_mean(m) for m in _blend_scores(folds, flat)]).reshape(len(betas), len(exponents))
    smoothed = np.empty_like(raw)
    for i, j in np.ndindex(raw.shape):
        near = [(i + di, j + dj) for di, dj in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
                if 0 <= i + di < raw.shape[0] and 0 <= j + dj < raw.shape[1]]
        smoothed[i, j] = np.mean([raw[p] for p in near])
    i, j = np.unravel_index(int(np.argmax(smoothed)), raw.shape)
    tried = [{**grid[a][b].as_dict(), "score": round(float(raw[a, b]), 5),
              "smoothed": round(float(smoothed[a, b]), 5)} for a, b in np.ndindex(raw.shape)]
    return grid[i][j], float(raw[i, j]), tried


def search_prior(folds: list[Fold], blend: SessionBlend, cs: tuple[float, ...],
                 powers: tuple[float, ...]) -> tuple[SessionBlend, list[dict], dict]:
    """c and p: the best mean objective over short sessions (their first n items, the same targets)
    and whole ones, among the c whose 1- and 2-item sessions reach popularity's Recall@20 on
    the same validation targets (the largest c tried if none does)."""
    blends = [replace(blend, prior_c=float(c), prior_power=float(p))
              for p in powers for c in cs]
    lengths = [*PRIOR_LENGTHS, None]
    by_length, popularity = [], {}
    for n in lengths:
        view = (lambda cases, n=n: cases.first(n)) if n else None
        by_length.append(_blend_scores(folds, blends, view))
        if n:
            popularity[str(n)] = float(np.mean([popularity_metrics(_final_model(f).popularity,
                                                                  f.cases.first(n))["recall@20"]
                                                for f in folds]))
    tried = []
    for i, b in enumerate(blends):
        per_length = [_mean(scores[i]) for scores in by_length]
        recall = {str(n): _mean(scores[i], "recall@20")
                  for n, scores in zip(lengths, by_length, strict=True) if n}
        tried.append({"prior_c": b.prior_c, "prior_power": b.prior_power,
                      "score": round(float(np.mean(per_length)), 5),
                      "objective_by_length": dict(zip([*map(str, PRIOR_LENGTHS), "all"],
                                                      [round(x, 5) for x in per_length], strict=True)),
                      "recall@20_by_length": {k: round(v, 5) for k, v in recall.items()},
                      "reaches_popularity": all(recall[k] >= popularity[k] for k in ("1", "2"))})
    allowed = [t for t in tried if t["reaches_popularity"]] or [max(tried, key=lambda t: t["prior_c"])]
    best = max(allowed, key=lambda t: t["score"])
    return (replace(blend, prior_c=best["prior_c"], prior_power=best["prior_power"]), tried,
            {k: round(v, 5) for k, v in popularity.items()})


def search_session_items(folds: list[Fold], blend: SessionBlend) -> tuple[int, dict]:
    """The fewest most-recent items whose objective is within CAP_TOLERANCE of the best cap."""
    if folds[0].cases.recency is None:
        return SESSION_CAPS[2], {}
    curve = {n: _mean(_blend_scores(folds, [blend], lambda cases, n=n: cases.most_recent(n))[0])
             for n in SESSION_CAPS}
    best = max(curve.values())
    chosen = min(n for n, s in curve.items() if s >= best - CAP_TOLERANCE)
    return chosen, {str(n): round(s, 5) for n, s in curve.items()}

"""Model selection on validation users: the trainer chooses its model for the store's own data.

Only users no evaluation seed holds out take part (`training.evaluate.evaluation_users`), so the
reported metrics stay honest. At scale the search runs on a random sample of those users of at
most `TrainConfig.search_max_interactions` user-item pairs, with the catalog narrowed to the
items they touched. Their eligible users are split into folds; each fold's validation users are
absent from that fold's fits and scored by strong generalization (80% of their positives folded
in, Recall@20 and NDCG@100 on the rest), ranked by the functions the server uses. Stages:

1. ALS: random (factors, regularization, alpha) candidates, today's configuration among them,
   by successive halving over iterations (implicit resumes a fit, so survivors are extended).
2. EASE (catalogs ≤ `itemitem_max_items`): λ on a grid, then refined. λ is a ridge prior and is
   not scaled with the number of users: the search's folds fit fewer users than the published
   model, and scaling λ with them chose λ 780 on a small pool of ml-latest-small, 0.007 below
   λ 200 on the reported users.
3. The session blend: the fold-in's weight against EASE's, and the popularity debias.
4. The popularity prior's c, scored over short sessions (1, 2, 3, 5 items) and whole ones.
5. How many of a session's most recent items are worth folding in (`serving.session_items`).

Cost (quick): 9·5 + 3·10 + 1·15 ALS sweeps per fold, 6 EASE fits per fold, and ~40 rankings of
the validation sessions (~100 s on ml-latest-small and on the synthetic store on this shared
2-core VM). At scale (catalogs above `exact_index_max_items`): a sample of at most 50,000 pairs,
one fold of 500 validation users, 6 candidates (6·5 + 2·10 sweeps on the sample's ~50k rows,
~0.15 s each by the full fit's 4.5 s per sweep over 1.3M rows), no EASE, factors and sweeps
capped at the configured ones so the published fit costs what it did: about 15-20 s, a quarter
of the 68 s fit in benchmarks/results/train_scale.md (expected, not measured here).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from models.ranking import SessionBlend
from training.als import ResumableALS
from training.config import TrainConfig
from training.eventlog import EventLog
from training.recommender import ModelSpec, fit_session_model
from training.search_sessions import (
    CAP_TOLERANCE,
    Fold,
    search_blend,
    search_prior,
    search_session_items,
    validation_score,
)
from training.sessions import last_event_ms, split_cases

VALIDATION_USERS = 1_000  # enough for the means; more folds until about this many are scored
MIN_VALIDATION_USERS = 10  # below this a fold's score is noise: the configured model is kept
SCALE_VALIDATION_USERS = 250  # at scale: one fold of at most this many (each ranks the catalog)


@dataclass(frozen=True)
class Budget:
    als_candidates: int
    rungs: tuple[int, ...]  # cumulative ALS sweeps at which candidates are scored
    eta: int  # the best 1/eta go on at each rung
    folds: int
    lambdas: tuple[float, ...]  # EASE's λ grid
    refinements: int  # λ steps halving the grid's spacing around the best
    blend_weights: tuple[float, ...]  # β, the fold-in's share of the blend
    exponents: tuple[float, ...]  # γ, the popularity debias
    prior_cs: tuple[float, ...]
    prior_powers: tuple[float, ...] = (1.0, 2.0)


BUDGETS = {
    "quick": Budget(9, (5, 15, 30), 3, 3, (12.5, 50.0, 200.0, 800.0), 1, (0.0, 0.25, 0.5, 0.75, 1.0),
                    (0.0, 0.1, 0.2, 0.3), (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)),
    "full": Budget(27, (5, 10, 20, 40), 3, 5, (10.0, 25.0, 60.0, 150.0, 400.0, 1000.0), 2,
                   tuple(np.round(np.linspace(0, 1, 11), 2)), (0.0, 0.05, 0.1, 0.15, 0.2, 0.3),
                   (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0)),
}


class TooLittleData(ValueError):
    """Too few users with enough positives for validation folds: the configured model is used."""


@dataclass
class SearchResult:
    spec: ModelSpec
    session_items: int
    record: dict  # the manifest's `search`


def _sample(matrix: sp.csr_matrix, users: np.ndarray, max_pairs: int, rng: np.random.Generator,
            log: EventLog | None) -> tuple[sp.csr_matrix, np.ndarray | None, np.ndarray, np.ndarray]:
    """A random subset of `users` with at most `max_pairs` positives, narrowed to the items
    they touched: (matrix, its entries' last event times from `log`, user rows, item columns)."""
    users = rng.permutation(users)
    counts = np.diff(matrix.indptr)[users]
    users = np.sort(users[np.cumsum(counts) <= max_pairs] if counts.sum() > max_pairs else users)
    rows = matrix[users]
    rows.sort_indices()
    last = last_event_ms(log, rows, users) if log is not None else None
    # Narrow the columns of a matrix of entry positions, so weights and times follow the same
    # entries (column slicing may reorder them).
    positions = sp.csr_matrix((np.arange(1, rows.nnz + 1, dtype=np.float64), rows.indices, rows.indptr),
                              shape=rows.shape)
    items = np.flatnonzero(np.diff(positions.tocsc().indptr))
    positions = positions[:, items].tocsr()
    positions.sort_indices()
    entry = positions.data.astype(np.int64) - 1
    sample = sp.csr_matrix((rows.data[entry], positions.indices, positions.indptr), shape=positions.shape)
    return sample, (last[entry] if last is not None else None), users, items


def _folds(sample: sp.csr_matrix, config: TrainConfig, budget: Budget, rng: np.random.Generator,
           last_ms: np.ndarray | None, max_users: int) -> list[Fold]:
    """Disjoint validation groups of eligible users, as many folds as it takes to score about
    `max_users` users (at most the budget's)."""
    eligible = rng.permutation(np.flatnonzero(np.diff(sample.indptr) >= config.eval_min_positives))
    groups = [eligible[k::budget.folds][:max_users] for k in range(budget.folds)]
    n_folds = min(budget.folds, max(1, math.ceil(max_users / max(groups[0].size, 1))))
    folds = []
    for group in groups[:n_folds]:
        if group.size == 0:
            continue
        keep = np.ones(sample.shape[0], dtype=bool)
        keep[group] = False
        cases = split_cases(sample, np.sort(group), config.eval_fold_in, rng, last_ms)
        folds.append(Fold(sample[np.flatnonzero(keep)], cases))
    if len(folds) == 0 or min(f.cases.users.size for f in folds) < MIN_VALIDATION_USERS:
        raise TooLittleData(f"fewer than {MIN_VALIDATION_USERS} users with {config.eval_min_positives}+ "
                            "positives per validation fold")
    return folds


def _als_candidates(config: TrainConfig, budget: Budget, at_scale: bool,
                    rng: np.random.Generator) -> list[dict]:
    """Today's configuration first, then a Latin hypercube over log(regularization) × log(alpha)."""
    factors = [32, 64, 128] + ([256] if len(budget.rungs) > 3 else [])
    if at_scale:  # the final fit must cost no more than the configured one
        factors = [f for f in factors if f <= config.factors] or [config.factors]
    n = budget.als_candidates - 1
    strata = [(rng.permutation(n) + rng.random(n)) / n for _ in range(2)]
    out = [{"factors": config.factors, "regularization": config.regularization, "alpha": config.alpha}]
    for i in range(n):
        out.append({"factors": int(factors[i % len(factors)]),
                    "regularization": float(round(10 ** (-2 + 3.5 * strata[0][i]), 4)),  # 0.01..30
                    "alpha": float(round(10 ** (-1.3 + 2.3 * strata[1][i]), 4))})  # 0.05..10
    return out


def _search_als(folds: list[Fold], config: TrainConfig, budget: Budget, at_scale: bool,
                rng: np.random.Generator) -> tuple[dict, list[dict], float]:
    """Successive halving; returns the winner (its params and iterations), every candidate, and
    today's configuration's score at its configured sweeps (candidate 0, extended if pruned).

    The first rung only screens: the winner is the best (candidate, sweeps) from the second rung
    on. A few sweeps of a lightly regularized candidate can score well on sessions and still be
    an unconverged model for the other uses of the factors (retrieval, known users' vectors):
    on the synthetic store the first rung's best was 5 sweeps at regularization 0.02."""
    rungs = budget.rungs
    if at_scale:  # never more sweeps than the configured fit: it is the published one's cost
        rungs = tuple(sorted({r for r in rungs if r < config.iterations} | {config.iterations}))
    final_from = rungs[1] if len(rungs) > 1 else rungs[0]
    candidates = _als_candidates(config, budget, at_scale, rng)
    for c in candidates:
        c["scores"] = {}
        params = {k: c[k] for k in ("factors", "regularization", "alpha")}
        c["fits"] = [ResumableALS(replace(config, **params)) for _ in folds]
    best = None

    def evaluate(c: dict, iterations: int) -> float:
        nonlocal best
        spec = replace(ModelSpec.from_config(config), factors=c["factors"], iterations=iterations,
                       regularization=c["regularization"], alpha=c["alpha"])
        for fold, fit in zip(folds, c["fits"], strict=True):
            factors = fit.fit_to(fold.train, iterations)
            fold.models["als"] = fit_session_model(fold.train, config, spec, None, factors)[0]
        score = validation_score(folds, "als")
        c["scores"][str(iterations)] = round(score, 5)
        if iterations >= final_from and (best is None or score > best[0]):
            best = (score, spec)
            for fold in folds:
                fold.models["als_best"] = fold.models["als"]
        return score

    alive = list(candidates)
    for r, iterations in enumerate(rungs):
        for c in alive:
            evaluate(c, iterations)
        if r + 1 < len(rungs):
            ranked = sorted(alive, key=lambda c, it=str(iterations): -c["scores"][it])
            alive = ranked[:math.ceil(len(alive) / budget.eta)]
    defaults = candidates[0]  # today's configuration: the report's baseline at its own sweeps
    if str(config.iterations) not in defaults["scores"]:
        if defaults["fits"][0].iterations > config.iterations:  # went past them: start again
            defaults["fits"] = [ResumableALS(config) for _ in folds]
        evaluate(defaults, config.iterations)
    defaults_score = defaults["scores"][str(config.iterations)]
    for c in candidates:
        del c["fits"]
    return {"spec": best[1], "score": best[0]}, candidates, defaults_score


def _fit_ease(folds: list[Fold], config: TrainConfig, spec: ModelSpec, lam: float, key: str) -> None:
    """Each fold's "als_best" with EASE neighbours at this λ, served by the item-item sum alone."""
    for fold in folds:
        ease_spec = replace(spec, ease_lambda=lam, blend=SessionBlend(foldin_weight=0.0))
        base = fold.models["als_best"]
        fold.models[key] = fit_session_model(
            fold.train, config, ease_spec, None, (None, base.item_factors))[0]


def _search_ease(folds: list[Fold], config: TrainConfig, budget: Budget,
                 spec: ModelSpec) -> tuple[dict, list[dict]]:
    """λ on the grid, then `refinements` steps around the best (the grid's
    ratio halved in log scale each time)."""
    tried: dict[float, float] = {}

    def trial(lam: float) -> float:
        lam = float(round(lam, 3))
        if lam not in tried:
            _fit_ease(folds, config, spec, lam, "ease")
            tried[lam] = validation_score(folds, "ease")
            if tried[lam] >= max(tried.values()):
                for fold in folds:
                    fold.models["ease_best"] = fold.models["ease"]
        return tried[lam]

    grid = budget.lambdas
    for lam in grid:
        trial(lam)
    ratio = math.sqrt(grid[1] / grid[0]) if len(grid) > 1 else 2.0
    for _ in range(budget.refinements):
        best = max(tried, key=tried.get)
        trial(best / ratio)
        trial(best * ratio)
        ratio = math.sqrt(ratio)
    best = max(tried, key=tried.get)
    return ({"lambda": best, "score": tried[best]},
            [{"lambda": k, "score": round(v, 5)} for k, v in sorted(tried.items())])


def _family(beta: float) -> str:
    return "als" if beta >= 1 else "ease" if beta <= 0 else "als+ease"


def search_model(matrix: sp.csr_matrix, config: TrainConfig, *, exclude_users: np.ndarray,
                 log: EventLog | None = None, budget: Budget | None = None) -> SearchResult:
    """Choose the model on users outside `exclude_users` (the evaluation's held-out users).
    `log` (the matrix's events) orders sessions by recency for the session-length stage; the
    budget is `config.search`'s unless given."""
    start = time.perf_counter()
    if budget is None and config.search not in BUDGETS:
        raise ValueError(f"search must be off, {' or '.join(BUDGETS)}, not {config.search!r}")
    budget = budget or BUDGETS[config.search]
    rng = np.random.default_rng(config.random_state)
    pool = np.setdiff1d(np.arange(matrix.shape[0]), exclude_users)
    at_scale = matrix.shape[1] > config.exact_index_max_items
    max_users = VALIDATION_USERS
    if at_scale:  # one small fold and fewer candidates: the search must stay a fraction of a fit
        budget = replace(budget, folds=1, als_candidates=min(budget.als_candidates, 4))
        max_users = SCALE_VALIDATION_USERS
    sample, sample_last, users, items = _sample(matrix, pool, config.search_max_interactions, rng, log)
    folds = _folds(sample, config, budget, rng, sample_last, max_users)
    has_ease = matrix.shape[1] <= config.itemitem_max_items
    # A minute or more on a real catalog: one bar step per stage (shown on a terminal only).
    with tqdm(total=5, desc=f"model search ({config.search})", unit="stage", file=sys.stderr,
              disable=None, leave=False) as bar:
        bar.set_postfix_str("ALS")
        als, als_tried, defaults = _search_als(folds, config, budget, at_scale, rng)
        bar.update()
        bar.set_postfix_str("EASE")
        ease, ease_tried = _search_ease(folds, config, budget, als["spec"]) if has_ease else (None, [])
        bar.update()
        bar.set_postfix_str("blend")
        betas = budget.blend_weights if has_ease else (1.0,)
        blend, blend_score, blend_tried = search_blend(folds, betas, budget.exponents)
        bar.update()
        bar.set_postfix_str("popularity prior")
        blend, prior_tried, prior_popularity = search_prior(folds, blend, budget.prior_cs,
                                                            budget.prior_powers)
        bar.update()
        bar.set_postfix_str("session length")
        session_items, curve = search_session_items(folds, blend)
        bar.update()
    spec = replace(als["spec"], blend=blend,
                   ease_lambda=ease["lambda"] if ease and blend.foldin_weight < 1 else None)
    # Each family's best validation score; the winner's is the chosen blend's (smoothing may
    # have preferred it to its family's raw best).
    families: dict[str, float] = {}
    for entry in blend_tried:
        name = _family(entry["foldin_weight"])
        families[name] = max(families.get(name, -1.0), entry["score"])
    families[spec.family] = blend_score
    ranked = sorted(families.items(), key=lambda kv: (kv[0] != spec.family, -kv[1]))
    record = {
        "mode": config.search, "objective": "mean of recall@20 and ndcg@100 on validation users",
        "budget": {"als_candidates": budget.als_candidates, "rungs": list(budget.rungs), "eta": budget.eta,
                   "ease_lambdas": list(budget.lambdas),
                   "max_interactions": config.search_max_interactions},
        "validation": {"folds": len(folds), "users": int(sum(f.cases.users.size for f in folds)),
                       "sample_users": int(users.size), "sample_items": int(items.size),
                       "sample_interactions": int(sample.nnz),
                       "excluded_held_out_users": int(exclude_users.size)},
        "als": {"winner": {**_params(als["spec"]), "score": round(als["score"], 5)}, "candidates": als_tried},
        "ease": ({"winner": {k: round(v, 6) for k, v in ease.items()}, "candidates": ease_tried}
                 if ease else {"skipped": f"catalog above {config.itemitem_max_items:,} items"}),
        "blend": {"winner": blend.as_dict(), "score": round(blend_score, 5), "candidates": blend_tried},
        "prior": {"winner": {"prior_c": blend.prior_c, "prior_power": blend.prior_power},
                  "popularity_recall@20": prior_popularity, "candidates": prior_tried},
        "session_items": {"chosen": session_items, "tolerance": CAP_TOLERANCE, "curve": curve},
        "families": {k: round(v, 5) for k, v in ranked},
        "winner": {"family": spec.family, "score": round(blend_score, 5),
                   "runner_up": ranked[1][0] if len(ranked) > 1 else None,
                   "margin": round(ranked[0][1] - ranked[1][1], 5) if len(ranked) > 1 else None},
        "defaults_score": round(defaults, 5),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return SearchResult(spec=spec, session_items=session_items, record=record)


def _params(spec: ModelSpec) -> dict:
    return {"factors": spec.factors, "regularization": spec.regularization, "alpha": spec.alpha,
            "iterations": spec.iterations}

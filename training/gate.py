"""Scoring two models on one validation split: the candidate against the served model.

The split is temporal (the serving situation: predict what shoppers do next). Events before the
cutoff are the history, positives after it that are new to the shopper are the targets. Each
model ranks each shopper's history as the server would rank it with that model: its event
weights, its fold-in, its item-item neighbours, blend and popularity prior
(`training.recommender.SessionModel`, the trainer's evaluation ranking); items a model
doesn't know can't be hit. The popularity baseline over the history is scored on
the same users, so a candidate that learnt nothing (e.g. from shuffled events) is told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.config import TrainConfig
from training.evaluate import TOP, _popularity_top, ranking_metrics
from training.eventlog import EventLog
from training.interactions import confidence_matrix
from training.popularity import item_popularity
from training.recommender import SessionModel, session_model_of


@dataclass
class ValidationSplit:
    cutoff_ms: int
    users: np.ndarray  # user codes (of the log)
    targets: list[np.ndarray]  # item codes of the log, per user
    past: EventLog  # the history: events before the cutoff


@dataclass
class Scorable:
    """What a model needs to be scored: its items and how it ranks a shopper's history."""

    item_ids: list[str]
    model: SessionModel
    event_weights: dict[str, float]
    half_life_days: float | None = None

    @classmethod
    def from_artifact(cls, art) -> Scorable:
        """A published model (models.artifact.ModelArtifact), as the server ranks with it."""
        return cls(list(art.items.ids), session_model_of(art), art.event_weights,
                   art.params.get("half_life_days"))


def temporal_split(log: EventLog, config: TrainConfig, validation_share: float,
                   seed: int = 0, *, seen_until_ms: int | None = None) -> ValidationSplit:
    """The newest `validation_share` of the events (by time) as the validation period, starting
    after `seen_until_ms` (the served model's newest training event) when that is later: a
    model scored on events it learnt from would look better than it is."""
    cutoff = int(np.quantile(log.ts, 1.0 - validation_share))
    if seen_until_ms is not None:
        cutoff = max(cutoff, seen_until_ms + 1)
    past, future = log.select(log.ts < cutoff), log.select(log.ts >= cutoff)
    history = confidence_matrix(past, config.event_weights, half_life_days=config.half_life_days)
    after = confidence_matrix(future, config.event_weights)
    users, targets = [], []
    for u in np.flatnonzero(np.diff(after.indptr) > 0):
        known = history.indices[history.indptr[u]:history.indptr[u + 1]]
        new = np.setdiff1d(after.indices[after.indptr[u]:after.indptr[u + 1]], known)
        if known.size and new.size:
            users.append(u)
            targets.append(new)
    if len(users) > config.eval_max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), config.eval_max_users, replace=False))
        users, targets = [users[i] for i in pick], [targets[i] for i in pick]
    return ValidationSplit(cutoff, np.asarray(users, dtype=np.int64), targets, past)


def score(model: Scorable, split: ValidationSplit) -> dict[str, float]:
    """Recall@20/50, NDCG@100, coverage@20 of `model` on the split, and popularity's recall@20."""
    past = split.past
    n_items = past.n_items
    if split.users.size == 0:
        raise ValueError("no shopper has both history and new positives in the validation period")
    row_of = {item: r for r, item in enumerate(model.item_ids)}
    log_to_model = np.array([row_of.get(item, -1) for item in past.item_ids], dtype=np.int64)
    model_to_log = np.full(len(model.item_ids) + 1, -1, dtype=np.int64)  # the last slot maps -1
    known = log_to_model >= 0
    model_to_log[log_to_model[known]] = np.flatnonzero(known)
    history = confidence_matrix(past, model.event_weights, half_life_days=model.half_life_days)
    sessions, weights = [], []
    for u in split.users:
        start, end = history.indptr[u], history.indptr[u + 1]
        rows = log_to_model[history.indices[start:end]]
        ok = rows >= 0
        sessions.append(rows[ok])
        weights.append(history.data[start:end][ok])
    top = model.model.rank(sessions, weights, sessions, TOP)
    metrics = ranking_metrics(model_to_log[top], split.targets, n_items)
    return metrics | {"popularity_recall@20": popularity_recall(split, model.event_weights)}


def popularity_recall(split: ValidationSplit, weights: dict[str, float]) -> float:
    """Recall@20 of the most popular items in the history (each shopper's own left out)."""
    history = confidence_matrix(split.past, weights)
    seen = [history.indices[history.indptr[u]:history.indptr[u + 1]] for u in split.users]
    top = _popularity_top(item_popularity(history), seen)
    return ranking_metrics(top, split.targets, split.past.n_items)["recall@20"]

"""Churn risk as a trained model: P(no purchase in the next `window` days) per purchasing customer.

Three cutoffs, each a window apart, end at the newest event T:

    ... history ... | A = T − 2W | B = T − W | T
    train: features as of A, label = no purchase in (A, B]
    test:  features as of B, label = no purchase in (B, T]      (the held-out time split)
    serve: features as of T, the label is the future

Two candidates, gradient boosting and a logistic regression, are fitted on 75% of the customers
at A and the one with the better AUC on the other 25% is kept; it is refitted on all of A and
scored on B against the recency-only rule (more days since the last purchase = more risk),
both AUCs in the manifest. The published probabilities come from the chosen model refitted on
B (the newest labels) and applied at T.

Features are purchase statistics (models/rfm.py's, in 30/90/180/365-day windows), the rhythm
(mean gap between orders, recency over that gap, recent orders against the yearly pace) and
browsing (events and active days in the last 30 days, days since the last visit): a slipping
customer looks like a loyal one by recency alone, not by the trend of their orders and visits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from models.rfm import DAY_MS
from training.eventlog import TYPE_CODE, EventLog
from training.segments import purchase_stats

_PURCHASE = TYPE_CODE["purchase"]
WINDOWS = (30, 90, 180, 365)
FEATURES = ("recency_days", "log_recency", "tenure_days", "log_orders", "log_orders_30d",
            "log_orders_90d", "log_orders_180d", "log_orders_365d", "log_spend", "log_spend_90d",
            "mean_gap_days", "recency_over_gap", "one_order", "trend_90d", "log_events_30d",
            "log_active_days_30d", "days_since_visit")
MIN_HISTORY_DAYS = 30  # before the train cutoff
MIN_CLASS = 20  # customers of each class needed in the train and test sets


@dataclass
class ChurnResult:
    report: dict  # the manifest's section
    users: np.ndarray | None = None  # user codes scored at T
    probability: np.ndarray | None = None  # float32, aligned with users


def churn_features(log: EventLog, cutoff_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(user codes with a purchase at or before the cutoff, features (n, len(FEATURES)))."""
    s = purchase_stats(log, cutoff_ms, WINDOWS)
    recency = (cutoff_ms - s.last_ms) / DAY_MS
    tenure = (cutoff_ms - s.first_ms) / DAY_MS
    gap = np.where(s.orders > 1, (s.last_ms - s.first_ms) / DAY_MS / np.maximum(s.orders - 1, 1), tenure)
    o = {d: s.window_orders[d].astype(np.float64) for d in WINDOWS}
    # Browsing in the last 30 days and the last visit, from every event type.
    past = (log.ts <= cutoff_ms) & (log.ts > cutoff_ms - 365 * DAY_MS)
    recent = past & (log.ts > cutoff_ms - 30 * DAY_MS)
    n_users = log.n_users
    events_30 = np.bincount(log.user[recent], minlength=n_users)[s.users]
    days = np.unique(log.user[recent].astype(np.int64) * 64 + (cutoff_ms - log.ts[recent]) // DAY_MS)
    active_30 = np.bincount(days // 64, minlength=n_users)[s.users]
    last_visit = np.zeros(n_users, np.int64)
    np.maximum.at(last_visit, log.user[past], log.ts[past])
    columns = {
        "recency_days": recency, "log_recency": np.log1p(recency), "tenure_days": tenure,
        "log_orders": np.log1p(s.orders), "log_orders_30d": np.log1p(o[30]),
        "log_orders_90d": np.log1p(o[90]), "log_orders_180d": np.log1p(o[180]),
        "log_orders_365d": np.log1p(o[365]), "log_spend": np.log1p(s.spend),
        "log_spend_90d": np.log1p(s.window_spend[90]), "mean_gap_days": gap,
        "recency_over_gap": recency / np.maximum(gap, 1.0), "one_order": (s.orders == 1) * 1.0,
        "trend_90d": np.log((o[90] + 1) / (o[365] * 90 / 365 + 1)),
        "log_events_30d": np.log1p(events_30), "log_active_days_30d": np.log1p(active_30),
        "days_since_visit": (cutoff_ms - last_visit[s.users]) / DAY_MS,
    }
    return s.users, np.column_stack([columns[f] for f in FEATURES]).astype(np.float32)


def churned(log: EventLog, users: np.ndarray, cutoff_ms: int, window_days: int) -> np.ndarray:
    """True for the users with no purchase in (cutoff, cutoff + window]."""
    buys = (log.type == _PURCHASE) & (log.ts > cutoff_ms) & (log.ts <= cutoff_ms + window_days * DAY_MS)
    bought = np.zeros(log.n_users, bool)
    bought[log.user[buys]] = True
    return ~bought[users]


def _candidates(seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "gradient_boosting": HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0,
            early_stopping=False, random_state=seed),
        "logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000)),
    }


def _sample(rng: np.random.Generator, n: int, cap: int) -> np.ndarray:
    return np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def train_churn(log: EventLog, *, window_days: int = 30, seed: int = 0,
                max_customers: int = 200_000) -> ChurnResult:
    """Fit, select and evaluate the churn model; score every purchasing customer at T."""
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score

    report: dict = {"window_days": window_days, "label": f"no purchase in the next {window_days} days"}
    if len(log) == 0:
        return ChurnResult({**report, "skipped": "no events"})
    end, start = int(log.ts.max()), int(log.ts.min())
    test_cut = end - window_days * DAY_MS
    train_cut = test_cut - window_days * DAY_MS
    if train_cut - start < MIN_HISTORY_DAYS * DAY_MS:
        return ChurnResult({**report, "skipped": (
            f"the log spans {(end - start) / DAY_MS:.0f} days; a {window_days}-day window needs "
            f"{2 * window_days + MIN_HISTORY_DAYS} (two windows and {MIN_HISTORY_DAYS} days of history)")})
    rng = np.random.default_rng(seed)
    users_a, x_a = churn_features(log, train_cut)
    y_a = churned(log, users_a, train_cut, window_days)
    users_b, x_b = churn_features(log, test_cut)
    y_b = churned(log, users_b, test_cut, window_days)
    for name, y in (("train", y_a), ("test", y_b)):
        if min(int(y.sum()), int((~y).sum())) < MIN_CLASS:
            return ChurnResult({**report, "skipped": f"fewer than {MIN_CLASS} churned or retained "
                                                     f"customers in the {name} window"})
    keep = _sample(rng, y_a.size, max_customers)
    x_a, y_a = x_a[keep], y_a[keep]
    fit_part = rng.random(y_a.size) < 0.75
    validation = {}
    for name, model in _candidates(seed).items():
        model.fit(x_a[fit_part], y_a[fit_part])
        validation[name] = float(roc_auc_score(y_a[~fit_part], model.predict_proba(x_a[~fit_part])[:, 1]))
    chosen = max(validation, key=validation.get)
    model = clone(_candidates(seed)[chosen]).fit(x_a, y_a)
    auc_model = float(roc_auc_score(y_b, model.predict_proba(x_b)[:, 1]))
    auc_recency = float(roc_auc_score(y_b, x_b[:, FEATURES.index("recency_days")]))
    keep = _sample(rng, y_b.size, max_customers)
    final = clone(_candidates(seed)[chosen]).fit(x_b[keep], y_b[keep])
    users_t, x_t = churn_features(log, end)
    probability = final.predict_proba(x_t)[:, 1].astype(np.float32)
    report.update({
        "train_cutoff": _iso(train_cut), "test_cutoff": _iso(test_cut), "as_of": _iso(end),
        "train_customers": int(y_a.size), "test_customers": int(y_b.size),
        "churn_rate_test": round(float(y_b.mean()), 4),
        "validation_auc": {k: round(v, 4) for k, v in validation.items()}, "chosen": chosen,
        "auc": {"model": round(auc_model, 4), "recency": round(auc_recency, 4)},
        "features": list(FEATURES),
    })
    return ChurnResult(report, users_t, probability)

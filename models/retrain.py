"""The retrain outcome: what the last `vitrine retrain` decided, for operators and the server.

`vitrine retrain` writes `<store>/RETRAIN.json` after every run, whatever the outcome; the server
may show it beside the served model (`/v1/models/current`, metrics). Replaced atomically, so a
reader sees the previous outcome or the new one. Fields:

    time          ISO 8601 UTC, when the run finished
    outcome       "published" (the candidate is CURRENT now), "kept" (refused: CURRENT unchanged)
                  or "failed" (no candidate: e.g. no events in the window; CURRENT unchanged)
    reason        one sentence a person can act on
    served        the version CURRENT names after the run
    candidate     {"version": published version or null, "metrics": {...}}
    current       {"version": the version served before the run or null, "metrics": {...}}
    validation    {"cutoff_ms", "users", "protocol"}: the split both models were scored on
    window        {"since", "until", "events"}: the archive window trained on
    tolerance     the allowed recall@20 drop; min_lift the candidate's minimum × popularity
    duration_s    the run's wall time

`metrics` hold recall@20, recall@50, ndcg@100, coverage@20 and the popularity baseline's
recall@20 on the same users (`popularity_recall@20`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import msgspec

RETRAIN_FILE = "RETRAIN.json"
Outcome = Literal["published", "kept", "failed"]
# Exit codes of `vitrine retrain` (a scheduler tells the outcomes apart by them).
EXIT_PUBLISHED, EXIT_FAILED, EXIT_KEPT = 0, 2, 3


class ModelScore(msgspec.Struct, omit_defaults=True):
    version: str | None = None
    metrics: dict[str, float] = {}


class RetrainOutcome(msgspec.Struct, omit_defaults=True):
    time: str
    outcome: Outcome
    reason: str
    served: str | None = None
    candidate: ModelScore = msgspec.field(default_factory=ModelScore)
    current: ModelScore = msgspec.field(default_factory=ModelScore)
    validation: dict = {}
    window: dict = {}
    tolerance: float | None = None
    min_lift: float | None = None
    duration_s: float | None = None


def write_outcome(store: Path, outcome: RetrainOutcome) -> Path:
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".RETRAIN-", dir=store)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(outcome), indent=2))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, store / RETRAIN_FILE)
    return store / RETRAIN_FILE


def read_outcome(store: Path) -> RetrainOutcome | None:
    """The last outcome, or None when no retrain ran against this store."""
    try:
        return msgspec.json.decode((Path(store) / RETRAIN_FILE).read_bytes(), type=RetrainOutcome)
    except FileNotFoundError:
        return None

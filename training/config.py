"""The trainer's parameters: one typed structure with measured defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.events import DEFAULT_EVENT_WEIGHTS


@dataclass
class TrainConfig:
    # ALS. Defaults from a grid on ml-latest-small and the synthetic store (benchmarks/README.md):
    # 64 factors with light regularization led both; alpha barely mattered in 1..5.
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    random_state: int = 0
    engine: str = "implicit"  # the ALS fit: "implicit" here, or "spark" (training/engines.py)
    event_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    half_life_days: float | None = None  # time decay of event weights; None = no decay
    # Model search (training/search.py): "off" fits the parameters above as they are; "quick"
    # and "full" choose ALS's, the item-item model's and the session blend's on validation
    # users (never the evaluation's held-out users), on a sample of at most this many
    # user-item pairs at scale.
    search: str = "quick"
    search_max_interactions: int = 50_000
    # Item-item model (EASE) for catalogs up to this many items: its fit inverts a dense
    # items × items float32 matrix (1.6 GB and about a minute at 20k items). Each item keeps
    # this many neighbours for serving.
    itemitem_max_items: int = 20_000
    itemitem_neighbours: int = 200
    # Index (training/index.py): every item scanned exactly up to this many items; above it the
    # largest-norm items up to this many if they reach the target recall, else IVF.
    exact_index_max_items: int = 50_000
    index_target_recall: float = 0.95
    # Items re-bought by at least this share of their buyers count as consumables when no
    # catalog says so (a past purchase then doesn't exclude them from recommendations).
    consumable_repeat_share: float = 0.2
    # Evaluation (strong generalization): held-out users, fold-in share, seeds.
    evaluate: bool = True
    eval_holdout_users: int = 200
    eval_min_positives: int = 5
    eval_fold_in: float = 0.8
    eval_seeds: int = 5
    eval_max_users: int = 2_000  # cap per seed on large logs (a sample is enough for the means)
    eval_temporal: bool = True  # the temporal protocol costs one more fit
    eval_session_lengths: tuple[int, ...] = (1, 2)  # short sessions measured against popularity
    eval_session_max_users: int = 200  # held-out users per seed in the short-session rows (each ranks all)
    # When the held-out users are at most this share of all users, the evaluated model is the
    # one published (held-out users get their vectors by fold-in, ALS's own user step) instead
    # of fitting again on everything: at 1M users the difference is noise, the saving a fit.
    reuse_eval_fit_max_share: float = 0.01
    # Customers (training/customers.py, docs/customers.md): the segment rules file (None = the
    # defaults in models/segments.py); churn label window and the cap of customers per fit;
    # evidence a repurchase cycle needs (intervals of the item itself, else of its category).
    segment_rules: Path | None = None
    churn_window_days: int = 30
    churn_max_customers: int = 200_000
    repurchase_min_item_intervals: int = 5
    repurchase_min_category_intervals: int = 20
    # Publishing.
    store: Path = Path("models/store")
    keep_versions: int = 5

    def params(self) -> dict:
        """What the manifest records (and the server reads back)."""
        out = asdict(self)
        out.pop("store")
        out["segment_rules"] = str(self.segment_rules) if self.segment_rules else None
        return out

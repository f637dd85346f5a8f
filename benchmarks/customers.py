"""Customers on a planted synthetic store: segments against planted types, churn AUC against
recency, buy-again against planted cycles. The same functions `vitrine train` runs.

    .venv/bin/python benchmarks/customers.py            # 20,000 shoppers, 5M events, a year

Writes benchmarks/results/customers.md (the confusion table, both AUCs, the buy-again shares).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from models.repurchase import due_items, history  # noqa: E402
from models.rfm import DAY_MS  # noqa: E402
from models.segments import DEFAULT_RULES  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.customers import analyse_customers  # noqa: E402
from training.eventlog import TYPE_CODE  # noqa: E402
from training.report import describe_customers  # noqa: E402
from training.repurchase import learn_cycles, purchase_history  # noqa: E402
from training.synthetic import generate_store  # noqa: E402
from training.synthetic_customers import CUSTOMER_TYPES  # noqa: E402

# The segment each planted type should land in (VIP spend is a rule threshold: a loyal shopper
# who spends past it is a VIP by the rules, and counted apart below).
EXPECTED = {"loyal": "loyal", "vip": "vip", "slipping": "at_risk", "lost": "lost", "new": "new"}


def confusion(store, segments) -> tuple[list[str], dict[str, np.ndarray]]:
    index = {u: i for i, u in enumerate(store.log.user_ids)}
    assigned = np.full(store.log.n_users, "prospect", dtype=object)
    assigned[[index[u] for u in segments["users"]]] = segments["segment"]
    names = DEFAULT_RULES.names
    table = {kind: np.array([(assigned[store.customer_type == t] == n).sum() for n in names])
             for t, kind in enumerate(CUSTOMER_TYPES)}
    return names, table


def buy_again(store, k: int, horizon_days: int = 14) -> dict:
    """Due share at the end of the log (the acceptance: shown items within ±20% of their planted
    cycle), and, at a cutoff `horizon_days` earlier with cycles learned before it, the share of
    shown items re-bought within the horizon against the customer's most recent consumables."""
    log, truth = store.log, store.item_cycle_days
    end = int(log.ts.max())
    cycles, source = learn_cycles(log, log.item_consumable)
    hist = purchase_history(log)
    shown = due = 0
    for user in range(log.n_users):
        last = dict(history(hist, user))
        for item, _ in due_items(last.items(), cycles, end, k):
            shown += 1
            due += 0.8 <= (end - last[item]) / DAY_MS / truth[item] <= 1.2
    cut = end - horizon_days * DAY_MS
    before = log.select(log.ts <= cut)
    cycles_cut, _ = learn_cycles(before, before.item_consumable)
    hist_cut = purchase_history(before)
    after = (log.type == TYPE_CODE["purchase"]) & (log.ts > cut)
    rebought = set(zip(log.user[after].tolist(), log.item[after].tolist(), strict=True))
    hits = base_hits = n = 0
    for user in range(log.n_users):
        past = [(i, ts) for i, ts in history(hist_cut, user) if np.isfinite(cycles_cut[i])]
        shown_items = [i for i, _ in due_items(past, cycles_cut, cut, k)]
        if not shown_items:
            continue
        recent = [i for i, _ in sorted(past, key=lambda p: -p[1])[: len(shown_items)]]
        n += len(shown_items)
        hits += sum((user, i) in rebought for i in shown_items)
        base_hits += sum((user, i) in rebought for i in recent)
    err = np.abs(cycles[log.item_consumable] / truth[log.item_consumable] - 1)
    return {"shown": shown, "due_share": due / max(shown, 1), "cycle_error_median": float(np.median(err)),
            "from_item": int((source == 1).sum()), "from_category": int((source == 2).sum()),
            "horizon_days": horizon_days, "holdout_shown": n, "holdout_precision": hits / max(n, 1),
            "recent_precision": base_hits / max(n, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "customers.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    store = generate_store(n_items=args.items, n_users=args.users, n_events=args.events, days=365,
                           seed=args.seed, customer_types=True)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    # The trainer's customer stage, as `vitrine train` runs it (default rules, 30-day churn).
    customers = analyse_customers(store.log, TrainConfig(random_state=args.seed), store.log.item_consumable)
    t_customers = time.perf_counter() - t0
    segments, churn = customers.segments, customers.report["churn"]
    t0 = time.perf_counter()
    again = buy_again(store, args.k)
    t_again = time.perf_counter() - t0
    names, table = confusion(store, segments)

    cmd = shlex.join([".venv/bin/python", "benchmarks/customers.py", *sys.argv[1:]])
    lines = [
        "# Customers on a planted store",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: 2 cores shared with other work, {platform.machine()}, Python {platform.python_version()}; "
        f"date {date.today().isoformat()}",
        "",
        f"Store: {len(store.log):,} events over 365 days, {store.log.n_items:,} items, "
        f"{store.log.n_users:,} shoppers of planted types (generated in {t_gen:.1f} s). "
        "Segments: the default rules (`models/segments.py`, docs/customers.md).",
        "",
        "## Planted type × assigned segment",
        "",
        "| planted \\ segment | " + " | ".join(names) + " | as planted |",
        "| --- | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for kind, row in table.items():
        share = row[names.index(EXPECTED[kind])] / row.sum()
        cells = " | ".join(f"**{n:,}**" if name == EXPECTED[kind] else f"{n:,}"
                           for name, n in zip(names, row, strict=True))
        lines.append(f"| {kind} ({row.sum():,}) | {cells} | {share:.0%} |")
    loyal = table["loyal"]
    buyers_new = table["new"].sum() - table["new"][names.index("prospect")]
    loyal_or_vip = (loyal[names.index("loyal")] + loyal[names.index("vip")]) / loyal.sum()
    lines += [
        "",
        f"Planted loyal shoppers in loyal or VIP: {loyal_or_vip:.0%} "
        "(VIP is a spend threshold, > 500 in 6 months, that the busiest loyal shoppers pass). "
        f"New shoppers who bought at all: {table['new'][names.index('new')] / max(buyers_new, 1):.0%} new "
        "(the others have not bought yet: prospects, as the rules say). "
        f"The trainer's customer stage (segments, churn, cycles) took {t_customers:.1f} s.",
        "",
        "## Churn risk",
        "",
    ]
    if "skipped" in churn:
        lines.append(f"Skipped: {churn['skipped']}")
    else:
        lines += [
            f"Label: {churn['label']}. Trained at {churn['train_cutoff'][:10]} "
            f"({churn['train_customers']:,} customers), tested at {churn['test_cutoff'][:10]} "
            f"({churn['test_customers']:,} customers, {churn['churn_rate_test']:.0%} churned).",
            "",
            "| | AUC on the held-out window |",
            "| --- | ---: |",
            f"| model ({churn['chosen'].replace('_', ' ')}, chosen by validation) "
            f"| **{churn['auc']['model']:.3f}** |",
            f"| recency-only rule | {churn['auc']['recency']:.3f} |",
            "",
            "Validation AUC (25% of the train cutoff's customers): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in churn["validation_auc"].items()) + ".",
        ]
    lines += [
        "",
        "## Buy it again",
        "",
        f"Cycles learned for every planted consumable ({again['from_item']:,} from the item's own "
        f"intervals, {again['from_category']:,} from its category's); median error against the "
        f"planted cycle {again['cycle_error_median']:.1%}.",
        "",
        f"- Items shown by `models.repurchase.due_items` (k = {args.k}) at the end of the log: "
        f"{again['shown']:,}; due within ±20% of their planted cycle: **{again['due_share']:.1%}** "
        "(target ≥ 70%).",
        f"- Held out: at {again['horizon_days']} days before the end, with cycles learned before then, "
        f"{again['holdout_shown']:,} items shown; re-bought within the {again['horizon_days']} days: "
        f"**{again['holdout_precision']:.1%}**, against {again['recent_precision']:.1%} for the same "
        "number of each customer's most recently bought consumables.",
        "",
        f"Measured in {t_again:.1f} s.",
        "",
        "## What `vitrine train` prints for this stage",
        "",
        "```",
        *describe_customers(customers.report),
        "```",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""`vitrine campaign`: recommendations for every customer of a segment, in batch, to a file.

For e-mail and SMS tools: the published model's user vectors are searched a batch at a time
(one FAISS search per batch of customers, not one request each), candidates filtered as the
server filters them (out of stock; bought, unless a consumable that is due again), and the
top k written per customer as JSON Lines or CSV. Customers are those the segment rules put in
the segment at `now` (by default the newest event the model was trained on), from the
statistics published in the artifact: the same rules the server evaluates live.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import artifact
from models.repurchase import EARLY, due_items, dueness_many, history
from models.rfm import RfmEdges, customer_features, customer_features_many
from models.segments import parse_rules

BUY_AGAIN = "buy_again"


@dataclass
class CampaignResult:
    customers: int  # customers of the segment
    written: int  # rows written (buy_again skips customers with nothing due)
    seconds: float

    @property
    def per_minute(self) -> float:
        return 60 * self.customers / max(self.seconds, 1e-9)


def segment_members(art: artifact.ModelArtifact, segment: str, now_ms: int) -> tuple[np.ndarray, str]:
    """(user rows of the artifact in `segment` at `now_ms`, the segment's name); "all" = everyone."""
    seg = art.segments
    if not seg or "last_purchase_ms" not in seg:
        raise ValueError(f"{art.version} has no customer statistics: retrain with this version of vitrine")
    rules, edges = parse_rules(seg["rules"]), RfmEdges.from_dict(seg["rfm_edges"])
    if segment.lower() == "all":
        return np.arange(len(art.user_ids)), "all"
    rule = rules.find(segment)
    if rule is None:
        raise ValueError(f"unknown segment {segment!r} (segments: {', '.join(rules.names)}, or all)")
    windows = [int(d) for d in seg["windows_days"]]
    a = {k: np.asarray(seg[k]) for k in ("first_purchase_ms", "last_purchase_ms", "orders", "spend")}
    feats = customer_features_many(
        a["first_purchase_ms"], a["last_purchase_ms"], a["orders"], a["spend"],
        {d: np.asarray(seg[f"orders_{d}d"]) for d in windows},
        {d: np.asarray(seg[f"spend_{d}d"]) for d in windows}, now_ms, edges)
    feats["churn_probability"] = np.asarray(seg.get("churn_probability", [np.nan] * a["orders"].size),
                                            dtype=np.float64)
    buyers = np.array([art.user_index[u] for u in seg["users"]], dtype=np.int64)
    members = buyers[rules.assign_many(feats) == rule.name]
    # Customers who never bought share one set of features: one evaluation decides for all.
    if rules.assign(customer_features(None, now_ms, edges, windows)) == rule.name:
        never = np.ones(len(art.user_ids), bool)
        never[buyers] = False
        members = np.concatenate([members, np.flatnonzero(never)])
    return np.sort(members), rule.name


def _excluded(art: artifact.ModelArtifact, rows: np.ndarray, now_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(batch position, item) pairs never to recommend: bought, unless a consumable that is due."""
    rep = art.repurchase
    if rep is None:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    lo, hi = rep["user_indptr"][rows], rep["user_indptr"][rows + 1]
    n = hi - lo
    pos = np.repeat(np.arange(rows.size), n)
    idx = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
    items, last = rep["items"][idx].astype(np.int64), rep["last_ms"][idx]
    with np.errstate(invalid="ignore"):
        early = dueness_many(last, rep["cycle_days"][items], now_ms) < 1 - EARLY
    keep = ~art.items.consumable[items] | early
    return pos[keep], items[keep]


def recommend_batch(art: artifact.ModelArtifact, rows: np.ndarray, k: int, now_ms: int,
                    popular: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(items (B, k), -1 where fewer; rung per row: personalized, or popular for customers
    without a vector)."""
    pos, items = _excluded(art, rows, now_ms)
    n_items = len(art.items.ids)
    extra = int(np.bincount(pos, minlength=rows.size).max()) if pos.size else 0
    n = min(int(art.index.ntotal), k + min(extra, 1_000) + k // 2 + 16)
    queries = np.ascontiguousarray(art.user_factors[rows], dtype=np.float32)
    _, cand = art.index.search(queries, n)
    valid = (cand >= 0) & art.items.in_stock[np.maximum(cand, 0)]
    banned = np.unique(pos * n_items + items)
    valid &= ~np.isin(np.arange(rows.size)[:, None] * n_items + cand, banned)
    rank = np.cumsum(valid, axis=1)
    take = valid & (rank <= k)
    out = np.full((rows.size, k), -1, dtype=np.int64)
    r, _ = np.nonzero(take)
    out[r, rank[take] - 1] = cand[take]
    zero = ~np.any(queries, axis=1)
    rung = np.where(zero, "popular", "personalized")
    for i in np.flatnonzero(zero | (take.sum(axis=1) < k)):  # rare: top up from popular items
        have = [x for x in out[i] if x >= 0] if not zero[i] else []
        skip = set(have) | set(items[pos == i].tolist())
        have += [int(x) for x in popular[:k + len(skip)] if x not in skip][: k - len(have)]
        out[i, : len(have)] = have
    return out, rung


class _Writer:
    def __init__(self, path: Path, k: int):
        self.path, self.k = path, k
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".ndjson", ".csv"):
            raise ValueError(f"{path}: unknown format {suffix!r} (use .jsonl or .csv)")
        self.csv = suffix == ".csv"
        self.file = path.open("w", newline="") if self.csv else path.open("wb")
        if self.csv:
            self.out = csv.writer(self.file)
            self.out.writerow(["user_id", "segment", "placement", "rung"]
                              + [f"item_{i + 1}" for i in range(k)])

    def write(self, user: str, segment: str, placement: str, rung: str, items: list[str]) -> None:
        if self.csv:
            self.out.writerow([user, segment, placement, rung, *items, *[""] * (self.k - len(items))])
        else:
            import orjson

            self.file.write(orjson.dumps({"user_id": user, "segment": segment, "placement": placement,
                                          "rung": rung, "items": items}) + b"\n")

    def close(self) -> None:
        self.file.close()


def export_campaign(art: artifact.ModelArtifact, segment: str, placement: str, k: int, out: Path, *,
                    now_ms: int | None = None, batch: int = 2_048, progress: bool = True) -> CampaignResult:
    """Write the recommendations of every customer of `segment` to `out` (.jsonl or .csv)."""
    from tqdm import tqdm

    start = time.perf_counter()
    now = int(now_ms if now_ms is not None else (art.segments or {}).get("as_of_ms", time.time() * 1000))
    members, name = segment_members(art, segment, now)
    ids, user_ids = art.items.ids, art.user_ids
    popular = np.argsort(-art.popularity, kind="stable")
    popular = popular[art.items.in_stock[popular]]
    nprobe = art.manifest.get("index", {}).get("nprobe")
    if nprobe:
        import faiss

        faiss.extract_index_ivf(art.index).nprobe = int(nprobe)
    writer, written = _Writer(Path(out), k), 0
    try:
        with tqdm(total=members.size, unit=" customers", file=sys.stderr, disable=not progress,
                  mininterval=0.5) as bar:
            for lo in range(0, members.size, batch):
                rows = members[lo:lo + batch]
                if placement == BUY_AGAIN:
                    written += _buy_again(art, rows, k, now, name, writer)
                else:
                    recs, rung = recommend_batch(art, rows, k, now, popular)
                    for row, items, r in zip(rows.tolist(), recs.tolist(), rung.tolist(), strict=True):
                        writer.write(user_ids[row], name, placement, r, [ids[i] for i in items if i >= 0])
                    written += rows.size
                bar.update(rows.size)
    finally:
        writer.close()
    return CampaignResult(int(members.size), written, time.perf_counter() - start)


def _buy_again(art: artifact.ModelArtifact, rows: np.ndarray, k: int, now: int, name: str,
               writer: _Writer) -> int:
    rep, stock, ids = art.repurchase, art.items.in_stock, art.items.ids
    if rep is None:
        raise ValueError(f"{art.version} has no repurchase cycles: retrain with this version of vitrine")
    written = 0
    for row in rows.tolist():
        due = [i for i, _ in due_items(history(rep, row), rep["cycle_days"], now, k + 5) if stock[i]][:k]
        if due:
            writer.write(art.user_ids[row], name, BUY_AGAIN, BUY_AGAIN, [ids[i] for i in due])
            written += 1
    return written


def register(subparsers: argparse._SubParsersAction) -> None:
    c = subparsers.add_parser("campaign", help="write recommendations for every customer of a segment")
    c.add_argument("--segment", required=True, help="segment name or label (see the rules), or all")
    c.add_argument("--placement", default="email",
                   help="recorded in each row (email, sms, ...); buy_again lists due repurchases instead")
    c.add_argument("--k", type=int, default=10, help="items per customer (default: %(default)s)")
    c.add_argument("--out", type=Path, required=True, help="output file, .jsonl or .csv")
    # Overrides the model.store setting (vitrine/cli.py reads dests starting with "setting:").
    c.add_argument("--store", dest="setting:model.store", default=None,
                   help="model store (default: the model.store setting, VITRINE_MODEL_STORE)")
    c.add_argument("--now-ms", type=int, help="evaluate segments and dueness at this time "
                                             "(default: the newest event the model was trained on)")
    c.add_argument("--batch", type=int, default=2_048, help="customers per search (default: %(default)s)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(handler=_campaign)


def _campaign(args: argparse.Namespace) -> int:
    if args.k < 1 or args.batch < 1:
        print("vitrine: --k and --batch must be positive", file=sys.stderr)
        return 2
    try:
        art = artifact.load_current(args.settings.model.store)
        result = export_campaign(art, args.segment, args.placement, args.k, args.out, now_ms=args.now_ms,
                                 batch=args.batch, progress=not args.no_progress)
    except (artifact.ArtifactError, ValueError) as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {result.written:,} of {result.customers:,} customers of segment {args.segment} to "
          f"{args.out} in {result.seconds:.1f} s ({result.per_minute:,.0f} customers/min, "
          f"model {art.version})")
    return 0

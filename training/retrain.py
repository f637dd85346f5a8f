"""`vitrine retrain`: train on the archive's recent window, publish only a model that is not worse.

One run: read the window (erasure tombstones honoured) → split off the newest events as the
validation period → fit a candidate on the events before it and score it and the served model
on the same split (training/gate.py) → if the candidate is not worse than the served model
beyond the tolerance, and beats popularity, train on the whole window and publish (CURRENT
switched atomically); otherwise CURRENT stays. Every run leaves its outcome in
`<store>/RETRAIN.json` (models/retrain.py) and exits 0 (published), 3 (kept) or 2 (failed).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from models import retrain as contract
from models.retrain import ModelScore, RetrainOutcome

_EVERY_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class RetrainOptions:
    archive: str
    days: float = 90.0
    until: datetime | None = None  # the window's end (default: now)
    catalog: Path | None = None
    tolerance: float = 0.01  # recall@20 the candidate may lose against the served model
    min_lift: float = 1.1  # the candidate's recall@20 over popularity's, at least
    validation_share: float = 0.1  # the newest share of the window's events
    # Shoppers to compare on, at least, when the period starts after the served model's newest
    # event: fewer make recall@20 a coin toss, and a later run will have more.
    min_validation_users: int = 50


def run_once(options: RetrainOptions, config) -> RetrainOutcome:
    """One retrain; never raises for bad data (the outcome says "failed" and why)."""
    from models import archive, artifact
    from training.catalog import read_catalog
    from training.engines import fit_function
    from training.gate import Scorable, score, temporal_split
    from training.interactions import confidence_matrix
    from training.readers import BadEventLog, read_event_table
    from training.recommender import ModelSpec, fit_session_model

    started = time.perf_counter()
    store = Path(config.store)
    before = artifact.current_version(store)
    since, until = archive.window_days(options.days, options.until)
    window = {"since": since.isoformat(timespec="seconds"), "until": until.isoformat(timespec="seconds")}

    def outcome(kind: str, reason: str, **fields) -> RetrainOutcome:
        return RetrainOutcome(
            time=datetime.now(UTC).isoformat(timespec="seconds"), outcome=kind, reason=reason,
            served=artifact.current_version(store), window=window, tolerance=options.tolerance,
            min_lift=options.min_lift, duration_s=round(time.perf_counter() - started, 1), **fields)

    try:
        table = archive.read_window(options.archive, since, until)
        catalog = read_catalog(options.catalog) if options.catalog else None
        log, _ = read_event_table(table, f"archive {options.archive}", on_bad_row="skip", catalog=catalog)
        window["events"] = len(log)
        served_art = artifact.load_current(store) if before is not None else None
        seen = served_art.manifest.get("data_until_ms") if served_art is not None else None
        split = temporal_split(log, config, options.validation_share, seen_until_ms=seen)
        protocol = f"temporal: the newest {options.validation_share:.0%} of the window's events"
        if seen is not None and split.cutoff_ms == seen + 1:
            newer = int((log.ts > seen).sum())
            protocol = (f"temporal: the {newer:,} events after the served model's newest "
                        f"({newer / max(len(log), 1):.1%} of the window's)")
            if split.users.size < options.min_validation_users:
                return outcome("kept", f"the served model learnt from the window's events up to "
                               f"{_iso(seen)}; the {newer:,} after them leave {split.users.size} shoppers to "
                               f"compare the models on, fewer than {options.min_validation_users} (a later "
                               "run will have more)", current=ModelScore(before))
        past = confidence_matrix(split.past, config.event_weights, half_life_days=config.half_life_days)
        # The candidate is what `train` would publish: the model search (config.search) on the
        # history, never on the validation users, then the chosen model fitted on the history.
        chosen = _search(past, config, split)
        spec = chosen.spec if chosen else ModelSpec.from_config(config)
        model, _ = fit_session_model(past, config, spec, fit_function(config.engine))
        candidate = score(Scorable(log.item_ids, model, config.event_weights, config.half_life_days), split)
        served = score(Scorable.from_artifact(served_art), split) if served_art is not None else None
    except (BadEventLog, ValueError, archive.ArchiveError, artifact.ArtifactError) as exc:
        return outcome("failed", str(exc), current=ModelScore(before))
    validation = {"cutoff_ms": split.cutoff_ms, "users": int(split.users.size), "protocol": protocol}
    current = ModelScore(before, served or {})
    refusal = _refusal(candidate, served, options)
    if refusal:
        return outcome("kept", refusal, candidate=ModelScore(None, candidate), current=current,
                       validation=validation)
    gate = {"candidate": candidate, "current": served, "current_version": before, **validation}
    source = {"archive": options.archive, **window, "retrain_gate": gate}
    version = _publish(log, config, store, source, chosen)
    reason = ("no model was served: the candidate beats popularity" if served is None else
              f"recall@20 {candidate['recall@20']:.4f} vs the served model's {served['recall@20']:.4f}")
    return outcome("published", reason, candidate=ModelScore(version, candidate), current=current,
                   validation=validation)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _search(past, config, split):
    """The search `train` runs (None when off, or skipped: too little data, another engine)."""
    from training.search import TooLittleData, search_model

    if config.search == "off" or config.engine != "implicit":
        return None
    try:
        return search_model(past, config, exclude_users=split.users, log=split.past)
    except TooLittleData:
        return None


def _refusal(candidate: dict, served: dict | None, options: RetrainOptions) -> str | None:
    """Why the candidate must not be published, or None."""
    pop = candidate["popularity_recall@20"]
    lift = candidate["recall@20"] / pop if pop else float("inf")
    if lift < options.min_lift:
        return (f"the candidate's recall@20 {candidate['recall@20']:.4f} is {lift:.2f}× popularity's "
                f"{pop:.4f} (at least {options.min_lift:.2f}× required): it learnt little from this window")
    if served is not None and candidate["recall@20"] < served["recall@20"] - options.tolerance:
        return (f"the candidate's recall@20 {candidate['recall@20']:.4f} is below the served model's "
                f"{served['recall@20']:.4f} by more than the tolerance {options.tolerance:.4f}")
    return None


def _publish(log, config, store: Path, source: dict, chosen) -> str:
    """Train on the whole window in a staging store beside the real one, then move the version
    in and switch CURRENT: the server never sees a model before the gate accepted it. The
    model the gate scored is the one published (`chosen`: its search, not another)."""
    from models import artifact
    from training.pipeline import train

    staging = store / f".retrain-{os.getpid()}"
    try:
        result = train(log, replace(config, store=staging), source=source, chosen=chosen)
        os.rename(result.path, store / result.version)
        artifact.set_current(store, result.version)
        artifact.prune(store, keep=config.keep_versions)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result.version


def format_outcome(o: RetrainOutcome) -> str:
    lines = [f"retrain {o.outcome}: {o.reason}"]
    for name, s in (("candidate", o.candidate), ("served", o.current)):
        if s.metrics:
            m = s.metrics
            lines.append(f"  {name:<10} {s.version or '(not published)':<28} recall@20 {m['recall@20']:.4f}  "
                         f"recall@50 {m['recall@50']:.4f}  ndcg@100 {m['ndcg@100']:.4f}  "
                         f"popularity {m['popularity_recall@20']:.4f}")
    if o.validation:
        lines.append(f"  validation: {o.validation['users']:,} shoppers, {o.validation['protocol']}")
    lines.append(f"  window {o.window.get('since')} .. {o.window.get('until')}: "
                 f"{o.window.get('events', 0):,} events; CURRENT = {o.served}; {o.duration_s} s")
    return "\n".join(lines)


def parse_every(text: str) -> float:
    """"6h", "30m", "1d", "90s" → seconds."""
    m = _EVERY_RE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number and a unit (s, m, h, d), e.g. 6h")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("retrain",
                              help="train on the archive's recent window; publish only if not worse")
    p.add_argument("--archive", required=True, help="event archive root (a directory, or s3://... etc.)")
    # Overrides the model.store setting (vitrine/cli.py reads dests starting with "setting:").
    p.add_argument("--store", dest="setting:model.store", default=None,
                   help="model store (default: the model.store setting, VITRINE_MODEL_STORE)")
    p.add_argument("--days", type=float, default=90.0, help="window: the last N days (default: %(default)s)")
    p.add_argument("--until", type=datetime.fromisoformat,
                   help="window end, ISO date/time in UTC (default: now)")
    p.add_argument("--catalog", type=Path, help="item catalog CSV")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="recall@20 the candidate may lose against the served model (default: %(default)s)")
    p.add_argument("--min-lift", type=float, default=1.1,
                   help="the candidate's minimum recall@20 over popularity's (default: %(default)s)")
    p.add_argument("--validation-share", type=float, default=0.1,
                   help="newest share of the window's events used for validation (default: %(default)s)")
    p.add_argument("--min-validation-users", type=int, default=50,
                   help="when validation starts after the served model's newest event, the shoppers it "
                        "needs at least; fewer keep the served model (default: %(default)s)")
    p.add_argument("--engine", choices=("implicit", "spark"), default="implicit")
    p.add_argument("--eval-seeds", type=int, default=1, help="seeds of the published model's own evaluation")
    p.add_argument("--every", type=parse_every, help="run on a schedule, e.g. 6h (default: once)")
    p.add_argument("--keep", type=int, help="versions to keep in the store")
    p.set_defaults(handler=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    from training.config import TrainConfig

    config = TrainConfig(store=args.settings.model.store, engine=args.engine, eval_seeds=args.eval_seeds)
    if args.keep is not None:
        config.keep_versions = args.keep
    options = RetrainOptions(archive=args.archive, days=args.days, catalog=args.catalog,
                             tolerance=args.tolerance, min_lift=args.min_lift,
                             validation_share=args.validation_share,
                             min_validation_users=args.min_validation_users,
                             until=args.until.replace(tzinfo=UTC) if args.until and not args.until.tzinfo
                             else args.until)
    while True:
        started = time.monotonic()
        result = run_once(options, config)
        contract.write_outcome(args.settings.model.store, result)
        print(format_outcome(result), flush=True)
        code = {"published": contract.EXIT_PUBLISHED, "kept": contract.EXIT_KEPT}.get(
            result.outcome, contract.EXIT_FAILED)
        if args.every is None:
            return code
        pause = max(0.0, args.every - (time.monotonic() - started))
        print(f"next retrain in {pause / 3600:.2f} h", file=sys.stderr, flush=True)
        time.sleep(pause)

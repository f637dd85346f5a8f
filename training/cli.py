"""`vitrine train`, `vitrine generate` and `vitrine models list|use`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_STORE = Path("models/store")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train on event logs (or the synthetic store) and publish")
    p.add_argument("events", nargs="*", type=Path, help="event files (.csv, .jsonl, .parquet)")
    p.add_argument("--mapping", help="column mapping: a preset (movielens) or a JSON file")
    p.add_argument("--catalog", type=Path,
                   help="item catalog CSV (item_id,category,price,in_stock,consumable)")
    p.add_argument("--on-bad-row", choices=("fail", "skip"), default="fail")
    _synthetic_args(p)
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="model store (default: %(default)s)")
    p.add_argument("--factors", type=int)
    p.add_argument("--regularization", type=float)
    p.add_argument("--alpha", type=float)
    p.add_argument("--iterations", type=int)
    p.add_argument("--half-life-days", type=float)
    p.add_argument("--search", choices=("off", "quick", "full"),
                   help="choose the model on validation users (default: quick; off: the parameters as given)")
    p.add_argument("--eval-seeds", type=int)
    p.add_argument("--eval-holdout-users", type=int)
    p.add_argument("--no-eval", action="store_true", help="skip the offline evaluation")
    p.add_argument("--keep", type=int, help="versions to keep in the store")
    p.set_defaults(handler=_train)

    g = subparsers.add_parser("generate", help="write a synthetic store's events and catalog")
    g.add_argument("out", type=Path, help="event file to write (.csv, .jsonl, .parquet)")
    g.add_argument("--catalog", type=Path, help="also write the catalog CSV here")
    _synthetic_args(g)
    g.set_defaults(handler=_generate)

    m = subparsers.add_parser("models", help="list the published model versions or switch CURRENT")
    m.add_argument("action", choices=("list", "use"))
    m.add_argument("version", nargs="?")
    m.add_argument("--store", type=Path, default=DEFAULT_STORE)
    m.set_defaults(handler=_models)


def _synthetic_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--items", type=int, default=5_000, help="synthetic store: items")
    p.add_argument("--users", type=int, default=2_000, help="synthetic store: customers")
    p.add_argument("--n-events", type=int, default=200_000, help="synthetic store: events")
    p.add_argument("--seed", type=int, default=0)


def _fail(message: str) -> int:
    print(f"vitrine: {message}", file=sys.stderr)
    return 2


def _train(args: argparse.Namespace) -> int:
    from training.catalog import read_catalog
    from training.config import TrainConfig
    from training.mapping import load_mapping
    from training.pipeline import train
    from training.readers import BadEventLog, read_events
    from training.report import format_report

    config = TrainConfig(store=args.store, evaluate=not args.no_eval)
    for name in ("factors", "regularization", "alpha", "iterations", "half_life_days",
                 "eval_seeds", "eval_holdout_users", "search"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if args.keep is not None:
        config.keep_versions = args.keep
    start = time.perf_counter()
    try:
        if args.events:
            catalog = read_catalog(args.catalog) if args.catalog else None
            log, report = read_events(args.events, mapping=load_mapping(args.mapping),
                                      on_bad_row=args.on_bad_row, catalog=catalog)
            print(f"read: {report.summary()}")
            for example in report.examples:
                print(f"  skipped: {example}")
            source = {"files": [str(p) for p in args.events], "mapping": args.mapping,
                      "read": report.summary()}
        else:
            from training.synthetic import generate_store

            log = generate_store(n_items=args.items, n_users=args.users,
                                 n_events=args.n_events, seed=args.seed).log
            source = {"synthetic": {"items": args.items, "users": args.users,
                                    "events": args.n_events, "seed": args.seed}}
            print(f"generated a synthetic store: {len(log):,} events, {log.n_items:,} items, "
                  f"{log.n_users:,} customers (seed {args.seed})")
    except (BadEventLog, ValueError) as exc:
        return _fail(str(exc))
    result = train(log, config, timings={"load": time.perf_counter() - start}, source=source)
    print(format_report(result.manifest))
    print(f"published {result.version} to {result.path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from training.synthetic import generate_store
    from training.writers import write_catalog, write_events

    store = generate_store(n_items=args.items, n_users=args.users, n_events=args.n_events, seed=args.seed)
    try:
        write_events(store.log, args.out, session=store.session, channel=store.channel)
    except ValueError as exc:
        return _fail(str(exc))
    if args.catalog:
        write_catalog(store.log, args.catalog)
    print(f"wrote {len(store.log):,} events to {args.out}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from models import artifact

    if args.action == "use":
        if not args.version:
            return _fail("models use: give the VERSION to switch to")
        try:
            artifact.set_current(args.store, args.version)
        except artifact.ArtifactError as exc:
            return _fail(str(exc))
        print(f"CURRENT → {args.version}")
        return 0
    versions = artifact.list_versions(args.store)
    if not versions:
        print(f"no published versions in {args.store}")
        return 0
    print(f"{'':2}{'version':28}{'created':27}{'items':>10}{'users':>10}{'recall@20':>11}{'× pop':>7}")
    for v in versions:
        m = v["manifest"]
        sg = m.get("metrics", {}).get("strong_generalization")
        recall = f"{sg['model']['recall@20']['mean']:.3f}" if sg else "-"
        lift = f"{sg['lift_recall@20']:.2f}" if sg and sg.get("lift_recall@20") else "-"
        print(f"{'*' if v['current'] else '':2}{v['version']:28}{m['created']:27}"
              f"{m['counts']['items']:>10,}{m['counts']['users']:>10,}{recall:>11}{lift:>7}")
    return 0

"""`vitrine train`, `vitrine generate`, `vitrine models list|use` (and `vitrine retrain`, from
training/retrain.py)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# A flag whose dest starts with "setting:" overrides that setting of the one configuration
# (server/settings.py, loaded by vitrine/cli.py); the handler reads `args.settings`.
STORE_FLAG = {"dest": "setting:model.store", "default": None,
              "help": "model store (default: the model.store setting, VITRINE_MODEL_STORE)"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train on event logs (or the synthetic store) and publish")
    p.add_argument("events", nargs="*", type=Path, help="event files (.csv, .jsonl, .parquet)")
    p.add_argument("--mapping", help="column mapping: a preset (movielens) or a JSON file")
    p.add_argument("--catalog", type=Path,
                   help="item catalog: CSV (item_id,category,price,in_stock,consumable) or the live "
                        "catalog's export (.jsonl, `vitrine catalog export`)")
    p.add_argument("--on-bad-row", choices=("fail", "skip"), default="fail")
    _synthetic_args(p)
    p.add_argument("--store", **STORE_FLAG)
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
    p.add_argument("--segment-rules", type=Path, help="segment rules file (.toml/.json, docs/customers.md)")
    p.add_argument("--churn-window-days", type=int, help="churn label: no purchase in this many days")
    # The loop and large stores (docs/loop.md).
    p.add_argument("--archive", help="train on an event archive (models/archive.py) instead of files")
    p.add_argument("--days", type=float, help="with --archive: the last N days only")
    p.add_argument("--until", type=datetime.fromisoformat,
                   help="with --archive: window end (UTC; default now)")
    p.add_argument("--engine", choices=("implicit", "spark"), default="implicit",
                   help="ALS engine: implicit on this machine, or Spark MLlib (vitrine[spark])")
    p.add_argument("--spark-master", default="local[*]", help="Spark master when not under spark-submit")
    p.add_argument("--spark-driver-memory", default="8g", help="Spark driver memory (local mode)")
    p.set_defaults(handler=_train)

    g = subparsers.add_parser("generate", help="write a synthetic store's events and catalog")
    g.add_argument("out", type=Path, help="event file to write (.csv, .jsonl, .parquet)")
    g.add_argument("--catalog", type=Path, help="also write the catalog CSV here")
    _synthetic_args(g)
    g.set_defaults(handler=_generate)

    m = subparsers.add_parser("models", help="list the published model versions or switch CURRENT")
    m.add_argument("action", choices=("list", "use"))
    m.add_argument("version", nargs="?")
    m.add_argument("--store", **STORE_FLAG)
    m.set_defaults(handler=_models)

    from training.campaign import register as register_campaign

    register_campaign(subparsers)

    from training import retrain

    retrain.register(subparsers)


def _synthetic_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--items", type=int, default=5_000, help="synthetic store: items")
    p.add_argument("--users", type=int, default=2_000, help="synthetic store: customers")
    p.add_argument("--n-events", type=int, default=200_000, help="synthetic store: events")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--span-days", type=int, default=56, help="synthetic store: days of events")
    p.add_argument("--customer-types", action="store_true",
                   help="synthetic store: plant loyal/VIP/slipping/lost/new shoppers "
                        "(needs --span-days >= 365)")


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

    config = TrainConfig(store=args.settings.model.store, evaluate=not args.no_eval)
    for name in ("factors", "regularization", "alpha", "iterations", "half_life_days",
                 "eval_seeds", "eval_holdout_users", "segment_rules", "churn_window_days", "search"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if args.keep is not None:
        config.keep_versions = args.keep
    if config.segment_rules is not None:
        from models.segments import RuleError, load_rules

        try:
            load_rules(config.segment_rules)  # refuse a bad file before reading events and training
        except RuleError as exc:
            return _fail(str(exc))
    config.engine = args.engine
    start = time.perf_counter()
    if args.engine == "spark" and (args.events or args.archive):
        return _train_spark(args, config)
    try:
        if args.archive:
            log, source = _read_archive(args)
        elif args.events:
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

            log = generate_store(n_items=args.items, n_users=args.users, n_events=args.n_events,
                                 seed=args.seed, days=args.span_days,
                                 customer_types=args.customer_types).log
            source = {"synthetic": {"items": args.items, "users": args.users, "events": args.n_events,
                                    "seed": args.seed, "days": args.span_days,
                                    "customer_types": args.customer_types}}
            print(f"generated a synthetic store: {len(log):,} events, {log.n_items:,} items, "
                  f"{log.n_users:,} customers (seed {args.seed})")
    except (BadEventLog, ValueError) as exc:
        return _fail(str(exc))
    result = train(log, config, timings={"load": time.perf_counter() - start}, source=source)
    print(format_report(result.manifest))
    print(f"published {result.version} to {result.path}")
    return 0


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    until = args.until.replace(tzinfo=args.until.tzinfo or UTC) if args.until else None
    if args.days is None:
        return None, until
    end = until or datetime.now(UTC)
    return end - timedelta(days=args.days), end


def _read_archive(args: argparse.Namespace):
    from models import archive
    from training.catalog import read_catalog
    from training.readers import read_event_table

    since, until = _window(args)
    table = archive.read_window(args.archive, since, until)
    catalog = read_catalog(args.catalog) if args.catalog else None
    log, report = read_event_table(table, f"archive {args.archive}", on_bad_row=args.on_bad_row,
                                   catalog=catalog)
    print(f"read: {report.summary()}")
    return log, {"archive": args.archive, "since": since and since.isoformat(),
                 "until": until and until.isoformat(), "read": report.summary()}


def _train_spark(args: argparse.Namespace, config) -> int:
    from training.catalog import read_catalog
    from training.mapping import load_mapping
    from training.report import format_report
    from training.spark.pipeline import SparkSource, train_spark
    from training.spark.session import SparkOptions

    since, until = _window(args)
    ms = (lambda d: int(d.timestamp() * 1000) if d else None)  # noqa: E731
    source = (SparkSource(archive=args.archive, since_ms=ms(since), until_ms=ms(until)) if args.archive
              else SparkSource(paths=[str(p) for p in args.events]))
    try:
        result = train_spark(source, config, mapping=load_mapping(args.mapping),
                             catalog=read_catalog(args.catalog) if args.catalog else None,
                             options=SparkOptions(master=args.spark_master,
                                                  driver_memory=args.spark_driver_memory))
    except ValueError as exc:
        return _fail(str(exc))
    print(format_report(result.manifest))
    print(f"published {result.version} to {result.path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from training.synthetic import generate_store
    from training.writers import write_catalog, write_events

    try:
        store = generate_store(n_items=args.items, n_users=args.users, n_events=args.n_events,
                               seed=args.seed, days=args.span_days, customer_types=args.customer_types)
        write_events(store.log, args.out, session=store.session, channel=store.channel)
    except ValueError as exc:
        return _fail(str(exc))
    if args.catalog:
        write_catalog(store.log, args.catalog)
    print(f"wrote {len(store.log):,} events to {args.out}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from models import artifact

    store = args.settings.model.store
    if args.action == "use":
        if not args.version:
            return _fail("models use: give the VERSION to switch to")
        try:
            artifact.set_current(store, args.version)  # the checks the server makes before serving
        except artifact.ArtifactError as exc:
            return _fail(f"models use: refused, CURRENT unchanged: {exc}")
        print(f"CURRENT → {args.version}")
        return 0
    versions = artifact.list_versions(store)
    if not versions:
        print(f"no published versions in {store}")
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

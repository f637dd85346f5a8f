"""`vitrine serve`, `vitrine demo`, `vitrine config`, `vitrine events export`, `vitrine catalog
export` and `vitrine rules check`: the server's side of the command line (the trainer's is
training/cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from vitrine.cli import setting_flag


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("serve", help="serve recommendations (the embedded Redis unless one is set)")
    _server_flags(s)
    setting_flag(s, "--workers", "server.workers", type=int, help="processes sharing the port")
    s.set_defaults(handler=_serve)

    d = subparsers.add_parser("demo", help="synthetic store → train → serve, with example calls")
    _server_flags(d)
    d.add_argument("--items", type=int, default=5_000)
    d.add_argument("--users", type=int, default=2_000)
    d.add_argument("--n-events", type=int, default=200_000)
    d.set_defaults(handler=_demo)

    c = subparsers.add_parser("config", help="print every setting's effective value and where it came from")
    c.add_argument("--markdown", action="store_true", help="print docs/configuration.md's settings table")
    c.set_defaults(handler=_config)

    o = subparsers.add_parser("openapi", help="print the OpenAPI document the server serves")
    o.add_argument("--markdown", action="store_true", help="print docs/api.md's generated endpoint tables")
    o.set_defaults(handler=_openapi)

    e = subparsers.add_parser("events", help="export the event stream into the Parquet event archive")
    e.add_argument("action", choices=("export",))
    setting_flag(e, "--archive", "data.archive", help="archive root (default: the data.archive setting, "
                                                      "else <data.dir>/archive)")
    setting_flag(e, "--redis-url", "redis.url", help="Redis to export from (default: the configured one)")
    setting_flag(e, "--data-dir", "data.dir", help="data directory of the embedded Redis")
    setting_flag(e, "--prefix", "redis.prefix", help="key prefix the server was run with")
    e.add_argument("--keep", action="store_true", help="don't trim exported entries from the stream")
    e.add_argument("--batch", type=int, default=10_000, help="stream entries per archived batch (commit)")
    e.set_defaults(handler=_export)

    cat = subparsers.add_parser("catalog", help="export the live catalog to JSON Lines for training")
    cat.add_argument("action", choices=("export",))
    cat.add_argument("--out", type=Path, required=True, help="the .jsonl file to write")
    setting_flag(cat, "--redis-url", "redis.url", help="Redis to export from (default: the configured one)")
    setting_flag(cat, "--data-dir", "data.dir", help="data directory of the embedded Redis")
    setting_flag(cat, "--prefix", "redis.prefix", help="key prefix the server was run with")
    cat.set_defaults(handler=_export_catalog)

    r = subparsers.add_parser("rules", help="check a merchandising rules file (docs/catalog.md)")
    r.add_argument("action", choices=("check",))
    r.add_argument("file", type=Path)
    r.set_defaults(handler=_check_rules)


def _server_flags(p: argparse.ArgumentParser) -> None:
    setting_flag(p, "--host", "server.host")
    setting_flag(p, "--port", "server.port", type=int)
    setting_flag(p, "--store", "model.store", help="model store directory")
    setting_flag(p, "--data-dir", "data.dir", help="data directory (the embedded Redis lives in it)")


def _serve(args: argparse.Namespace) -> int:
    from server.ops.workers import serve

    return serve(args.settings)


def _demo(args: argparse.Namespace) -> int:
    from vitrine.demo import run_demo

    return run_demo(args.settings, items=args.items, users=args.users, events=args.n_events)


def _config(args: argparse.Namespace) -> int:
    from server.settings import env_name, fields, markdown_table

    if args.markdown:
        print(markdown_table())
        return 0
    settings, sources = args.settings, args.loaded.sources
    rows = []
    for section, field, _ in fields():
        value = getattr(getattr(settings, section), field)
        if field in ("admin_token", "public_keys", "webhook_secret") and value:
            value = "***"
        elif section == "redis" and field == "url" and value:
            from server.store.wire import redact

            value = redact(value)
        if isinstance(value, list):
            value = ",".join(value) or None
        rows.append((f"{section}.{field}", "unset" if value is None else str(value),
                     sources[f"{section}.{field}"], env_name(section, field)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for name, value, source, env in rows:
        print(f"{name:<{widths[0]}}  {value:<{widths[1]}}  {source:<{widths[2]}}  {env}")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    import time

    import orjson

    from server.app import API_GROUPS
    from server.web.openapi import as_served, document, markdown

    if args.markdown:
        sys.stdout.write(markdown(API_GROUPS, args.settings))
    else:
        doc = as_served(document(API_GROUPS, args.settings), int(time.time() * 1000))
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from models.archive import ArchiveError
    from server.events.export import ExportBusy, export_events
    from server.store.connections import Connections
    from server.store.embedded import EmbeddedRedisError, redis_server
    from server.store.keys import Keys

    settings = args.settings
    redis, root = settings.redis, settings.data.archive_root

    async def run() -> dict[str, int]:
        with redis_server(redis.url, settings.data.dir) as url:
            # Seconds, not the server's milliseconds: an export reads batches of thousands.
            conn = Connections(url, cluster=redis.cluster, timeout_s=max(redis.timeout_s, 10.0))
            try:
                return await export_events(conn.client, root, Keys(redis.prefix, redis.stream_shards),
                                           trim=not args.keep, batch=max(args.batch, 1))
            finally:
                await conn.aclose()

    try:
        written = asyncio.run(run())
    except ExportBusy as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError, EmbeddedRedisError, ArchiveError) as exc:
        print(f"vitrine: cannot export: {exc}", file=sys.stderr)
        return 2
    if not written:
        print(f"nothing new to export (archive {root})")
    for sub, n in written.items():
        print(f"exported {n:,} events to {sub}")
    return 0


def _export_catalog(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from server.catalog.export import export_catalog
    from server.catalog.store import CatalogStore
    from server.store.connections import Connections
    from server.store.embedded import EmbeddedRedisError, redis_server
    from server.store.records import StoreUnavailable

    settings = args.settings
    redis = settings.redis

    async def run() -> int:
        with redis_server(redis.url, settings.data.dir) as url:
            conn = Connections(url, cluster=redis.cluster, timeout_s=max(redis.timeout_s, 10.0))
            try:
                return await export_catalog(CatalogStore(conn.wire, redis), args.out)
            finally:
                await conn.aclose()

    try:
        n = asyncio.run(run())
    except (RedisError, OSError, EmbeddedRedisError, StoreUnavailable) as exc:
        print(f"vitrine: cannot export the catalog: {exc}", file=sys.stderr)
        return 2
    print(f"exported {n:,} live catalog items to {args.out}")
    return 0


def _check_rules(args: argparse.Namespace) -> int:
    from server.merchandising.rules import RuleError, parse_rules, read_rules_file

    try:
        rules = parse_rules(read_rules_file(args.file))
    except RuleError as exc:
        for e in exc.errors:
            print(f"{args.file}: rule {e['index']} ({e['id'] or 'no id'}): {e['field']}: {e['error']}",
                  file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: {len(rules)} rules, all valid")
    return 0

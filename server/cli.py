"""`vitrine serve` and `vitrine demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("serve", help="serve recommendations (embedded Redis unless REDIS_URL)")
    _server_args(s)
    s.add_argument("--workers", type=int, help="processes sharing the port (SO_REUSEPORT)")
    s.set_defaults(handler=_serve)

    d = subparsers.add_parser("demo", help="synthetic store → train → serve, with example calls")
    _server_args(d)
    d.add_argument("--items", type=int, default=5_000)
    d.add_argument("--users", type=int, default=2_000)
    d.add_argument("--n-events", type=int, default=200_000)
    d.set_defaults(handler=_demo)


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--store", type=Path, dest="model_store", help="model store directory")
    p.add_argument("--data-dir", type=Path, help="embedded Redis data directory")


def _settings(args: argparse.Namespace, **defaults):
    from server.settings import Settings, SettingsError

    overrides = {k: getattr(args, k, None) for k in ("host", "port", "model_store", "data_dir", "workers")}
    try:
        settings = Settings.from_env(**defaults)
        return settings.with_(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        print(f"vitrine: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _serve(args: argparse.Namespace) -> int:
    from server.workers import serve

    return serve(_settings(args))


def _demo(args: argparse.Namespace) -> int:
    from server.demo import run_demo

    settings = _settings(args, model_store=Path("var/models"), data_dir=Path("var"))
    return run_demo(settings, items=args.items, users=args.users, events=args.n_events)

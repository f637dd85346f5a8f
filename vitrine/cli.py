"""`vitrine <command>`: each part of the project registers its own subcommands.

The dispatcher imports nothing heavy itself: each module's `register(subparsers)` adds its
commands with a handler, and the handler imports what it needs when it runs, so `vitrine serve`
never loads the trainer's dependencies (DESIGN.md: the online path stays light).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that contribute subcommands, each exposing `register(subparsers)`.
COMMAND_MODULES = ("training.cli", "server.cli", "server.export")


def _pin_native_threads() -> None:
    # One BLAS/OpenMP thread per process unless told otherwise: the server's event loop and
    # implicit's own thread pool both do worse when OpenBLAS spawns threads of its own.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    _pin_native_threads()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

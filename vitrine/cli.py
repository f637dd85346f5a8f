"""`vitrine <command>`: each part of the project registers its own subcommands.

The dispatcher imports nothing heavy itself: each module's `register(subparsers)` adds its
commands with a handler, and the handler imports what it needs when it runs, so `vitrine serve`
never loads the trainer's dependencies (DESIGN.md: the online path stays light).

Every command reads the same configuration (server/settings.py): defaults, `--config FILE`
(or $VITRINE_CONFIG), the environment, then the command's own flags. A flag that sets a
setting is declared with `setting_flag(...)`; the handler finds the result in `args.settings`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

# Modules that contribute subcommands, each exposing `register(subparsers)`.
COMMAND_MODULES = ("training.cli", "vitrine.commands")
_SETTING = "setting:"
# Installed by `vitrine[train]` only: a command that needs them says so instead of a traceback.
TRAINER_LIBRARIES = {"implicit", "scipy", "pyarrow", "tqdm", "sklearn", "pyspark"}


def setting_flag(parser: argparse.ArgumentParser, flag: str, setting: str, **kwargs) -> None:
    """A command-line flag that overrides the setting `section.field`."""
    parser.add_argument(flag, dest=_SETTING + setting, default=None, **kwargs)


def _pin_native_threads() -> None:
    # One BLAS/OpenMP thread per process unless told otherwise: the server's event loop and
    # implicit's own thread pool both do worse when OpenBLAS spawns threads of its own.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML configuration file (default: $VITRINE_CONFIG); see docs/configuration.md")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def load_settings(args: argparse.Namespace, parser: argparse.ArgumentParser):
    from server.settings import SettingsError, load

    overrides, sources = {}, {}
    for dest, value in vars(args).items():
        if dest.startswith(_SETTING) and value is not None:
            name = dest.removeprefix(_SETTING)
            overrides[name], sources[name] = value, f"flag ({args.command})"
    try:
        loaded = load(file=args.config, overrides=overrides, override_sources=sources)
    except SettingsError as exc:
        parser.exit(2, f"vitrine: bad setting: {exc}\n")
    for message in loaded.unknown:
        print(f"vitrine: warning: {message}", file=sys.stderr)
    return loaded


def main(argv: list[str] | None = None) -> int:
    _pin_native_threads()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.loaded = load_settings(args, parser)
    args.settings = args.loaded.settings
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in TRAINER_LIBRARIES:
            print(f"vitrine: `{args.command}` needs the trainer ({exc.name} is missing): "
                  "pip install 'vitrine[train]'", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

"""The Dockerfile and .dockerignore read as the builder reads them: what the tests check and
what tests/server/test_server_install.py replays without a Docker engine."""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Instruction:
    keyword: str
    args: str


def instructions(path: Path = ROOT / "Dockerfile") -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return out


def stages(path: Path = ROOT / "Dockerfile") -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for ins in instructions(path):
        if ins.keyword == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether `relative` (a path in the build context) is left out by .dockerignore's patterns
    (the subset used here: names, globs, `**/` prefixes; a match on a directory covers its files)."""
    parts = relative.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        bare = pattern.removeprefix("**/")
        for i in range(1, len(parts) + 1):
            head = "/".join(parts[:i])
            if fnmatch.fnmatch(head, pattern) or (pattern != bare and fnmatch.fnmatch(parts[i - 1], bare)):
                return True
    return False


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_context(dest: Path) -> Path:
    """Lay out in `dest` what the build stage's COPY lines copy from the context (the
    .dockerignore applied): the source tree `pip install .` sees in the image."""
    patterns = dockerignore()
    for ins in stages()[0]:
        if ins.keyword != "COPY" or ins.args.startswith("--from"):
            continue
        *sources, _ = json.loads(ins.args) if ins.args.startswith("[") else ins.args.split()
        for source in sources:
            src = ROOT / source
            files = [src] if src.is_file() else [p for p in src.rglob("*") if p.is_file()]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if not ignored(relative, patterns):
                    (dest / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, dest / relative)
    return dest

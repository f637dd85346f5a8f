"""The contract modules load in the online install: no scipy, implicit, pyarrow, trainer or server."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("scipy", "implicit", "pyarrow", "training", "server"):
            raise ImportError("the online install has no " + name)

sys.meta_path.insert(0, Block())
import models.artifact, models.foldin, models.itemitem, models.ranking  # noqa: E401
"""


def test_models_import_without_the_trainers_dependencies():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

"""The container without a Docker engine: the Dockerfile passes hadolint and has the shape the
README promises (multi-stage, server-only, non-root, a HEALTHCHECK), the .dockerignore keeps
local state out, compose.yaml runs Redis durably beside the server. The image's install steps
are replayed in a fresh venv by tests/server/test_server_install.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.container import ROOT, dockerignore, ignored, stages


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_server_only_non_root_with_a_healthcheck():
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    args = {i.args.split("=")[0]: i.args.partition("=")[2] for i in build if i.keyword == "ARG"}
    assert args.get("EXTRAS") == '""'  # the default image: `pip install .`, no trainer
    keywords = [i.keyword for i in final]
    user = next(i.args for i in reversed(final) if i.keyword == "USER")
    assert user not in ("root", "0") and keywords.index("USER") < keywords.index("CMD")
    healthcheck = next(i.args for i in final if i.keyword == "HEALTHCHECK")
    assert "/healthz" in healthcheck and "--timeout" in healthcheck
    # Only the built virtual environment crosses into the final stage, not the source tree.
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/vitrine /opt/vitrine"]
    assert json.loads(next(i.args for i in final if i.keyword == "CMD")) == ["vitrine", "serve"]


def test_the_dockerignore_keeps_local_state_and_history_out():
    patterns = dockerignore()
    for path in ("models/store/CURRENT", "models/store/20260101T000000Z-x/manifest.json",
                 "var/redis/a.aof", ".venv/bin/python", ".git/HEAD", "server/__pycache__/app.cpython-311.pyc",
                 "tests/conftest.py"):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "models/artifact.py", "server/store/lua/read.lua",
                 "training/pipeline.py"):
        assert not ignored(path, patterns), path


def test_compose_runs_redis_with_an_aof_and_the_server_against_it():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "--maxmemory-policy noeviction" in redis
    server = services["vitrine"]
    assert server["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert server["depends_on"]["redis"]["condition"] == "service_healthy"
    assert any(v.endswith(":/srv/models") for v in server["volumes"])
    train = services["train"]
    assert train["build"]["args"]["EXTRAS"] == "train" and train["profiles"] == ["train"]
    assert "# retrain:" in (ROOT / "compose.yaml").read_text()

"""The image's install, replayed without a Docker engine: the Dockerfile's build context (its COPY
lines, .dockerignore applied) installed with `pip install .` in a fresh virtual environment
serves a published model, passes the image's HEALTHCHECK command, and carries none of the
trainer's libraries (DESIGN.md: the online install stays light)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.container import build_context, stages

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_the_image_install_serves_a_model_without_the_trainer(tmp_path, model_store):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    context = build_context(tmp_path / "context")
    assert not (context / "models" / "store").exists() and (context / "server" / "store" / "lua").is_dir()
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(context)], check=True, cwd=tmp_path)
    python = str(venv / "bin" / "python")
    for library in ("implicit", "scipy", "pyarrow"):
        probe = subprocess.run([python, "-c", f"import {library}"], capture_output=True, cwd=tmp_path)
        assert probe.returncode != 0, f"{library} is installed by vitrine[server]"
    train = subprocess.run([str(venv / "bin" / "vitrine"), "train"], capture_output=True, text=True,
                           cwd=tmp_path)
    assert train.returncode == 2 and "vitrine[train]" in train.stderr

    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(venv / "bin" / "vitrine"), "serve", "--port", str(port), "--store",
                                   str(model_store), "--data-dir", str(tmp_path / "data")], cwd=tmp_path,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        status, body = _get(f"http://127.0.0.1:{port}/v1/recommendations?session_id=s&k=5")
        assert status == 200 and b'"rung"' in body
        # The image's HEALTHCHECK command, as Docker would run it in the container.
        healthcheck = next(i.args for i in stages()[-1] if i.keyword == "HEALTHCHECK")
        command = json.loads(healthcheck[healthcheck.index("CMD ") + 4:])
        assert command[0] == "python"
        env = {**os.environ, "VITRINE_SERVER_PORT": str(port)}
        assert subprocess.run([python, *command[1:]], env=env, timeout=10).returncode == 0
        env["VITRINE_SERVER_PORT"] = str(_free_port())  # nothing there: unhealthy
        unhealthy = subprocess.run([python, *command[1:]], env=env, capture_output=True, timeout=10)
        assert unhealthy.returncode != 0
    finally:
        server.terminate()
        server.wait(20)

"""Headless Chromium (Debian's `chromium`) for the pages' tests: the rendered DOM of a page
after its scripts ran, and screenshots. Without the binary the tests skip, unless
REQUIRE_BROWSER_TESTS=1 (CI sets it, after installing chromium) makes that a failure."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return binary


async def _run(args: list[str], timeout_s: float) -> bytes:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return out


async def rendered_dom(url: str, profile: Path, *, budget_ms: int = 8_000, timeout_s: float = 60) -> str:
    """The page's DOM once its scripts (and the fetches they made) have run."""
    args = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
            "--dump-dom", url]
    return (await _run(args, timeout_s)).decode()


async def screenshot(url: str, out: Path, profile: Path, *, size: str = "1200,900",
                     budget_ms: int = 8_000, timeout_s: float = 60) -> Path:
    args = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
            f"--window-size={size}", f"--screenshot={out}", url]
    await _run(args, timeout_s)
    return out

"""Screenshots of the pages people look at: the demo shop (after a shopper browsed a
department), the operator dashboard and an experiment's results page.

    .venv/bin/python -m vitrine.screenshots docs/img     # needs vitrine[test] and chromium

Trains a small synthetic store, serves it in-process with an embedded Redis, drives the shop in
headless Chromium (Playwright, Debian's binary) and writes shop.png, dashboard.png and
results.png to the directory given.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

TOKEN = "screenshots"


async def _capture(out: Path, work: Path) -> list[Path]:
    import aiohttp
    from aiohttp.test_utils import TestServer
    from playwright.async_api import async_playwright

    from models import artifact
    from server.app import create_app
    from server.settings import Settings
    from server.store.embedded import EmbeddedRedis
    from training.config import TrainConfig
    from training.pipeline import train
    from training.synthetic import generate_store
    from vitrine.demo import write_demo_experiments

    store = generate_store(n_items=2_000, n_users=1_000, n_events=60_000, seed=0)
    train(store.log, TrainConfig(store=work / "models", eval_seeds=1, eval_temporal=False))
    model = artifact.load_current(work / "models")
    doc = write_demo_experiments(work, [c for c in model.items.category if c])
    redis = EmbeddedRedis(work / "redis").start()
    settings = Settings().replace(**{"model.store": work / "models", "redis.url": redis.url, "data.dir": work,
                                     "server.demo": True, "server.admin_token": TOKEN,
                                     "experiments.file": doc, "recommend.trending_refresh_s": 0.2})
    server = TestServer(create_app(settings))
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    shots = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1200, "height": 900})

            async def go(url: str) -> None:
                await page.goto(url)
                await page.wait_for_selector('main[data-ready="true"]')

            await go(f"{base}/demo/")
            picks = [(i, c) for i, c in zip(model.items.ids, model.items.category, strict=True)
                     if c and c.startswith("sports/")][:3]
            for item, category in picks:
                await go(f"{base}/demo/#/p/{item}?c={category}")
            await go(f"{base}/demo/#/")
            await page.wait_for_timeout(500)
            await go(f"{base}/demo/#/")
            shots.append(out / "shop.png")
            await page.screenshot(path=shots[-1])

            # Some traffic for the dashboard's charts, and exposures and purchases for the results.
            async with aiohttp.ClientSession(base) as http:
                for n in range(300):
                    resp = await http.get("/v1/variants", params={"slot": "promo", "session_id": f"u{n}"})
                    variant = (await resp.json())["slots"]["promo"]["variant"]
                    await http.get("/v1/recommendations", params={"session_id": f"u{n}", "k": 8})
                    if n % (4 if variant == "ten-off" else 6) == 0:
                        await http.post("/v1/events", json={
                            "event_id": f"b{n}", "session_id": f"u{n}", "type": "purchase",
                            "item_id": model.items.ids[n], "price": 20.0, "ts": _now()})
            await page.goto(f"{base}/dashboard#token={TOKEN}")
            await page.wait_for_selector('body[data-rendered="true"]')
            async with aiohttp.ClientSession(base) as http:
                for n in range(400):
                    await http.get("/v1/recommendations", params={"session_id": f"d{n % 50}", "k": 8})
            await page.wait_for_timeout(6_000)
            shots.append(out / "dashboard.png")
            await page.screenshot(path=shots[-1], full_page=True)

            await page.goto(f"{base}/experiments/promo-copy#token={TOKEN}")
            await page.wait_for_selector('body[data-rendered="true"]')
            shots.append(out / "results.png")
            await page.screenshot(path=shots[-1])
            await browser.close()
    finally:
        await server.close()
        redis.stop()
    return shots


def _now() -> int:
    import time

    return int(time.time() * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="directory for the PNG files")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vitrine-shots-") as work:
        for path in asyncio.run(_capture(args.out, Path(work))):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()

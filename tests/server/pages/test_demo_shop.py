"""The demo shop in headless Chromium, clicked through like a shopper: recommendations and the
hero follow what was browsed, a purchase leaves the recommendations, and the events the page
sent are stored exactly once, even across a network drop."""

import collections

import msgspec
import pytest
import redis

from models import artifact
from models.events import Event
from server.app import create_app
from tests.browser import FLAGS, chromium
from tests.server.conftest import make_settings
from vitrine.demo import write_demo_experiments

playwright = pytest.importorskip("playwright.async_api")  # in the test extra: present in CI


@pytest.fixture
async def shop(aiohttp_server, model_store, redis_url, tmp_path):
    model = artifact.load_current(model_store)
    doc = write_demo_experiments(tmp_path, [c for c in model.items.category if c])
    settings = make_settings(model_store, redis_url, tmp_path,
                             **{"server.demo": True, "experiments.file": doc})
    server = await aiohttp_server(create_app(settings))
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium(),
                                          args=[f for f in FLAGS if f != "--headless"])
        context = await browser.new_context()
        page = await context.new_page()
        # Every event the shop queues, as the client saw it (to compare with what Redis stored).
        await page.add_init_script("""window.__sent = [];""")
        yield page, context, f"http://127.0.0.1:{server.port}/demo/", model
        await browser.close()


async def _goto(page, url):
    await page.goto(url)
    await page.wait_for_selector('main[data-ready="true"]')


async def _open(page, hash_):
    await page.evaluate("h => { document.getElementById('view').dataset.ready = 'false'; "
                        "location.hash = h; }", hash_)
    await page.wait_for_selector('main[data-ready="true"]')


async def _items(page, placement):
    return await page.eval_on_selector_all(f'section[data-placement="{placement}"] article',
                                           "els => els.map(e => [e.dataset.item, e.dataset.category])")


async def _track_ids(page):
    await page.evaluate("""() => { const t = window.vitrine.track.bind(window.vitrine);
        window.vitrine.track = (type, fields) => {
            const id = t(type, fields); window.__sent.push(id); return id; }; }""")


async def test_the_shop_follows_the_shopper_and_stores_each_event_once(shop, redis_url):
    page, context, url, model = shop
    await _goto(page, url)
    await _track_ids(page)
    assert await page.get_attribute('[data-slot="home_hero"]', "data-source") == "default"
    before = await _items(page, "home")
    assert len(before) == 12

    # Three products of one department, by following the shop's own links.
    department = collections.Counter(c.split("/")[0] for _, c in before).most_common()[-1][0]
    picks = [(i, c) for i, c in zip(model.items.ids, model.items.category, strict=True)
             if c and c.startswith(department + "/") and model.items.in_stock[model.item_index[i]]][:3]
    for item, category in picks:
        await _open(page, f"#/p/{item}?c={category}")
        assert len(await _items(page, "product")) > 0
    await _open(page, "#/")
    hero = await page.get_attribute('[data-slot="home_hero"]', "data-rule")
    assert hero == f"browsing-{department}"
    after = await _items(page, "home")
    share = lambda items: sum(c.startswith(department + "/") for _, c in items) / len(items)  # noqa: E731
    assert share(after) > share(before) and share(after) >= 0.3

    # A purchase: the bought item leaves the recommendations.
    bought = next(i for i, _ in after if not model.items.consumable[model.item_index[i]])
    category = dict(after)[bought]
    await _open(page, f"#/p/{bought}?c={category}")
    await page.click("#add-to-cart")
    await _open(page, "#/cart")
    await page.click("#buy")
    await page.wait_for_selector("text=Thank you!")
    await _open(page, "#/")
    assert bought not in [i for i, _ in await _items(page, "home")]

    # The network drops for a moment: what the shopper does meanwhile is queued, then sent once.
    await context.set_offline(True)
    await page.evaluate("ids => ids.forEach(([i, c]) => window.vitrine.view(i, {category: c}))",
                        [[i, c] for i, c in after[:4]])
    await page.wait_for_timeout(600)  # a send fails, the client backs off
    assert await page.evaluate("window.vitrine.pending") == 4
    await context.set_offline(False)
    await page.evaluate("window.vitrine.flush()")
    await page.wait_for_function("window.vitrine.pending === 0", timeout=15_000)

    sent = await page.evaluate("window.__sent")
    session = await page.evaluate("window.vitrine.sessionId")
    client = redis.Redis.from_url(redis_url)
    events = [msgspec.msgpack.decode(f[b"e"], type=Event) for _, f in client.xrange("vt:{g:0}:stream")]
    client.close()
    stored = [e.event_id for e in events if e.session_id == session]
    assert len(stored) == len(set(stored))  # each once
    # views, add to cart, purchase, the offline views: all there
    assert set(sent) <= set(stored) and len(sent) >= 3 + 1 + 1 + 4

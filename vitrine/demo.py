"""`vitrine demo`: a synthetic store, trained and served with the embedded Redis. The one place
that runs the trainer and the server in one process (the CLI composes the two sides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from server.settings import Settings

# The hero banner of each department (the synthetic store's top-level categories).
HEROES = {
    "beauty": ("Glow season", "New skincare, picked for you", "#7a2e5c"),
    "books": ("Stories for long evenings", "Bestsellers and hidden gems", "#5c3d1e"),
    "electronics": ("Upgrade your setup", "Headphones, screens and gadgets", "#12355b"),
    "fashion": ("The new collection", "Autumn looks, just in", "#4a2545"),
    "grocery": ("Fresh this week", "Pantry favourites, delivered", "#2f5d2a"),
    "home": ("Make it home", "Cosy textiles and clever storage", "#6b4226"),
    "sports": ("Run further", "Shoes and gear for every pace", "#0b5345"),
    "toys": ("Play time", "Games the whole family loves", "#8a3b12"),
}


def demo_experiments(categories: list[str]) -> dict:
    """The demo's experiments document: a hero banner per department chosen by the shopper's live
    affinity (a personalization rule), and an A/B test on the promo slot."""
    departments = sorted({c.split("/")[0] for c in categories})
    rules = []
    for dept in departments:
        title, subtitle, color = HEROES.get(dept, (dept.title(), f"The best of {dept}", "#12355b"))
        rules.append({"key": f"browsing-{dept}", "slot": "home_hero",
                      "condition": {"top_category": {"$regex": f"^{dept}/"}},
                      "content": {"title": title, "subtitle": subtitle, "color": color, "department": dept}})
    welcome = {"title": "Welcome to the demo shop",
               "subtitle": "Browse a department: the shop follows what you look at."}
    promo = [{"key": "free-shipping", "weight": 0.5, "content": {"text": "Free shipping this week."}},
             {"key": "ten-off", "weight": 0.5, "content": {"text": "10% off your first order."}}]
    return {
        "slots": [{"key": "home_hero", "default": welcome}, {"key": "promo"}],
        "experiments": [{"key": "promo-copy", "slots": ["promo"], "status": "running", "variants": promo,
                         "goal": {"event_type": "purchase", "revenue": True}}],
        "rules": rules,
    }


def write_demo_experiments(directory: Path, categories: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo-experiments.json"
    path.write_bytes(orjson.dumps(demo_experiments(categories), option=orjson.OPT_INDENT_2))
    return path


def _examples(base: str, user: str, item: str) -> list[str]:
    return [
        f"curl -s '{base}/v1/recommendations?placement=home&session_id=demo-session&k=5'",
        f"curl -s '{base}/v1/recommendations?placement=home&user_id={user}&k=5'",
        f"curl -s '{base}/v1/recommendations?placement=product&item_id={item}&k=5'",
        f"curl -s '{base}/v1/items/{item}/similar?k=5'",
        f"curl -s '{base}/v1/trending?k=5'",
        f"curl -s '{base}/v1/models/current'",
    ]


def run_demo(settings: Settings, *, items: int, users: int, events: int) -> int:
    from models import artifact
    from training.config import TrainConfig
    from training.pipeline import train
    from training.report import format_report
    from training.synthetic import generate_store

    store = generate_store(n_items=items, n_users=users, n_events=events, seed=0)
    print(f"demo: synthetic store with {len(store.log):,} events, {items:,} items, {users:,} customers")
    result = train(store.log, TrainConfig(store=settings.model.store, eval_seeds=2))
    print(format_report(result.manifest))
    model = artifact.load(result.path)
    in_stock_popularity = model.popularity * model.items.in_stock  # out-of-stock items are filtered
    item = model.items.ids[int(in_stock_popularity.argmax())]
    category = model.items.category[model.item_index[item]] or ""
    base = f"http://{settings.server.host}:{settings.server.port}"
    print("\ntry (in another terminal):")
    # The event's ts must be now: build it with the shell's clock.
    print(f"  curl -s -X POST {base}/v1/events -H 'Content-Type: application/json' -d "
          f"'{{\"event_id\":\"demo-1\",\"session_id\":\"demo-session\",\"type\":\"view\","
          f"\"item_id\":\"{item}\",\"category\":\"{category}\",\"ts\":'$(date +%s000)'}}'")
    user = model.user_ids[int(np.argmax(np.linalg.norm(model.user_factors, axis=1)))]
    for line in _examples(base, user, item):
        print(f"  {line}")
    print(f"  open {base}/openapi.json for the whole API")
    experiments = write_demo_experiments(Path(settings.data.dir), [c for c in model.items.category if c])
    print(f"\nthe demo shop: open {base}/demo/  (operators: {base}/dashboard)\n", flush=True)
    from server.ops.workers import serve

    return serve(settings.replace(**{"server.workers": 1, "server.demo": True,
                                     "experiments.file": experiments}))

"""`vitrine demo`: a synthetic store, trained and served with the embedded Redis. The one place
that runs the trainer and the server in one process (the CLI composes the two sides)."""

from __future__ import annotations

import numpy as np

from server.settings import Settings


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
    print(f"  open {base}/openapi.json for the whole API\n")
    from server.ops.workers import serve

    return serve(settings.replace(**{"server.workers": 1}))

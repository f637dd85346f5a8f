"""What customers (#23) add to a recommendation request's CPU, for a signed-in shopper with a
consent record, live purchases and a published purchase history with consumables: measured
piece by piece in one process, in alternating rounds (this VM's speed drifts; compare within
the run).

    .venv/bin/python benchmarks/customers_cost.py

- read: the shopper's one pipelined round trip with and without the customer commands (the
  user's and the session's consent, the purchases since the model): client CPU per request;
- prepare: consent resolved, consumables bought too recently hidden (every placement);
- segment: the live segment for targeting (only when experiments decide the page);
- buy_again: the placement's whole ranking (only for that placement).
Writes benchmarks/results/customers_cost.md.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from models import artifact  # noqa: E402
from models.events import Event  # noqa: E402
from server.customers.records import ConsentRecord  # noqa: E402
from server.customers.rules import SegmentRulesSnapshot  # noqa: E402
from server.customers.service import Customers  # noqa: E402
from server.customers.serving import prepare, rank_buy_again  # noqa: E402
from server.customers.store import CustomerStore  # noqa: E402
from server.experiments.store import ExperimentStore  # noqa: E402
from server.ops.models import ModelHolder  # noqa: E402
from server.recommend.retrieval import Query  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.shopper import read_shopper  # noqa: E402
from server.store.connections import Connections  # noqa: E402
from server.store.embedded import EmbeddedRedis  # noqa: E402
from server.store.keys import Keys  # noqa: E402
from server.store.sessions import SessionStore  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.pipeline import train  # noqa: E402
from training.synthetic import generate_store  # noqa: E402

DAY_MS = 86_400_000
N, ROUNDS = 500, 30  # short alternating rounds: this VM's speed drifts within seconds
ROWS = (("read", "the shopper's read alone", "every request"),
        ("read+customers", "the read with their consent (user, session) and purchases since the model",
         "every request"),
        ("prepare", "prepare: consent, consumables not yet due hidden (memo hit)", "every request"),
        ("prepare cold", "the same, computed (a customer's first request in a minute)", "once a minute"),
        ("segment", "live segment for targeting (memo hit)", "pages experiments decide"),
        ("segment cold", "the same, computed", "once a minute"),
        ("buy_again", "buy_again ranking", "`placement=buy_again` only"))


def cpu_us(fn, n: int = N) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e6


async def acpu_us(fn, n: int = N) -> float:
    t0 = time.process_time()
    for _ in range(n):
        await fn()
    return (time.process_time() - t0) / n * 1e6


async def run(tmp: Path) -> list[str]:
    end = int(time.time() * 1000) // DAY_MS * DAY_MS
    store = generate_store(n_items=5000, n_users=5000, n_events=1_000_000, seed=0, days=365,
                           customer_types=True, start_ms=end - 365 * DAY_MS)
    train(store.log, TrainConfig(store=tmp / "models", evaluate=False))
    art = artifact.load_current(tmp / "models")
    holder = ModelHolder(tmp / "models")
    await holder.reload()
    served = holder.current
    cycles = art.repurchase["cycle_days"]
    # A customer with a long published history holding consumables: the costly case.
    indptr = art.repurchase["user_indptr"]
    rows = np.argsort(-np.diff(indptr))[:50]
    bought = art.repurchase["items"]
    row = int(next(r for r in rows if np.isfinite(cycles[bought[indptr[r]:indptr[r + 1]]]).any()))
    user = art.user_ids[row]
    redis = EmbeddedRedis(tmp / "redis").start()
    settings = Settings().replace(**{"redis.url": redis.url, "data.dir": tmp})
    conn = Connections.for_settings(redis.url, settings.redis)
    try:
        sessions = SessionStore(conn.wire, settings.redis, settings.customers, settings.triggers)
        experiments = ExperimentStore(conn.wire, conn.client, settings.redis)
        cstore = CustomerStore(conn.wire, conn.client, settings.redis, settings.customers)
        rules = SegmentRulesSnapshot(conn.client, cstore.keys)
        customers = Customers(cstore, rules, settings, lambda: served)
        now = int(time.time() * 1000)
        items = art.items.ids
        events = [Event(event_id=f"v{n}", session_id="s1", user_id=user, type="view", ts=now - 1000 + n,
                        item_id=items[n]) for n in range(20)]
        events += [Event(event_id=f"p{n}", session_id="s1", user_id=user, type="purchase", ts=now - 500 + n,
                         item_id=items[n], price=10.0) for n in range(3)]
        await sessions.ingest(events, now_ms=now, known=served.model)
        record = ConsentRecord(True, now, ("marketing",))
        await cstore.set_consent([Keys.shopper_tag(user, None)], record, now)
        as_of = customers.as_of_ms(served)

        shopper = {"user_id": user, "session_id": "s1", "now_ms": now, "timeout_s": 1.0, "assignments": False}

        def plain():
            return read_shopper(sessions, experiments, **shopper)

        def with_customers():
            return read_shopper(sessions, experiments, **shopper, customers=cstore, as_of_ms=as_of)

        state = await with_customers()
        assert state.customer is not None and state.customer.purchases, "live purchases read"
        q = Query(placement="home", user_id=user, session_id="s1", k=10, now_ms=now)
        qa = Query(placement="buy_again", user_id=user, session_id="s1", k=10, now_ms=now)
        hidden = len(customers.not_yet_due(served, user, state.customer, now))
        names = ("read", "read+customers", "prepare", "prepare cold", "segment", "segment cold", "buy_again")
        results: dict[str, list[float]] = {k: [] for k in names}

        def cold(fn):
            def run():
                customers._memo.clear()  # the first request of a customer in a minute
                return fn()
            return run

        for _ in range(ROUNDS):  # alternating, so a slow phase of the VM hits both sides
            results["read"].append(await acpu_us(plain))
            results["read+customers"].append(await acpu_us(with_customers))
            results["prepare"].append(cpu_us(lambda: prepare(customers, served, q, state)))
            results["prepare cold"].append(cpu_us(cold(lambda: prepare(customers, served, q, state))))
            results["segment"].append(cpu_us(lambda: customers.scores(served, user, state.customer, now)))
            results["segment cold"].append(cpu_us(cold(lambda: customers.scores(served, user, state.customer,
                                                                                 now))))
            prepared = prepare(customers, served, qa, state)
            results["buy_again"].append(cpu_us(lambda prepared=prepared: rank_buy_again(customers, served,
                                                                                        prepared)))
        med = {k: statistics.median(v) for k, v in results.items()}
        read_extra = statistics.median(a - b for a, b in zip(results["read+customers"], results["read"],
                                                              strict=True))
        spread = {k: (min(v), max(v)) for k, v in results.items()}
    finally:
        await conn.aclose()
        redis.stop()
    history = int(indptr[row + 1] - indptr[row])
    added = read_extra + med["prepare"]
    cold_added = read_extra + med["prepare cold"]
    return [
        "# What customers add to a request's CPU",
        "",
        "Command: `.venv/bin/python benchmarks/customers_cost.py`  ",
        f"Machine: 2 cores shared with other work, {platform.machine()}, Python {platform.python_version()}; "
        f"date {date.today()}",
        "",
        f"A signed-in customer with a consent record, 3 purchases since the model and {history} items in "
        f"their published history ({hidden} consumables hidden as not yet due); 5,000 items; the embedded "
        f"Redis on its Unix socket. Process CPU per call, median of {ROUNDS} alternating rounds of {N:,} "
        "calls (min–max in brackets).",
        "",
        "| piece | when | CPU µs per request |",
        "| --- | --- | ---: |",
        *(f"| {label} | {when} | {med[k]:.1f} ({spread[k][0]:.1f}–{spread[k][1]:.1f}) |"
          for k, label, when in ROWS),
        "",
        f"**Added to a recommendation request of such a customer: {added:.0f} µs** (the read's extra "
        f"{read_extra:.0f} µs, the median of the rounds' paired differences, plus prepare from the memo); "
        f"{cold_added:.0f} µs on "
        f"their first request in a minute, {cold_added + med['segment cold']:.0f} µs when experiments also "
        "decide that page. An anonymous shopper without purchases skips the history work.",
    ]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="vitrine-customers-cost-"))
    lines = asyncio.run(run(tmp))
    out = Path(__file__).parent / "results" / "customers_cost.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""The traffic model walks a shop as shoppers do: pages in order, each with its events, items
from the departments the shopper browses, carts that are bought, visits that end."""

import collections
import random
from urllib.parse import parse_qs, urlsplit

from loadtest.traffic import Catalog, Shopper, Traffic


def _catalog() -> Catalog:
    categories = [f"dept{d}/c{c}" for d in range(4) for c in range(3)]
    by_category = {c: [f"{c}-i{i}" for i in range(40)] for c in categories}
    category_of = {i: c for c, items in by_category.items() for i in items}
    items = [i for c in categories for i in by_category[c]]
    return Catalog(items=items, popular=items[:50], users=[f"u{n}" for n in range(100)],
                   categories=categories, manifest={}, by_category=by_category, category_of=category_of)


def test_a_visit_is_a_walk_of_pages_with_their_events():
    catalog = _catalog()
    for seed in range(30):
        shopper = Shopper(catalog, random.Random(seed))
        cart: list[str] = []
        views = 0
        while requests := shopper.page_view():
            names = [r[3] for r in requests]
            if "page:product" in names:
                view = requests[names.index("events:view")][2]
                page = parse_qs(urlsplit(requests[names.index("page:product")][1]).query)
                assert page["item_id"] == [view["item_id"]]  # the page shows the item it records
                assert view["category"] == catalog.category_of[view["item_id"]]
                views += 1
            if "events:add_to_cart" in names:
                cart.append(requests[0][2]["item_id"])
                page = parse_qs(urlsplit(requests[1][1]).query)
                assert page["item_id"][-1] == cart[-1]  # the cart placement shows the cart
            if "events:purchase" in names:
                assert [e["item_id"] for e in requests[0][2]["events"]] == cart  # what was in the cart
                cart = []
            for _, _, body, _ in requests:
                for event in (body or {}).get("events", [body] if body else []):
                    assert event["session_id"] == shopper.session_id
                    assert ("user_id" in event) == (shopper.user_id is not None)
        assert shopper.page_view() == []  # left


def test_shoppers_stay_in_their_departments_and_come_and_go():
    catalog = _catalog()
    traffic = Traffic(catalog, seed=3, concurrent=20)
    requests = [traffic.next() for _ in range(5_000)]
    names = collections.Counter(r[3] for r in requests)
    assert {"page:home", "page:category", "page:product", "page:cart", "events:view",
            "events:purchase", "recs:search"} <= set(names)
    sessions = {r[2]["session_id"] for r in requests if r[2] and "session_id" in r[2]}
    assert len(sessions) > 100  # visits end, new shoppers arrive
    shopper = Shopper(catalog, random.Random(1))
    viewed = []
    while (req := shopper.next_request()) is not None:
        if req[3] == "events:view":
            viewed.append(catalog.category_of[req[2]["item_id"]])
    if viewed:
        assert sum(c in shopper.interests for c in viewed) / len(viewed) >= 0.5


def test_a_client_that_reads_the_answers_clicks_what_it_was_shown():
    catalog = _catalog()
    shopper = Shopper(catalog, random.Random(5))
    shopper.shown(["dept3/c2-i7"])
    items = [shopper._item() for _ in range(200)]
    assert 60 <= items.count("dept3/c2-i7") <= 140

"""Trigger rules on the live event flow, as pure decisions (no I/O): what a shopper's state says
when a signal arrives or a cart timer falls due, and the trigger a marketing tool receives.

Rules (settings `triggers.*`, docs/customers.md):
- `cart_abandoned`: items in the cart, no purchase since the last add-to-cart, for
  `cart_abandoned_s` (a timer in Redis, so it survives restarts);
- `viewed_not_carted`: an item at or above `viewed_min_price` viewed `viewed_min_views` times
  within `viewed_window_s`, not in the cart (decided by shopper.lua as the event is applied);
- `first_visit`: a signed-in customer's first event of a new session while their live segment
  is one of `first_visit_segments` (dormant or at risk by default).

An *occasion* (the cart as of its last add, the item's viewing window, the session) fires at
most once: its trigger id is a digest of the shopper, the rule and the occasion.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import msgspec

CART_ABANDONED, VIEWED_NOT_CARTED, FIRST_VISIT = "cart_abandoned", "viewed_not_carted", "first_visit"


class SuggestedItem(msgspec.Struct):
    item_id: str
    reason: str


class Trigger(msgspec.Struct, omit_defaults=True):
    """What the trigger stream holds and the webhook receives (JSON)."""

    trigger_id: str  # stable per shopper, rule and occasion: receivers deduplicate on it
    rule: str
    at_ms: int  # when it fired
    occasion: str  # what it is about: `cart:<last add ms>`, `<item>:<window start ms>`, the session
    user_id: str | None = None
    session_id: str | None = None
    items: list[str] = []  # the cart's items, the viewed item
    suggested: list[SuggestedItem] = []  # from the ladder (personalized when it can)
    segment: str | None = None  # the customer's live segment, when known


def trigger_id(tag: str, rule: str, occasion: str) -> str:
    return hashlib.blake2b(f"{tag}\0{rule}\0{occasion}".encode(), digest_size=12).hexdigest()


def shopper_of(tag: str) -> tuple[str | None, str | None]:
    """(user_id, session_id) of a shopper tag `{u:…}` / `{s:…}`."""
    kind, value = tag[1], tag[3:-1]
    return (value, None) if kind == "u" else (None, value)


@dataclass(frozen=True)
class CartCheck:
    """What a due cart timer calls for: `fire` (with the cart's items, newest first), `later`
    (a newer add-to-cart moved the due time to `due_ms`) or `drop` (emptied, or bought since)."""

    action: str
    occasion: str = ""
    items: list[str] = field(default_factory=list)
    due_ms: int = 0


def check_cart(state: dict[str, str], now_ms: int, after_ms: int) -> CartCheck:
    """Decide a due cart timer from the shopper's trigger state (`trig` hash)."""
    cart = {k[2:]: int(v) for k, v in state.items() if k.startswith("c:") and v.isdigit()}
    if not cart:
        return CartCheck("drop")
    last_add = int(state.get("ca", "0") or 0)
    if int(state.get("pa", "-1") or -1) >= last_add:
        return CartCheck("drop")  # checked out after the last add: not abandoned
    if last_add + after_ms > now_ms:
        return CartCheck("later", due_ms=last_add + after_ms)
    return CartCheck("fire", f"cart:{last_add}", sorted(cart, key=lambda i: -cart[i]))

"""The attributes a condition can test: what the storefront sends, plus what Vitrine knows.

Conditions see one flat mapping. The storefront's own attributes (country, device, app
version, anything) come first; the names below are Vitrine's and override a storefront
attribute of the same name, so a request can't claim another shopper's consent or segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

# Names Vitrine fills in; documented in docs/experiments.md
RESERVED = (
    "id",
    "user_id",
    "session_id",
    "logged_in",
    "channel",
    "returning",
    "top_category",
    "affinities",
    "rfm_segment",
    "churn_probability",
    "consent",
    "page",
)


class Shopper(msgspec.Struct, kw_only=True):
    """What the request and the shopper's one Redis read tell about the shopper."""

    session_id: str
    user_id: str | None = None
    channel: str | None = None  # web, app, email... (the request's channel)
    returning: bool = False  # seen before this session (has history in Redis or the model)
    top_category: str | None = None  # live affinity: the session's leading category
    affinities: dict[str, float] = {}  # live category affinities, category -> weight
    rfm_segment: str | None = None  # live: the model's statistics plus purchases since (customers)
    churn_probability: float | None = None  # published by the churn model
    consent: list[str] = []  # purposes granted, e.g. ["personalization", "analytics"]
    page: str | None = None  # home, category, product, cart...

    @property
    def unit_id(self) -> str:
        """GrowthBook's `id`: the user when known, otherwise the session."""
        return self.user_id or self.session_id


def targeting_attributes(shopper: Shopper, request_attributes: Mapping[str, Any] | None = None) -> dict:
    """The mapping conditions are evaluated against (and hashed on: `id` by default)."""
    attrs = dict(request_attributes or {})
    attrs["id"] = shopper.unit_id
    attrs["user_id"] = shopper.user_id
    attrs["session_id"] = shopper.session_id
    attrs["logged_in"] = shopper.user_id is not None
    attrs["channel"] = shopper.channel
    attrs["returning"] = shopper.returning
    attrs["top_category"] = shopper.top_category
    attrs["affinities"] = shopper.affinities
    attrs["rfm_segment"] = shopper.rfm_segment
    attrs["churn_probability"] = shopper.churn_probability
    attrs["consent"] = shopper.consent
    attrs["page"] = shopper.page
    return attrs

"""What the request's read of a shopper adds for customers: consent records and the purchases
made since the served model's statistics (plain types, no Redis client)."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

# A purchase-log member: [ts_ms, item_id ('' if the model didn't know it), amount, event digest].
_decode_purchase = msgspec.msgpack.Decoder(tuple[int, str, float, str]).decode


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    personalization: bool
    at_ms: int
    purposes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, fields: list | None) -> ConsentRecord | None:
        """From an `HMGET consent p at purposes` reply (no `p`: no record). Purposes are stored
        comma-separated (their syntax has no comma): a split, not a JSON decode, per request."""
        if not fields or fields[0] is None:
            return None
        p, at, purposes = fields
        return cls(p == b"1", int(at or 0), tuple(purposes.decode().split(",")) if purposes else ())

    def stored(self) -> list:
        """The hash's fields and values (HSET)."""
        flag = "1" if self.personalization else "0"
        return ["p", flag, "at", self.at_ms, "purposes", ",".join(self.purposes)]

    def as_dict(self) -> dict:
        return {"personalization": self.personalization, "at_ms": self.at_ms, "purposes": list(self.purposes)}


def parse_purchases(members: list | None) -> list[tuple[int, str, float]]:
    """(ts, item_id, amount) of purchase-log members, oldest first; unreadable ones skipped."""
    out = []
    for raw in members or ():
        try:
            ts, item, amount, _ = _decode_purchase(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        out.append((ts, item, amount))
    return out


@dataclass(slots=True)
class CustomerRead:
    """A shopper's consent (the user's record first, then the session's, then the default) and
    their purchases since the published statistics."""

    default: bool
    user_consent: ConsentRecord | None = None
    session_consent: ConsentRecord | None = None
    purchases: list[tuple[int, str, float]] = field(default_factory=list)

    @property
    def consent(self) -> ConsentRecord | None:
        return self.user_consent or self.session_consent

    @property
    def carry_from_session(self) -> bool:
        """A signed-in shopper whose choice was made in their session only: it becomes the
        user's (their events are the user's from now on, and follow the user's record)."""
        return self.user_consent is None and self.session_consent is not None

    @property
    def personalization(self) -> bool:
        record = self.consent
        return record.personalization if record is not None else self.default

    @property
    def source(self) -> str:
        """Where the choice comes from: `user`, `session` or `default`."""
        return "user" if self.user_consent else "session" if self.session_consent else "default"

    @property
    def purposes(self) -> list[str]:
        """The targeting attribute `consent`: the purposes granted."""
        record = self.consent
        granted = [x for x in (record.purposes if record is not None else ()) if x != "personalization"]
        return ["personalization", *granted] if self.personalization else granted

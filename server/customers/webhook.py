"""Delivering fired triggers to a webhook: each POST carries the trigger as JSON and an
HMAC-SHA256 signature over the timestamp and the body, Stripe-style, so the receiver can check
it came from this server and is not a replay:

    X-Vitrine-Signature: t=<unix seconds>,v1=<hex of HMAC_SHA256(secret, f"{t}.".encode() + body)>

docs/customers.md shows the receiver's check. Delivery is at least once (a receiver
deduplicates on `trigger_id`), in stream order per shard, each trigger retried with backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

import aiohttp

log = logging.getLogger("vitrine.triggers")
SIGNATURE = "X-Vitrine-Signature"


def signature(secret: bytes, body: bytes, t: int) -> str:
    digest = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: bytes, body: bytes, header: str, *, tolerance_s: int = 300,
           now: float | None = None) -> bool:
    """The receiver's check (also what the tests run): a valid signature, recent enough."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    expected = signature(secret, body, t).split("v1=", 1)[1]
    fresh = abs((time.time() if now is None else now) - t) <= tolerance_s
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


async def post(session: aiohttp.ClientSession, url: str, secret: bytes | None, body: bytes, *,
               trigger: str, attempts: int, timeout_s: float, first_backoff_s: float = 0.5) -> bool:
    """POST until a 2xx, at most `attempts` times (backing off, doubling); False if it never
    succeeded (the caller logs, counts and moves on)."""
    delay = first_backoff_s
    for attempt in range(1, attempts + 1):
        headers = {"Content-Type": "application/json", "X-Vitrine-Trigger-Id": trigger}
        if secret:
            headers[SIGNATURE] = signature(secret, body, int(time.time()))
        try:
            async with session.post(url, data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                if 200 <= resp.status < 300:
                    return True
                problem = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = repr(exc)
        log.warning("webhook delivery of trigger %s failed (attempt %d/%d): %s", trigger, attempt, attempts,
                    problem)
        if attempt < attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return False

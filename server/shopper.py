"""The request's one Redis read of a shopper: their live session and, when a decision needs
them, their experiment assignments (the user's and the session's), in one pipelined round trip
within what is left of the request's deadline."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.experiments.records import Assignment
from server.experiments.store import ExperimentStore
from server.store.records import LiveSession, StoreUnavailable
from server.store.scripts import run_scripts
from server.store.sessions import SessionStore


@dataclass(slots=True)
class ShopperState:
    live: LiveSession | None = None
    user_assignments: dict[str, Assignment] = field(default_factory=dict)
    session_assignments: dict[str, Assignment] = field(default_factory=dict)
    degraded: str | None = None  # "redis_timeout" | "redis_unavailable" when Redis couldn't say


async def read_shopper(sessions: SessionStore, experiments: ExperimentStore, *, user_id: str | None,
                       session_id: str | None, now_ms: int, timeout_s: float,
                       assignments: bool) -> ShopperState:
    if not (user_id or session_id):
        return ShopperState()
    calls: list = [sessions.read_call(user_id, session_id, now_ms)]
    if assignments:
        calls += experiments.assignment_reads(user_id, session_id)
    try:
        replies = await run_scripts(sessions.wire, calls, min(timeout_s, sessions.settings.timeout_s))
    except StoreUnavailable as exc:
        reason = "redis_timeout" if isinstance(exc.__cause__, TimeoutError) else "redis_unavailable"
        return ShopperState(degraded=reason)
    state = ShopperState(live=sessions.parse_read(replies[0]))
    if assignments:
        rest = replies[1:]
        if user_id:
            state.user_assignments = experiments.parse_assignments(rest.pop(0))
        if session_id:
            state.session_assignments = experiments.parse_assignments(rest.pop(0))
    return state

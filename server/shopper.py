"""The request's one Redis read of a shopper: their live session, their consent and purchases
since the served model's statistics (customers) and, when a decision needs them, their
experiment assignments (the user's and the session's), in one pipelined round trip within what
is left of the request's deadline."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.customers.records import CustomerRead
from server.customers.store import CustomerStore
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
    customer: CustomerRead | None = None  # consent and purchases since the model (None: not read)


async def read_shopper(sessions: SessionStore, experiments: ExperimentStore, *, user_id: str | None,
                       session_id: str | None, now_ms: int, timeout_s: float,
                       assignments: bool, customers: CustomerStore | None = None,
                       as_of_ms: int = 0) -> ShopperState:
    if not (user_id or session_id):
        return ShopperState()
    with_customer = customers is not None
    calls: list = [sessions.read_call(user_id, session_id, now_ms, as_of_ms if with_customer else None)]
    extra = customers.extra_calls(sessions.keys, user_id, session_id) if with_customer else []
    calls += extra
    if assignments:
        calls += experiments.assignment_reads(user_id, session_id)
    try:
        replies = await run_scripts(sessions.wire, calls, min(timeout_s, sessions.settings.timeout_s))
    except StoreUnavailable as exc:
        reason = "redis_timeout" if isinstance(exc.__cause__, TimeoutError) else "redis_unavailable"
        return ShopperState(degraded=reason)
    state = ShopperState(live=sessions.parse_read(replies[0]))
    rest = replies[1 + len(extra):]
    if customers is not None:
        state.customer = customers.parse(replies[0], replies[1:1 + len(extra)], user_id, session_id)
        if state.customer.carry_from_session:
            await customers.carry_consent(user_id, state.customer)
    if assignments:
        if user_id:
            state.user_assignments = experiments.parse_assignments(rest.pop(0))
        if session_id:
            state.session_assignments = experiments.parse_assignments(rest.pop(0))
    return state

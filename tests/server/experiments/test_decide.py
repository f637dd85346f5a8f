"""Deciding slots: GrowthBook's `run` cases, stickiness, login, QA forcing, rules, defaults."""

import pytest
from gbcases import cases, ids

from server.experiments.decide import compile_definitions, decide
from server.experiments.definitions import Definitions, Experiment, Rule, Slot, Variant
from server.experiments.records import Assignment

NOW = 1_800_000_000_000


def _exp(key="hero", weights=(0.5, 0.5), **kw):
    variants = [Variant(f"v{i}", w, content=f"{key}-v{i}") for i, w in enumerate(weights)]
    kw.setdefault("slots", ["hero"])
    kw.setdefault("status", "running")
    return Experiment(key=key, variants=variants, **kw)


def _compiled(*experiments, rules=(), slots=("hero",)):
    return compile_definitions(
        Definitions(
            slots=[Slot(s, default=f"{s}-default") for s in slots],
            experiments=list(experiments),
            rules=list(rules),
        )
    )


@pytest.mark.parametrize("case", cases("run"), ids=ids("run"))
def test_published_run_cases(case):
    _, context, spec, expected_value, in_experiment, hash_used = case
    n = len(spec["variations"])
    weights = spec.get("weights") or [1 / n] * n
    exp = Experiment(
        key=spec["key"],
        slots=["s"],
        status="running",
        variants=[
            Variant(str(i), w, content=value)
            for i, (w, value) in enumerate(zip(weights, spec["variations"], strict=True))
        ],
        coverage=spec.get("coverage", 1.0),
        hash_seed=spec.get("seed", ""),
        hash_version=spec.get("hashVersion", 1),
        hash_attribute=spec.get("hashAttribute", "id"),
        namespace=tuple(spec["namespace"]) if "namespace" in spec else None,
        condition=spec.get("condition", {}),
    )
    compiled = compile_definitions(Definitions(experiments=[exp]))
    forced = {k: str(v) for k, v in context.get("forcedVariations", {}).items()}
    d = decide(
        compiled,
        session_id="s1",
        attributes=context.get("attributes", {}),
        slots=["s"],
        forced=forced,
        now_ms=NOW,
    )
    got = d.slots["s"]
    if in_experiment:
        assert got.content == expected_value
        assert got.source == ("experiment" if hash_used else "forced")
    else:
        assert got.source == "default"
    # Exposures are recorded exactly when GrowthBook would track one (hashUsed)
    assert len(d.exposures) == (1 if hash_used else 0)


def test_new_unit_gets_one_assignment_and_one_exposure():
    compiled = _compiled(_exp())
    d = decide(compiled, session_id="sess-1", attributes={"id": "sess-1"}, slots=["hero"], now_ms=NOW)
    assert d.slots["hero"].source == "experiment"
    [write] = d.writes
    assert (write.owner, write.owner_id, write.experiment) == ("session", "sess-1", "hero")
    assert write.assignment.variant == d.slots["hero"].variant
    assert write.assignment.exposed_at == NOW and write.assignment.unit == "sess-1"
    assert [e.unit for e in d.exposures] == ["sess-1"]


def test_changing_weights_never_moves_an_assigned_unit():
    before = _compiled(_exp(weights=(0.5, 0.5)))
    after = _compiled(_exp(weights=(0.05, 0.95)))
    moved_by_hash = 0
    for i in range(300):
        sid = f"s{i}"
        first = decide(before, session_id=sid, attributes={"id": sid}, slots=["hero"], now_ms=NOW)
        sticky = {w.experiment: w.assignment for w in first.writes}
        again = decide(
            after,
            session_id=sid,
            attributes={"id": sid},
            slots=["hero"],
            session_sticky=sticky,
            now_ms=NOW + 1,
        )
        fresh = decide(after, session_id=sid, attributes={"id": sid}, slots=["hero"], now_ms=NOW + 1)
        assert again.slots["hero"].variant == first.slots["hero"].variant
        assert again.writes == [] and again.exposures == []
        moved_by_hash += fresh.slots["hero"].variant != first.slots["hero"].variant
    assert moved_by_hash > 50  # without the sticky record, the new weights would move units


def test_a_session_that_logs_in_keeps_its_variant_and_carries_it_to_the_user():
    compiled = _compiled(_exp())
    anon = decide(compiled, session_id="sess-9", attributes={"id": "sess-9"}, slots=["hero"], now_ms=NOW)
    session_sticky = {w.experiment: w.assignment for w in anon.writes}
    # After login the hash attribute is the user id, which may hash elsewhere
    for user in ("alice", "bob", "carol", "dave"):
        d = decide(
            compiled,
            session_id="sess-9",
            user_id=user,
            attributes={"id": user},
            slots=["hero"],
            session_sticky=session_sticky,
            user_sticky={},
            now_ms=NOW + 5,
        )
        assert d.slots["hero"].variant == anon.slots["hero"].variant
        assert d.exposures == []  # the same unit, already counted
        [carry] = d.writes
        assert (carry.owner, carry.owner_id) == ("user", user)
        assert carry.assignment.unit == "sess-9"  # still counted as the session's unit


def test_the_users_assignment_wins_over_the_sessions():
    compiled = _compiled(_exp())
    d = decide(
        compiled,
        session_id="s",
        user_id="u",
        attributes={"id": "u"},
        slots=["hero"],
        user_sticky={"hero": Assignment("v1", NOW, "u")},
        session_sticky={"hero": Assignment("v0", NOW, "s")},
        now_ms=NOW,
    )
    assert d.slots["hero"].variant == "v1" and d.writes == []


def test_forced_variant_is_shown_but_never_recorded():
    compiled = _compiled(_exp(forced={"qa-session": "v1"}, status="draft"))
    d = decide(compiled, session_id="qa-session", attributes={"id": "qa-session"}, slots=["hero"], now_ms=NOW)
    assert (d.slots["hero"].source, d.slots["hero"].variant) == ("forced", "v1")
    assert d.writes == [] and d.exposures == []
    d = decide(
        compiled, session_id="x", attributes={"id": "x"}, slots=["hero"], forced={"hero": "v0"}, now_ms=NOW
    )
    assert (d.slots["hero"].source, d.slots["hero"].variant) == ("forced", "v0")


@pytest.mark.parametrize(
    "status,sticky_served,new_enrolled",
    [
        ("running", True, True),
        ("paused", True, False),
        ("stopped", False, False),
        ("draft", False, False),
    ],
)
def test_status_decides_who_is_served(status, sticky_served, new_enrolled):
    compiled = _compiled(_exp(status=status))
    sticky = {"hero": Assignment("v1", NOW, "old")}
    old = decide(
        compiled,
        session_id="old",
        attributes={"id": "old"},
        slots=["hero"],
        session_sticky=sticky,
        now_ms=NOW,
    )
    new = decide(compiled, session_id="new", attributes={"id": "new"}, slots=["hero"], now_ms=NOW)
    assert (old.slots["hero"].source == "experiment") is sticky_served
    assert (new.slots["hero"].source == "experiment") is new_enrolled


def test_start_and_end_bound_enrolment():
    compiled = _compiled(_exp(start=NOW + 1000, end=NOW + 2000))
    for now, served in ((NOW, False), (NOW + 1500, True), (NOW + 2000, False)):
        d = decide(compiled, session_id="s", attributes={"id": "s"}, slots=["hero"], now_ms=now)
        assert (d.slots["hero"].source == "experiment") is served


def test_rules_then_default_when_no_experiment_applies():
    rules = [
        Rule(key="runner", slot="hero", condition={"top_category": "running"}, content="run-banner"),
        Rule(key="off", slot="hero", condition={}, content="never", enabled=False),
    ]
    compiled = _compiled(_exp(condition={"channel": "app"}), rules=rules)
    runner = decide(
        compiled,
        session_id="s",
        attributes={"id": "s", "channel": "web", "top_category": "running"},
        slots=["hero", "nope"],
        now_ms=NOW,
    )
    assert (runner.slots["hero"].source, runner.slots["hero"].rule, runner.slots["hero"].content) == (
        "rule",
        "runner",
        "run-banner",
    )
    assert runner.slots["nope"].source == "unknown"
    other = decide(
        compiled, session_id="s", attributes={"id": "s", "channel": "web"}, slots=["hero"], now_ms=NOW
    )
    assert (other.slots["hero"].source, other.slots["hero"].content) == ("default", "hero-default")


def test_one_experiment_deciding_two_slots_is_one_exposure_with_per_slot_content():
    exp = Experiment(
        key="theme",
        slots=["hero", "promo"],
        status="running",
        variants=[
            Variant("a", 0.5, {"hero": "hero-a", "promo": "promo-a"}),
            Variant("b", 0.5, {"hero": "hero-b", "promo": "promo-b"}),
        ],
    )
    compiled = _compiled(exp, slots=("hero", "promo"))
    d = decide(compiled, session_id="s", attributes={"id": "s"}, slots=["hero", "promo"], now_ms=NOW)
    v = d.slots["hero"].variant
    assert d.slots["hero"].content == f"hero-{v}" and d.slots["promo"].content == f"promo-{v}"
    assert len(d.exposures) == 1 and len(d.writes) == 1


def test_placement_strategy_and_namespace_exclusion():
    a = _exp("strategy-a", slots=[], placement="product", namespace=("pdp", 0, 0.5))
    b = _exp("strategy-b", slots=[], placement="product", namespace=("pdp", 0.5, 1))
    compiled = _compiled(a, b)
    seen = set()
    for i in range(200):
        d = decide(
            compiled, session_id=f"s{i}", attributes={"id": f"s{i}"}, placements=["product"], now_ms=NOW
        )
        seen.add(d.placements["product"].experiment)
        assert len(d.exposures) == 1  # exactly one of the two mutually exclusive experiments
    assert seen == {"strategy-a", "strategy-b"}

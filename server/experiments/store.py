"""Experiments in Redis: the definitions document, shoppers' sticky assignments, exposures and
conversion counters.

- The document (JSON) and its version counter live on `{x}`; every worker polls the version
  and recompiles (snapshot.py), so all agree within a second.
- A shopper's assignments are a hash on their own slot, read in the same round trip as their
  live session (`assignment_reads`), written with HSETNX (first writer wins).
- Counters are per experiment and day on the experiment's slot `{x:<key>}`; every increment is
  idempotent (a unit's exposure and conversion are counted once, a goal event's revenue once
  per unit), so retries and the session→user carry never count twice.
- Goal events are attributed in the ingest round trip by convert.lua on the shopper's slot
  (which remembers, per event id, the conversions it caused); their counter updates
  (count.lua) follow in a second round trip before the events are acknowledged. A retry after
  a failure between the two re-sends the same updates, which count once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import msgspec
import orjson

from models.events import Event
from server.experiments.definitions import Definitions, Experiment
from server.experiments.records import DAY_MS, Assignment, AssignmentWrite, Exposure, VariantCounters, day_of
from server.settings import RedisSettings
from server.store.keys import Keys
from server.store.scripts import Call, Script, run_scripts
from server.store.wire import ReplyError

EXPOSURE, CONVERT, COUNT = (Script.load(n) for n in ("exposure", "convert", "count"))
UNIT_MARK_TTL_S = 400 * 86_400  # longer than any experiment runs
_encode = msgspec.msgpack.Encoder().encode
_decode_assignment = msgspec.msgpack.Decoder(Assignment).decode
_decode_conversions = msgspec.msgpack.Decoder(list[tuple[str, str, str, int, float, float, float]]).decode
COUNTER_FIELDS = VariantCounters.__struct_fields__


class Converted(msgspec.Struct, frozen=True):
    """One goal event attributed to one experiment's unit (what count.lua adds)."""

    experiment: str
    variant: str
    unit: str
    first: bool
    revenue: float
    revenue_sq: float
    pre: float
    event_id: str
    ts: int


class ExperimentStore:
    def __init__(self, wire, client, settings: RedisSettings):
        self.wire, self.client, self.settings = wire, client, settings
        self.keys = Keys(settings.prefix, settings.stream_shards)

    # -- the definitions document (off the hot path: redis-py) ---------------------------
    async def load(self) -> Definitions | None:
        raw = await self.client.get(self.keys.experiments)
        return msgspec.json.decode(raw, type=Definitions) if raw else None

    async def version(self) -> int:
        return int(await self.client.get(self.keys.experiments_version) or 0)

    async def save(self, defs: Definitions) -> Definitions:
        """Store a validated document as the next version; returns it with that version."""
        version = await self.client.incr(self.keys.experiments_version)
        stored = msgspec.structs.replace(defs, version=int(version))
        await self.client.set(self.keys.experiments, msgspec.json.encode(stored))
        return stored

    # -- a shopper's assignments, read with their session ------------------------------
    def assignment_reads(self, user_id: str | None, session_id: str | None) -> list[tuple]:
        """HGETALLs of the user's and the session's assignments (each on its own slot), in that
        order, for the ones given."""
        tags = ([Keys.shopper_tag(user_id, None)] if user_id else []) + (
            [Keys.shopper_tag(None, session_id)] if session_id else [])
        return [("HGETALL", self.keys.assignments(tag)) for tag in tags]

    @staticmethod
    def parse_assignments(reply: list | None) -> dict[str, Assignment]:
        if not reply or isinstance(reply, ReplyError):
            return {}
        out = {}
        for key, raw in zip(reply[::2], reply[1::2], strict=True):
            try:
                out[key.decode()] = _decode_assignment(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # a record this build can't read: treated as not assigned
        return out

    # -- exposures: after a decision ------------------------------------------------------
    def exposure_writes(self, writes: Iterable[AssignmentWrite], exposures: Iterable[Exposure]) -> list:
        """Commands and script calls recording new assignments and counting new units."""
        ttl = self.settings.session_ttl_s
        items: list = []
        for w in writes:
            tag = (Keys.shopper_tag(w.owner_id, None) if w.owner == "user"
                   else Keys.shopper_tag(None, w.owner_id))
            key = self.keys.assignments(tag)
            items += [("HSETNX", key, w.experiment, _encode(w.assignment)), ("EXPIRE", key, ttl)]
        for e in exposures:
            pre = next((w.assignment.pre for w in writes if w.experiment == e.experiment), 0.0)
            day = day_of(e.ts)
            items.append((EXPOSURE, [self.keys.exposure_counted(e.experiment, e.unit),
                                     self.keys.experiment_counters(e.experiment, day),
                                     self.keys.experiment_days(e.experiment)],
                          [UNIT_MARK_TTL_S, day, e.variant, pre]))
        return items

    # -- conversions: in the ingest round trips -------------------------------------------
    def convert_calls(self, events: list[Event],
                      running: list[Experiment]) -> tuple[list[Call], list[list[Event]]]:
        """convert.lua per shopper (and per session of a signed-in shopper: an assignment not
        yet carried to the user still converts) for the goal events among `events`."""
        goals = {x.goal.event_type for x in running}
        by_tag: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            if str(e.type) in goals:
                by_tag[Keys.shopper_tag(e.user_id, e.session_id)].append(e)
                if e.user_id:
                    by_tag[Keys.shopper_tag(None, e.session_id)].append(e)
        if not by_tag:
            return [], []
        spec: list = [2 * self.settings.dedup_ttl_s, len(running)]
        for x in running:
            spec += [x.key, x.goal.event_type, x.attribution_window_ms]
        calls, groups = [], []
        for tag, group in by_tag.items():
            args = list(spec)
            for e in group:
                revenue = _revenue(e, running)
                args += [e.event_id, str(e.type), e.ts, revenue]
            calls.append((CONVERT, [self.keys.assignments(tag), self.keys.conversions_applied(tag)], args))
            groups.append(group)
        return calls, groups

    @staticmethod
    def parse_conversions(groups: list[list[Event]], replies: list) -> list[Converted]:
        out = []
        for group, reply in zip(groups, replies, strict=True):
            for event, packed in zip(group, reply, strict=True):
                for exp, variant, unit, first, revenue, sq, pre in _decode_conversions(packed):
                    out.append(Converted(exp, variant, unit, bool(first), float(revenue), float(sq),
                                         float(pre), event.event_id, event.ts))
        return out

    def count_calls(self, conversions: list[Converted], running: list[Experiment]) -> list[Call]:
        window = {x.key: x.attribution_window_ms for x in running}
        calls = []
        for c in conversions:
            day = day_of(c.ts)
            revenue_ttl = (window.get(c.experiment, DAY_MS) // 1000) + self.settings.dedup_ttl_s
            calls.append((COUNT, [self.keys.conversion_counted(c.experiment, c.unit),
                                  self.keys.revenue_counted(c.experiment, c.unit, c.event_id),
                                  self.keys.experiment_counters(c.experiment, day),
                                  self.keys.experiment_days(c.experiment)],
                          [UNIT_MARK_TTL_S, revenue_ttl, day, c.variant, int(c.first), c.revenue,
                           c.revenue_sq, c.pre]))
        return calls

    async def attribute(self, events: list[Event], running: list[Experiment]) -> int:
        """Both steps for a batch of (stored) events: returns the conversions counted now."""
        calls, groups = self.convert_calls(events, running)
        if not calls:
            return 0
        replies = await run_scripts(self.wire, calls, self.settings.timeout_s)
        counts = self.count_calls(self.parse_conversions(groups, replies), running)
        if not counts:
            return 0
        return sum(int(r) for r in await run_scripts(self.wire, counts, self.settings.timeout_s))

    # -- results (off the hot path) -------------------------------------------------------
    async def counters(self, experiment: str) -> dict[int, dict[str, VariantCounters]]:
        """Per day, per variant: the counters."""
        days = sorted(int(d) for d in await self.client.smembers(self.keys.experiment_days(experiment)))
        out: dict[int, dict[str, VariantCounters]] = {}
        for day in days:
            raw = await self.client.hgetall(self.keys.experiment_counters(experiment, day))
            fields: dict[str, dict[str, float]] = defaultdict(dict)
            for name, value in raw.items():
                variant, _, counter = name.decode().rpartition("|")
                if counter in COUNTER_FIELDS:
                    fields[variant][counter] = float(value)
            out[day] = {v: VariantCounters(**{k: (int(x) if k in ("units", "conversions") else x)
                                             for k, x in f.items()}) for v, f in fields.items()}
        return out


def _revenue(event: Event, running: list[Experiment]) -> float:
    if not any(x.goal.revenue and x.goal.event_type == str(event.type) for x in running):
        return 0.0
    return float(event.price or 0.0) * event.quantity


def definitions_json(defs: Definitions) -> bytes:
    return orjson.dumps(msgspec.to_builtins(defs), option=orjson.OPT_INDENT_2)

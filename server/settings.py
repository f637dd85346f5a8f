"""One configuration for every `vitrine` command: nested sections, validated, from defaults, an
optional TOML file, the environment and command-line flags (later sources win).

Each field is `<section>.<field>` in the TOML file (`[redis]` / `url = "…"`) and
`VITRINE_<SECTION>_<FIELD>` in the environment (`VITRINE_REDIS_URL`); `REDIS_URL` is accepted
for `redis.url`. `vitrine config` prints every effective value and where it came from;
docs/configuration.md is generated from the descriptions below (`python -m server.settings`).

The sections are the configuration objects the code receives: the store gets `settings.redis`,
the ladder `settings.recommend`, so a default is written once, here.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

CONFIG_ENV = "VITRINE_CONFIG"
ENV_PREFIX = "VITRINE_"
ALIASES = {"REDIS_URL": ("redis", "url")}


class SettingsError(ValueError):
    """A setting has a bad value, or the file can't be read: the message names it."""


def _doc(text: str, **constraints: Any) -> Any:
    return msgspec.Meta(description=text, **constraints)


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerSettings(_Section):
    host: Annotated[str, _doc("address to listen on")] = "127.0.0.1"
    port: Annotated[int, _doc("TCP port (shared by the server's own workers)", ge=1, le=65_535)] = 8080
    workers: Annotated[int, _doc(
        "server processes. Above 1, a supervisor loads the served model once and forks the workers, "
        "which share it (at 1M items a second worker adds ~130 MB, not ~400); a version published "
        "later is loaded once too, and the workers are replaced one at a time",
                                 ge=1, le=256)] = 1
    log_level: Annotated[str, _doc("`debug`, `info`, `warning` or `error`",
                                   pattern="^(?i:debug|info|warning|error)$")] = "info"
    log_format: Annotated[str, _doc(
        "`json` (one object per line, with request ids), `text`, or `auto`: text when stderr is a "
        "terminal, else JSON", pattern="^(auto|json|text)$")] = "auto"
    access_log_sample: Annotated[float, _doc(
        "share of requests written to the access log (method, route, status, latency, rung, key); "
        "server errors always are. 1 logs every request at ~30 µs of CPU each (a tenth of a "
        "recommendation's cost, benchmarks/results/middleware.md); 0 turns it off", ge=0, le=1)] = 0.1
    log_repeat_s: Annotated[float, _doc(
        "a warning or error repeating the same text is written at most once per this many "
        "seconds, with the count of the dropped ones (0: every time)", ge=0)] = 60.0
    max_body_bytes: Annotated[int, _doc("request body limit (413 above)", ge=1024)] = 1 << 20
    max_batch_events: Annotated[int, _doc("events per `POST /v1/events` (413 above)", ge=1)] = 500
    demo: Annotated[bool, _doc("serve the demo storefront at `/demo/` (`vitrine demo` turns it on)")] = False


class SecuritySettings(_Section):
    public_keys: Annotated[list[str], _doc(
        "API keys of the storefronts: recommendations and events need `X-API-Key: <key>` (or the "
        "admin token); comma-separated in the environment. Empty: those endpoints are open, and "
        "the server says so at start and in `/readyz`")] = []
    admin_token: Annotated[str, _doc(
        "admin endpoints (model info, versions, reload, experiments; rules and erasure as they come) need "
        "`Authorization: Bearer <token>`; unset, they are open only while no public key is set"
    )] | None = None
    cors_origins: Annotated[list[str], _doc(
        "browser origins allowed to call the API (`https://shop.example`, or `*` for any); a "
        "preflight from another origin is refused (403). Empty: no cross-origin access")] = []
    events_per_s: Annotated[float, _doc(
        "events accepted per second and key (or per server without keys), over the whole server: "
        "each of N workers allows 1/N; past it `POST /v1/events` answers 429 with `Retry-After` "
        "and stores nothing. Unset: no limit", gt=0)] | None = None
    events_burst: Annotated[int, _doc(
        "events a key may send at once above its rate (unset: one second's worth, and at least "
        "`server.max_batch_events`)", ge=1)] | None = None


class RecommendSettings(_Section):
    deadline_ms: Annotated[int, _doc(
        "budget of one recommendation request; the Redis read gets at most 70% of what is left",
        ge=1)] = 20
    default_k: Annotated[int, _doc("items returned when `k` is not given", ge=1)] = 10
    max_k: Annotated[int, _doc("largest accepted `k`", ge=1, le=1000)] = 100
    user_weight: Annotated[float, _doc("weight of a known user's trained vector in the blend",
                                       ge=0)] = 0.5
    session_weight: Annotated[float, _doc("weight of the live session's folded-in vector", ge=0)] = 1.0
    context_weight: Annotated[float, _doc("weight of the page's context items (product, cart)",
                                          ge=0)] = 1.0
    affinity_weight: Annotated[float, _doc(
        "live category affinity added to the normalised score when re-ranking (0.25: within 0.005 "
        "of the offline Recall@20 on MovieLens, benchmarks/results/parity_movielens.md; 0.5 cost "
        "0.012); for a searched model's session, times 1 − its popularity prior's weight, so a short "
        "session's one category does not outrank the prior", ge=0)] = 0.25
    session_half_life_s: Annotated[float, _doc("recency decay of session items in the fold-in",
                                               gt=0)] = 3_600.0
    candidates: Annotated[int, _doc(
        "index candidates before filters and re-ranking (>= `max_k`); the search's cost grows with "
        "it, 100 leaves room for the filters and the diversity cap", ge=1)] = 100
    max_category_share: Annotated[float, _doc(
        "diversity: at most this share of `k` from one category (1 turns the cap off)",
        gt=0, le=1)] = 0.6
    exact_category_max: Annotated[int, _doc(
        "a category placement scores every item of a category up to this size exactly (cheaper "
        "than the index search, and nothing in it is missed)", ge=0)] = 10_000
    filter_scan_max: Annotated[int, _doc(
        "include-only rules (include, price bounds) keeping under half the items: their allowed "
        "items are scored exactly, the largest-norm first, up to this many (all of them below it: "
        "exact filtered search). On 1M items 5,000 already recalled 1.000 of the exact filtered "
        "top 20 at 10%, 1% and 0.1% (44 µs a query; 10,000: 117 µs; "
        "benchmarks/results/filtered_retrieval.md)", ge=100)] = 10_000
    session_reuse_ms: Annotated[int, _doc(
        "how long a live session's folded-in vector is reused while the session is unchanged (the "
        "placements of one page view ask within milliseconds); 0 turns reuse off", ge=0)] = 1_000
    session_reuse_entries: Annotated[int, _doc(
        "folded-in session vectors kept per worker for that reuse (~2.8 KB each with 50 recent items, "
        "so ~6 MB; emptied when full): ~3 s of distinct sessions at 2,000 requests/s. 8,192 grew a "
        "worker's RSS by 29 MB", ge=1)] = 2_048
    trending_refresh_s: Annotated[float, _doc(
        "how often each worker refreshes its in-process trending lists from Redis", gt=0)] = 1.0


class CatalogSettings(_Section):
    refresh_s: Annotated[float, _doc(
        "how often each worker reads the merchandising rules' version (a change runs everywhere "
        "within this plus two round trips), and polls the live catalog's change log when its "
        "blocked read on it is down (otherwise a change arrives within a few ms: "
        "benchmarks/results/catalog_propagation.md)", gt=0, le=60)] = 0.2
    max_batch_items: Annotated[int, _doc("items per `PUT /v1/items` (413 above)", ge=1)] = 1_000
    rules_file: Annotated[Path, _doc(
        "merchandising rules (JSON or TOML, docs/catalog.md) applied at start when the file changed "
        "since it was applied last; a bad file is logged and the rules in Redis keep running")] | None = None
    max_rules: Annotated[int, _doc("merchandising rules kept (422 above)", ge=1, le=100_000)] = 1_000


class RedisSettings(_Section):
    url: Annotated[str, _doc(
        "`redis://`, `rediss://` or `unix://` URL of a Redis, Valkey or Redis Cluster node; unset "
        "starts the embedded Redis (also `REDIS_URL`)")] | None = None
    cluster: Annotated[bool, _doc("`url` is a node of a Redis Cluster")] = False
    timeout_ms: Annotated[int, _doc(
        "bound of every Redis call (events answer 503 past it, and the storefront retries); "
        "recommendation reads are further bounded by the deadline. 250: above a healthy Redis' "
        "worst pauses (an AOF rewrite's fork: ~10 ms per GB of data), and a Redis that stops "
        "answering is given up on within a second", ge=1)] = 250
    prefix: Annotated[str, _doc("namespace of every key (docs/redis.md)", min_length=1, max_length=32,
                                pattern="^[A-Za-z0-9_.-]+$")] = "vt"
    shards: Annotated[int, _doc(
        "event-stream and trending shards (`{g:0}` … `{g:N-1}`), so no single Redis Cluster slot "
        "takes every event; unset: 1 on a single Redis, 16 on a cluster. May be raised; lowered "
        "only after an export emptied the streams", ge=1, le=1024)] | None = None
    session_ttl_s: Annotated[int, _doc(
        "lifetime of a shopper's live state after their last event (30 days)", ge=1)] = 30 * 86_400
    recent_cap: Annotated[int, _doc(
        "recent items kept per shopper; the model folds in at most its manifest's "
        "`serving.session_items` of them (100-200 measured best, benchmarks/results/relevance.md)",
        ge=1, le=10_000)] = 200
    affinity_cap: Annotated[int, _doc(
        "live category affinities kept per shopper: past 1.25 × this, the weakest are dropped down "
        "to it", ge=1, le=10_000)] = 32
    purchases_cap: Annotated[int, _doc(
        "purchased or returned items kept per shopper (to filter them out): past 1.25 × this, the "
        "least recently bought or returned are dropped down to it", ge=1, le=100_000)] = 200
    shopper_event_budget: Annotated[int, _doc(
        "events per shopper and dedup period (`dedup_ttl_s`) applied to their live state; later "
        "ones still reach the stream but leave the live state as it is, so one session (a bot) "
        "can't grow its keys or its reads' cost", ge=1, le=1_000_000)] = 2_000
    affinity_half_life_s: Annotated[float, _doc("half-life of live category affinities", gt=0)] = 1_800.0
    trending_half_life_s: Annotated[float, _doc("half-life of trending counters", gt=0)] = 21_600.0
    trending_cap: Annotated[int, _doc("items kept per trending list and shard", ge=10)] = 10_000
    dedup_ttl_s: Annotated[int, _doc(
        "how long an event_id is remembered for idempotent retries (a day covers client retries "
        "and offline app queues; each accepted event costs a ~90-byte mark this long)",
        ge=60)] = 86_400
    stream_maxlen: Annotated[int, _doc(
        "events kept per stream shard until exported (~200 bytes each: the default is ~200 MB); "
        "past it the oldest are dropped, counted and reported. `/readyz` warns at half full: export "
        "at least every cap / (peak events per second per shard) / 2 seconds (docs/redis.md). "
        "Unset: unbounded (Redis' memory fills up instead)", ge=1000)] | None = 1_000_000

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000

    @property
    def stream_shards(self) -> int:
        return self.shards or (16 if self.cluster else 1)


class ModelSettings(_Section):
    store: Annotated[Path, _doc(
        "directory of published model versions (`CURRENT` names the served one); `vitrine train` "
        "publishes here")] = Path("models/store")
    reload_interval_s: Annotated[float, _doc("how often `CURRENT` is checked for a new version",
                                             gt=0)] = 2.0


class DataSettings(_Section):
    dir: Annotated[Path, _doc(
        "data directory: the embedded Redis keeps its socket and append-only file in "
        "`<dir>/redis`")] = Path("var")
    archive: Annotated[str, _doc(
        "the event archive `vitrine events export` writes and `vitrine train --archive` / "
        "`vitrine retrain` read: a directory or a pyarrow/fsspec URI (`s3://…`); unset: "
        "`<data.dir>/archive`")] | None = None

    @property
    def archive_root(self) -> str:
        return self.archive or str(self.dir / "archive")


class ExperimentsSettings(_Section):
    file: Annotated[Path, _doc(
        "experiments document (JSON, docs/experiments.md) stored at start when it differs from the "
        "stored one; a bad file is reported and the stored document keeps running")] | None = None
    bandits: Annotated[bool, _doc(
        "update bandit experiments' weights on their schedule (one worker at a time)")] = True


class CustomersSettings(_Section):
    default_consent: Annotated[bool, _doc(
        "personalization for a shopper who never said (`PUT /v1/consent`): true lets it until they "
        "refuse (opt-out), false keeps every shopper anonymous until they accept (opt-in)")] = True
    consent_ttl_s: Annotated[int, _doc(
        "how long a shopper's consent choice is kept after they last set it (400 days: a consent "
        "banner's usual 13 months)", ge=60)] = 400 * 86_400
    segment_rules_file: Annotated[Path, _doc(
        "segment rules (TOML or JSON, docs/customers.md) stored at start when they differ from the "
        "stored ones; unset: the rules stored with `PUT /v1/admin/segments`, else the served "
        "model's, else the defaults")] | None = None
    purchase_log_cap: Annotated[int, _doc(
        "purchases kept per shopper since the last training (time, item, amount): live RFM, segments "
        "and buy it again read the ones after the served model's `as_of_ms`", ge=1, le=10_000)] = 100
    purchase_log_ttl_s: Annotated[int, _doc(
        "lifetime of a shopper's purchase log after their last purchase: train more often than "
        "this, or a customer's live purchases fall back to the published ones", ge=60)] = 180 * 86_400
    linked_sessions_cap: Annotated[int, _doc(
        "sessions remembered per signed-in customer (so erasure finds their anonymous keys and "
        "events): the most recent are kept", ge=1, le=100_000)] = 500


class TriggersSettings(_Section):
    enabled: Annotated[bool, _doc("evaluate trigger rules on the live event flow (docs/customers.md)")] = True
    cart_abandoned_s: Annotated[int, _doc(
        "fire `cart_abandoned` this long after a shopper's last add-to-cart without a purchase "
        "since (0 turns the rule off)", ge=0)] = 1_800
    viewed_min_views: Annotated[int, _doc(
        "fire `viewed_not_carted` when an item is viewed this many times within "
        "`viewed_window_s` without being in the cart (0 turns the rule off)", ge=0, le=1_000)] = 3
    viewed_min_price: Annotated[float, _doc(
        "...only for items at or above this unit price (the event's `price`, else the catalog's)",
        ge=0)] = 100.0
    viewed_window_s: Annotated[int, _doc("window of `viewed_min_views`", ge=1)] = 86_400
    first_visit_segments: Annotated[str, _doc(
        "fire `first_visit` on a signed-in customer's first event of a new session when their live "
        "segment is one of these (comma-separated; empty turns the rule off)", max_length=400)] = \
        "dormant,at_risk"
    per_customer: Annotated[int, _doc("at most this many triggers per customer per `rate_window_s` "
                                      "(the others are suppressed, and counted)", ge=1)] = 3
    rate_window_s: Annotated[int, _doc("window of `per_customer`", ge=1)] = 86_400
    remember_s: Annotated[int, _doc(
        "how long a fired (or suppressed) trigger is remembered so the same occasion never fires "
        "twice (>= `rate_window_s`)", ge=60)] = 7 * 86_400
    suggestions: Annotated[int, _doc("suggested items in a fired trigger (from the ladder)", ge=0,
                                     le=100)] = 5
    tracked_items: Annotated[int, _doc(
        "items per shopper whose views and cart presence the rules track (past it, the oldest go)",
        ge=1, le=1_000)] = 32
    stream_maxlen: Annotated[int, _doc("fired triggers kept per stream shard for consumers",
                                       ge=100)] = 100_000
    poll_ms: Annotated[int, _doc("how often the worker holding the trigger lock looks for due timers "
                                 "and undelivered triggers", ge=10, le=10_000)] = 100
    lock_ms: Annotated[int, _doc(
        "the trigger lock's lease: a worker that dies is taken over within this (renewed every "
        "poll)", ge=100)] = 2_000
    webhook_url: Annotated[str, _doc(
        "POST every fired trigger here (JSON, signed with `webhook_secret`); unset: the Redis stream "
        "only", max_length=2_000)] | None = None
    webhook_secret: Annotated[str, _doc(
        "HMAC-SHA256 key of the `X-Vitrine-Signature` header (docs/customers.md shows how to "
        "verify it)")] | None = None
    webhook_timeout_s: Annotated[float, _doc("timeout of one webhook POST", gt=0, le=60)] = 5.0
    webhook_attempts: Annotated[int, _doc(
        "attempts per trigger (backing off from 0.5 s, doubling); then it is skipped, logged and "
        "counted", ge=1, le=20)] = 5

    @property
    def first_visit(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.first_visit_segments.split(",") if s.strip())


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    server: ServerSettings = ServerSettings()
    security: SecuritySettings = SecuritySettings()
    recommend: RecommendSettings = RecommendSettings()
    catalog: CatalogSettings = CatalogSettings()
    redis: RedisSettings = RedisSettings()
    model: ModelSettings = ModelSettings()
    data: DataSettings = DataSettings()
    experiments: ExperimentsSettings = ExperimentsSettings()
    customers: CustomersSettings = CustomersSettings()
    triggers: TriggersSettings = TriggersSettings()

    def __post_init__(self) -> None:
        r = self.recommend
        if r.default_k > r.max_k:
            raise ValueError("recommend.default_k must be <= recommend.max_k")
        if r.candidates < r.max_k:
            raise ValueError("recommend.candidates must be >= recommend.max_k")
        if self.triggers.remember_s < self.triggers.rate_window_s:
            raise ValueError("triggers.remember_s must be >= triggers.rate_window_s")

    def replace(self, **changes: Any) -> Settings:
        """A copy with `section.field` values changed: `s.replace(**{"server.port": 9000})`."""
        return load(env={}, base=self, overrides=changes).settings


SECTIONS: dict[str, type[_Section]] = {
    name: msgspec.inspect.type_info(Settings).fields[i].type.cls
    for i, name in enumerate(Settings.__struct_fields__)
}


def env_name(section: str, field: str) -> str:
    return f"{ENV_PREFIX}{section}_{field}".upper()


def fields() -> list[tuple[str, str, msgspec.inspect.Field]]:
    """(section, field, its type info) for every setting, in declaration order."""
    return [(section, f.name, f) for section, cls in SECTIONS.items()
            for f in msgspec.inspect.type_info(cls).fields]


def _is_list(t: msgspec.inspect.Type) -> bool:
    return isinstance(t.type if isinstance(t, msgspec.inspect.Metadata) else t, msgspec.inspect.ListType)


_LIST_FIELDS = {(s, f) for s, f, info in fields() if _is_list(info.type)}


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    sources: dict[str, str]  # "section.field" -> "default" | "file <path>" | "env NAME" | given source
    unknown: list[str]  # messages about VITRINE_* variables (and file keys) that set nothing


def load(env: Mapping[str, str] | None = None, *, file: Path | None = None, base: Settings | None = None,
         overrides: Mapping[str, Any] | None = None,
         override_sources: Mapping[str, str] | None = None) -> Loaded:
    """Defaults (or `base`) < the TOML `file` (default: $VITRINE_CONFIG) < `env` < `overrides`
    (`{"server.port": 9000}`; None values are skipped; `override_sources` names where each came
    from, e.g. "flag --port"). Raises SettingsError naming the setting."""
    env = os.environ if env is None else env
    known = {env_name(s, f): (s, f) for s, f, _ in fields()}
    raw: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    sources = {f"{s}.{f}": "default" for s, f, _ in fields()}
    if base is not None:
        for s, f, _ in fields():
            raw[s][f] = getattr(getattr(base, s), f)
    unknown: list[str] = []
    file = file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if file is not None:
        for (s, f), value in _read_file(file, unknown):
            raw[s][f] = value
            sources[f"{s}.{f}"] = f"file {file}"
    for name, (s, f) in ALIASES.items():
        if env.get(name) and not env.get(env_name(s, f)):
            raw[s][f] = env[name]
            sources[f"{s}.{f}"] = f"env {name}"
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        target = known.get(name)
        if target is None:
            unknown.append(_unknown(name, list(known)))
        elif value != "":
            # Lists (keys, origins) are comma-separated in the environment.
            raw[target[0]][target[1]] = ([v.strip() for v in value.split(",") if v.strip()]
                                         if target in _LIST_FIELDS else value)
            sources[f"{target[0]}.{target[1]}"] = f"env {name}"
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        s, _, f = dotted.partition(".")
        if s not in SECTIONS or f not in SECTIONS[s].__struct_fields__:
            raise SettingsError(f"unknown setting {dotted!r}")
        raw[s][f] = value
        sources[dotted] = (override_sources or {}).get(dotted, "given")
    return Loaded(_convert(raw, sources), sources, unknown)


def _convert(raw: dict[str, dict[str, Any]], sources: dict[str, str]) -> Settings:
    try:
        return msgspec.convert(raw, Settings, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        message = str(exc)
        # "… - at `$.redis.timeout_ms`": name the setting and where its value came from.
        body, _, path = message.partition(" - at `$.")
        path = path.rstrip("`")
        if "." in path:
            s, f = path.split(".", 1)
            where = sources.get(path, "")
            name = env_name(s, f) if where.startswith("env") else path
            message = f"{name} ({where}): {body}"
        raise SettingsError(message) from None
    except ValueError as exc:  # cross-field checks in Settings.__post_init__
        raise SettingsError(str(exc)) from None


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ is Path and isinstance(obj, str | Path):
        return Path(obj)
    raise NotImplementedError(f"cannot convert {obj!r} to {typ}")


def _read_file(path: Path, unknown: list[str]) -> list[tuple[tuple[str, str], Any]]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    out = []
    for section, table in data.items():
        if section not in SECTIONS or not isinstance(table, dict):
            unknown.append(f"{path}: unknown section [{section}] (sections: {', '.join(SECTIONS)})")
            continue
        for field, value in table.items():
            if field in SECTIONS[section].__struct_fields__:
                out.append(((section, field), value))
            else:
                close = difflib.get_close_matches(field, SECTIONS[section].__struct_fields__, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                unknown.append(f"{path}: [{section}] has no setting {field!r}{hint}")
    return out


def _unknown(name: str, known: list[str]) -> str:
    # Names from before the sections (VITRINE_DEADLINE_MS) match their new name's tail.
    tail = [k for k in known if k.endswith("_" + name.removeprefix(ENV_PREFIX))]
    close = tail or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name} is not a Vitrine setting and is ignored{hint}"


def markdown_table() -> str:
    """The settings table of docs/configuration.md, from the declarations above."""
    rows = ["| setting | environment | default | meaning |", "| --- | --- | --- | --- |"]
    defaults = Settings()
    for s, f, info in fields():
        value = getattr(getattr(defaults, s), f)
        shown = ("unset" if value is None or value == [] else str(value).lower() if isinstance(value, bool)
                 else ",".join(value) if isinstance(value, list) else str(value))
        name = env_name(s, f) + (" (or `REDIS_URL`)" if (s, f) == ("redis", "url") else "")
        rows.append(f"| `{s}.{f}` | `{name}` | `{shown}` | {_description(info)} |")
    return "\n".join(rows)


def _description(info: msgspec.inspect.Field) -> str:
    types = info.type.types if isinstance(info.type, msgspec.inspect.UnionType) else (info.type,)
    return next((t.extra_json_schema["description"] for t in types
                 if isinstance(t, msgspec.inspect.Metadata) and t.extra_json_schema), "")


if __name__ == "__main__":
    print(markdown_table())
